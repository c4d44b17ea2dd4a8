"""Typed, validated stack settings: the only module that reads stack config.

Every key is read and checked before any resource is created. All problems are
collected and reported together in one ``pulumi.RunError`` that names each bad
key, the value it had and what is allowed, so a user fixes them in one pass.

Defaults live in ``Pulumi.yaml`` only: the Pulumi CLI requires a default for
every declared key and merges it into the stack's config, so the program sees
every key. Three defaults depend on the stack or the app and are spelt as
markers there: ``imageTag: app/VERSION`` (the app's version), ``namespace: ""``
(``k8s-demo-<stack>``) and ``nodePort: 0`` (assigned by the cluster, as in
Kubernetes itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import pulumi

from components.rollout import RolloutPlan
from components.values import (
    DNS_LABEL,
    DNS_LABEL_MAX,
    HOSTNAME_OR_IP,
    INTEGER,
    LATEST_REFUSED,
    NODE_PORT_MAX,
    NODE_PORT_MIN,
    QUANTITY,
    REPOSITORY,
    TAG,
    TAG_RULE,
    IntOrPercent,
    Resources,
    default_namespace,
    is_zero,
    parse_int_or_percent,
    quantity_value,
)

#: ``imageTag`` marker (Pulumi.yaml's default): deploy, and build, the app's own version.
APP_VERSION_TAG = "app/VERSION"
#: ``nodePort`` marker (Pulumi.yaml's default): let the cluster assign the port.
ASSIGNED_NODE_PORT = 0
#: ``namespace`` marker (Pulumi.yaml's default): derive it from the project and stack.
DERIVED_NAMESPACE = ""

# The same grammars, or the marker of Pulumi.yaml's default.
_TAG_OR_MARKER = re.compile(rf"^(?:{TAG.pattern[1:-1]}|{re.escape(APP_VERSION_TAG)})$")
_DNS_LABEL_OR_MARKER = re.compile(rf"^(?:{DNS_LABEL.pattern[1:-1]}|{re.escape(DERIVED_NAMESPACE)})$")
# The two spellings of a boolean the Pulumi CLI passes for a ``type: boolean`` key.
_BOOLEANS = {"true": True, "false": False}

#: Every key this program reads, in the project's config namespace.
KNOWN_KEYS = (
    "imageTag",
    "imageRepository",
    "replicas",
    "maxSurge",
    "maxUnavailable",
    "minReadySeconds",
    "podReadyTimeoutSeconds",
    "nodePort",
    "nodeAddress",
    "namespace",
    "cpuRequest",
    "cpuLimit",
    "memoryRequest",
    "memoryLimit",
    "rollbackOnFailure",
)

#: What ``imageTag`` may be: a tag, or the marker of the app's version.
IMAGE_TAG_RULE = f"{TAG_RULE}, or {APP_VERSION_TAG!r} for the app's version"

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the program needs from stack config, validated.

    ``image_tag`` is the tag to deploy, the ``app/VERSION`` marker resolved;
    ``namespace`` is the namespace to create, its marker resolved;
    ``node_port`` None lets the cluster assign one. ``rollout`` holds the
    replicas and the rolling update. ``rollback_on_failure`` is read only by
    ``ops.release up`` (``make up``): the program itself deploys the same
    objects either way.
    """

    stack: str
    app_version: str
    image_repository: str
    image_tag: str
    rollout: RolloutPlan
    node_port: int | None
    node_address: str
    namespace: str
    resources: Resources
    rollback_on_failure: bool

    @property
    def change_cause(self) -> str:
        """The Deployment's ``kubernetes.io/change-cause``: the tag and the stack."""
        return f"pulumi up: image {self.image_repository}:{self.image_tag}, stack {self.stack}"


class ConfigSource(Protocol):
    """Where raw values come from: ``pulumi.Config`` in the program, ``StackConfig`` in operator commands."""

    @property
    def name(self) -> str:
        """The config namespace (the project name)."""
        ...

    def get(self, key: str) -> str | None:
        """The raw value of ``<name>:<key>``, or None when it is not set."""
        ...


@dataclass(frozen=True)
class StackConfig:
    """A stack's config as plain strings, for commands that run outside the Pulumi program.

    ``values`` maps full keys (``k8s-demo:replicas``) to values, as
    ``pulumi config --json`` lists them (project defaults included).
    """

    name: str
    values: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        """The raw value of ``<name>:<key>``, or None when it is not set."""
        return self.values.get(f"{self.name}:{key}")


class _Reader:
    """Reads raw config values and parses them, collecting every error instead of stopping."""

    def __init__(self, config: ConfigSource) -> None:
        self._config = config
        self.errors: list[str] = []

    def bad(self, key: str, value: object, allowed: str) -> None:
        """Record one problem: the full key, the value as given and what is allowed."""
        self.errors.append(f"{self._config.name}:{key} = {value!r}: {allowed}")

    def _parse(self, key: str, placeholder: T, allowed: str, parse: Callable[[str], T | None]) -> T:
        # ``placeholder`` only keeps validation going after an error; it never reaches a resource.
        raw = self._config.get(key)
        if raw is None:
            self.errors.append(f"{self._config.name}:{key} is not set: {allowed} (its default is in Pulumi.yaml)")
            return placeholder
        parsed = parse(raw.strip())
        if parsed is None:
            self.bad(key, raw, allowed)
            return placeholder
        return parsed

    def integer(self, key: str, *, minimum: int = 0) -> int:
        return self._parse(key, minimum, f"must be an integer >= {minimum}", _int_in(minimum, None))

    def node_port(self, key: str) -> int | None:
        allowed = (
            f"must be an integer from {NODE_PORT_MIN} to {NODE_PORT_MAX}, or {ASSIGNED_NODE_PORT} to have one assigned"
        )

        def parse(raw: str) -> int | None:
            number = _int_in(ASSIGNED_NODE_PORT, NODE_PORT_MAX)(raw)
            return number if number is not None and (number == ASSIGNED_NODE_PORT or number >= NODE_PORT_MIN) else None

        port = self._parse(key, ASSIGNED_NODE_PORT, allowed, parse)
        return None if port == ASSIGNED_NODE_PORT else port

    def int_or_percent(self, key: str) -> IntOrPercent:
        placeholder: IntOrPercent = 0
        return self._parse(
            key, placeholder, "must be an integer >= 0 or a percentage from 0% to 100%", parse_int_or_percent
        )

    def boolean(self, key: str) -> bool:
        return self._parse(key, False, "must be true or false", _BOOLEANS.get)

    def matching(self, key: str, pattern: re.Pattern[str], allowed: str) -> str:
        return self._parse(key, "", allowed, lambda raw: raw if pattern.match(raw) else None)


def _int_in(minimum: int, maximum: int | None) -> Callable[[str], int | None]:
    """A parser for a whole number in [minimum, maximum] (no upper bound when maximum is None)."""

    def parse(raw: str) -> int | None:
        if not INTEGER.match(raw):
            return None
        number = int(raw)
        if number < minimum or (maximum is not None and number > maximum):
            return None
        return number

    return parse


def configured_keys(config: ConfigSource) -> set[str]:
    """The keys set for this stack in one config namespace, without the namespace.

    ``pulumi.Config`` cannot list keys. In the program they are those of
    ``PULUMI_CONFIG``, the whole stack config as the language host passes it
    (and as ``ops.offline`` passes it under the mocks), read with the SDK's
    public ``pulumi.runtime.get_config_env()``. The Pulumi CLI does not refuse
    a key that Pulumi.yaml does not declare, so this is what catches a misspelt one.
    """
    prefix = f"{config.name}:"
    every = set(config.values) if isinstance(config, StackConfig) else set(pulumi.runtime.get_config_env())
    return {key[len(prefix) :] for key in every if key.startswith(prefix)}


def load_settings(
    config: ConfigSource,
    *,
    project: str,
    stack: str,
    app_version: str,
) -> Settings:
    """Read and validate every key; raise one ``pulumi.RunError`` listing all problems."""
    read = _Reader(config)

    image_tag = read.matching("imageTag", _TAG_OR_MARKER, IMAGE_TAG_RULE)
    if image_tag == APP_VERSION_TAG:
        image_tag = app_version
    if image_tag == "latest":
        read.bad("imageTag", image_tag, LATEST_REFUSED)

    image_repository = read.matching(
        "imageRepository",
        REPOSITORY,
        "must be a lowercase image name such as 'k8s-demo' or 'registry.example.com/team/k8s-demo', "
        "without tag or digest",
    )
    replicas = read.integer("replicas")
    max_surge = read.int_or_percent("maxSurge")
    max_unavailable = read.int_or_percent("maxUnavailable")
    if is_zero(max_surge) and is_zero(max_unavailable):
        read.bad(
            "maxSurge",
            max_surge,
            f"must not be zero while {config.name}:maxUnavailable = {max_unavailable!r} is zero too, "
            "or a rollout could never start",
        )
    min_ready_seconds = read.integer("minReadySeconds")
    pod_ready_timeout_seconds = read.integer("podReadyTimeoutSeconds", minimum=1)
    node_port = read.node_port("nodePort")
    node_address = read.matching("nodeAddress", HOSTNAME_OR_IP, "must be a host name or IP address")
    namespace_rule = (
        "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit; "
        f"or {DERIVED_NAMESPACE!r} for {project}-<stack>"
    )
    namespace = read.matching("namespace", _DNS_LABEL_OR_MARKER, namespace_rule)
    if namespace == DERIVED_NAMESPACE:
        namespace = default_namespace(project, stack)
    if len(namespace) > DNS_LABEL_MAX:
        read.bad("namespace", namespace, f"must be at most {DNS_LABEL_MAX} characters")
    quantity = "must be a Kubernetes quantity such as '100m', '0.5', '64Mi' or '1Gi'"
    resources = Resources(
        cpu_request=read.matching("cpuRequest", QUANTITY, quantity),
        cpu_limit=read.matching("cpuLimit", QUANTITY, quantity),
        memory_request=read.matching("memoryRequest", QUANTITY, quantity),
        memory_limit=read.matching("memoryLimit", QUANTITY, quantity),
    )
    # The API server would refuse a request above its limit; refuse it here, before anything changes.
    for request_key, request, limit_key, limit in (
        ("cpuRequest", resources.cpu_request, "cpuLimit", resources.cpu_limit),
        ("memoryRequest", resources.memory_request, "memoryLimit", resources.memory_limit),
    ):
        if request and limit and quantity_value(request) > quantity_value(limit):
            read.bad(request_key, request, f"must not exceed {config.name}:{limit_key} ({limit!r})")
    rollback_on_failure = read.boolean("rollbackOnFailure")
    # A misspelt key would otherwise be ignored in silence and its default used.
    # (Pulumi.yaml declares every known key, and the CLI refuses values of the wrong type.)
    for key in sorted(configured_keys(config) - set(KNOWN_KEYS)):
        read.bad(key, config.get(key), f"unknown key; known keys are: {', '.join(KNOWN_KEYS)}")

    if read.errors:
        count = len(read.errors)
        lines = "\n".join(f"  - {error}" for error in read.errors)
        raise pulumi.RunError(
            f"invalid configuration for stack '{stack}' ({count} problem{'s' * (count != 1)}); "
            f"nothing was changed:\n{lines}"
        )

    return Settings(
        stack=stack,
        app_version=app_version,
        image_repository=image_repository,
        image_tag=image_tag,
        rollout=RolloutPlan(
            replicas=replicas,
            max_surge=max_surge,
            max_unavailable=max_unavailable,
            min_ready_seconds=min_ready_seconds,
            pod_ready_timeout_seconds=pod_ready_timeout_seconds,
        ),
        node_port=node_port,
        node_address=node_address,
        namespace=namespace,
        resources=resources,
        rollback_on_failure=rollback_on_failure,
    )
