"""The project itself: its name, where it lives, its type tokens and its stack config files.

The one place these are defined. The program, the operator commands (``ops``),
the policy pack and the tests import them from here, so a rename happens once.

Stack config as the Pulumi CLI hands it to the program is Pulumi.yaml's
declared defaults overlaid by ``Pulumi.<stack>.yaml``; ``stack_file_config``
builds the same map from the files, for everything that runs without the CLI
(the offline renderer, the unit tests, the PR comment's saved previews).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

#: The project's name (``Pulumi.yaml``), which is also its config namespace (``k8s-demo:replicas``).
NAME = "k8s-demo"

#: The project directory: where ``Pulumi.yaml`` and ``__main__.py`` are.
ROOT = Path(__file__).resolve().parent

#: The app's directory, relative to the project root: the image's build context.
APP_DIR = "app"
#: Where the app's version is declared, once, inside ``APP_DIR``.
VERSION_FILE = "VERSION"

#: Stacks named ``pr-<number>`` are review stacks for pull requests.
REVIEW_STACK = re.compile(r"^pr-[0-9]+$")

# Type tokens: the project's own components, and the resources they register.
WEBAPP_TYPE = f"{NAME}:index:WebApp"
APP_IMAGE_TYPE = f"{NAME}:index:AppImage"
STACK_TYPE = "pulumi:pulumi:Stack"
IMAGE_TYPE = "docker:index/image:Image"
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
DEPLOYMENT_TYPE = "kubernetes:apps/v1:Deployment"
SERVICE_TYPE = "kubernetes:core/v1:Service"
NETWORK_POLICY_TYPE = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def read_app_version(root: Path = ROOT) -> str:
    """The app's version from ``app/VERSION`` under ``root``."""
    return (root / APP_DIR / VERSION_FILE).read_text(encoding="utf-8").strip()


def config_key(key: str) -> str:
    """``replicas`` -> ``k8s-demo:replicas``: a key in the project's config namespace."""
    return f"{NAME}:{key}"


def project_defaults(root: Path = ROOT) -> dict[str, str]:
    """The defaults declared in ``Pulumi.yaml``, under full keys, as strings (as the CLI passes them)."""
    document = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8"))
    return {config_key(key): _engine_string(spec["default"]) for key, spec in document["config"].items()}


def stack_file_config(stack: str, root: Path = ROOT, stack_dir: Path | None = None) -> dict[str, str]:
    """A stack's config as the CLI passes it: project defaults, overlaid by ``Pulumi.<stack>.yaml``.

    Every value is a string. A stack without a file (a ``pr-<number>`` review
    stack) gets the project defaults alone. The defaults come from ``root``'s
    ``Pulumi.yaml``, the stack file from ``stack_dir`` (default: ``root``).
    """
    config = project_defaults(root)
    path = (stack_dir or root) / f"Pulumi.{stack}.yaml"
    if path.exists():
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        config.update({key: _engine_string(value) for key, value in (document.get("config") or {}).items()})
    return config


def _engine_string(value: object) -> str:
    # The CLI passes every config value as a string; booleans as YAML's lowercase words.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
