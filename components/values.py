"""Kubernetes and Docker values: their grammars, and the helpers that read them.

The one home of what a Docker tag, an image repository, a DNS label, a resource
quantity, a node port or an int-or-percent rollout bound may be. The settings
reader checks stack config against these; the components, the operator commands
and the PR comment use the helpers.

They are a few regular expressions, kept here rather than taken from a library:
neither pulumi nor pulumi-kubernetes ships a quantity or reference parser, and
the packages that do (the Kubernetes client's ``parse_quantity``, lightkube's,
docker-image-py's reference grammar) bring an HTTP client stack or a compiled
regex engine with them, for what is one pattern each here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

#: A Service's node port range (the API server's default ``--service-node-port-range``).
NODE_PORT_MIN = 30000
NODE_PORT_MAX = 32767

#: Docker's tag grammar: up to 128 word characters, dots and dashes, not starting with a dot or dash.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# A lowercase image reference without tag or digest: optional registry host
# (with a dot, a port or "localhost"), then slash-separated path components.
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
#: An image repository: ``k8s-demo``, ``registry.example.com/team/k8s-demo``; no tag, no digest.
REPOSITORY = re.compile(rf"^(?:{_HOST}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
#: A DNS-1123 label's characters (its 63-character limit is checked apart, with its own message).
#: A content digest as registries name manifests: ``sha256:`` and 64 lowercase hex digits.
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: What ``imageDigest`` may be.
DIGEST_RULE = "must be a manifest digest: 'sha256:' and 64 lowercase hex digits, or '' for none"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: The longest DNS-1123 label.
DNS_LABEL_MAX = 63
#: A label value: at most 63 characters, alphanumeric at both ends, '-', '_' and '.' between; or empty.
LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
#: An image platform as Docker names it: ``os/arch`` or ``os/arch/variant`` (``linux/amd64``, ``linux/arm/v7``).
PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?$")
#: A host name or an IP address (v4 or v6), as far as a URL needs one.
HOSTNAME_OR_IP = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.:-]*[A-Za-z0-9])?$")
#: A whole number as stack config spells one: digits, an optional leading '+'.
INTEGER = re.compile(r"^[+]?[0-9]+$")
#: A percentage such as ``25%`` (its 100% bound is checked by ``parse_int_or_percent``).
PERCENT = re.compile(r"^([0-9]{1,3})%$")
#: Kubernetes resource quantities as used for CPU and memory: a decimal number and an optional suffix.
QUANTITY = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_QUANTITY_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(1000),
    "M": Decimal(1000**2),
    "G": Decimal(1000**3),
    "T": Decimal(1000**4),
    "Ki": Decimal(1024),
    "Mi": Decimal(1024**2),
    "Gi": Decimal(1024**3),
    "Ti": Decimal(1024**4),
}

#: What a tag to deploy may be; shared with the operator commands that take one (``ops.releases rollback``).
TAG_RULE = (
    "must be a Docker tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-'), "
    "not empty and not 'latest'"
)
#: Why ``latest`` is refused although Docker's grammar allows it.
LATEST_REFUSED = "'latest' is refused: name the version, so rollback and history mean something"

#: A rolling update bound: a pod count, or a percentage string of replicas such as ``"25%"``.
IntOrPercent = int | str


@dataclass(frozen=True, kw_only=True)
class Resources:
    """CPU and memory requests and limits per pod, as Kubernetes quantities (``"50m"``, ``"64Mi"``)."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


def image_tag_problem(tag: str) -> str | None:
    """What is wrong with ``tag`` as a tag to deploy (``TAG_RULE``), or None when it is fine.

    The ``app/VERSION`` marker is not a tag here: a caller that accepts it resolves it first.
    """
    if tag == "latest":
        return LATEST_REFUSED
    if not TAG.match(tag):
        return TAG_RULE
    return None


def registry_host(repository: str) -> str | None:
    """The registry host of an image repository, or None for a local image name."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def default_namespace(project: str, stack: str) -> str:
    """``<project>-<stack>`` folded into a DNS-1123 label (63 characters at most)."""
    folded = re.sub(r"[^a-z0-9-]+", "-", f"{project}-{stack}".lower())
    folded = folded[:DNS_LABEL_MAX].strip("-")
    return folded or project


def quantity_value(quantity: str) -> Decimal:
    """The numeric value of a quantity that matches ``QUANTITY`` (cores for CPU, bytes for memory)."""
    number = re.match(r"^[0-9.]+", quantity)
    if number is None or not QUANTITY.match(quantity):
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    return Decimal(number.group(0)) * _QUANTITY_SUFFIXES[quantity[number.end() :]]


def parse_int_or_percent(raw: str) -> IntOrPercent | None:
    """A rollout bound from its config spelling: ``"+2"`` -> 2, ``"050%"`` -> ``"50%"``; None if it is neither."""
    if INTEGER.match(raw):
        return int(raw)
    match = PERCENT.match(raw)
    if match and int(match.group(1)) <= 100:
        return f"{int(match.group(1))}%"
    return None


def _percent(value: object) -> int | None:
    # N of an "N%" string, or None for anything else.
    match = PERCENT.match(value) if isinstance(value, str) else None
    return int(match.group(1)) if match else None


def is_int_or_percent(value: object) -> bool:
    """True for a pod count >= 0 or a percentage string from ``"0%"`` to ``"100%"``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    percent = _percent(value)
    return percent is not None and percent <= 100


def is_zero(value: IntOrPercent) -> bool:
    """True for a bound of no pods at all, whatever the replicas: ``0`` or ``"0%"``."""
    return value == 0 or _percent(value) == 0


def resolve_int_or_percent(value: IntOrPercent, total: int, *, round_up: bool) -> int:
    """A pod count from an int or a percentage of ``total``, rounded as Kubernetes does."""
    if isinstance(value, int):
        return value
    match = PERCENT.match(value)
    if match is None:
        raise ValueError(f"not a percentage: {value!r}")
    scaled = int(match.group(1)) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)
