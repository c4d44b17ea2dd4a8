"""Typed, validated stack settings: the only module that reads stack config.

Every key is read and checked before any resource is created. All problems are
collected and reported together in one ``pulumi.RunError`` that names each bad
key, the value it had and what is allowed, so a user fixes them in one pass.

The keys are a pydantic model (``ConfigKeys``): one field per key, its type and
constraints, field validators for the markers and cross-field validators for
the rules that bind two keys. pydantic's own error wording never reaches the
user: ``load_settings`` turns each of its errors into this module's message
for that key.

Defaults live in ``Pulumi.yaml`` only, so the model has none: the Pulumi CLI
requires a default for every declared key and merges it into the stack's
config, so the program sees every key. Four defaults depend on the stack, the app
or the Docker engine and are spelt as markers there: ``imageTag: app/VERSION`` (the app's
version), ``namespace: ""`` (``k8s-demo-<stack>``), ``nodePort: 0``
(assigned by the cluster, as in Kubernetes itself) and ``buildPlatform: ""``
(the platform of the Docker engine that builds the image).

The program reads its config through the SDK's public API: values with
``pulumi.Config``, and the list of keys set (to refuse a misspelt one) with
``pulumi.runtime.get_config_env()``, the SDK's reader of ``PULUMI_CONFIG``, the
environment variable in which the language host hands a program its whole
stack config. The Pulumi CLI itself does not refuse a key that Pulumi.yaml does
not declare, so this module does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

import pulumi
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components.rollout import CANARY, MIN_ANALYSIS_SECONDS, ROLLING, STRATEGIES, CanaryPlan, RolloutPlan
from components.values import (
    DIGEST,
    DIGEST_RULE,
    DNS_LABEL,
    DNS_LABEL_MAX,
    HOSTNAME_OR_IP,
    INTEGER,
    LATEST_REFUSED,
    NODE_PORT_MAX,
    NODE_PORT_MIN,
    PLATFORM,
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
    registry_host,
)

#: ``imageTag`` marker (Pulumi.yaml's default): deploy, and build, the app's own version.
APP_VERSION_TAG = "app/VERSION"
#: ``nodePort`` marker (Pulumi.yaml's default): let the cluster assign the port.
ASSIGNED_NODE_PORT = 0
#: ``namespace`` marker (Pulumi.yaml's default): derive it from the project and stack.
DERIVED_NAMESPACE = ""
#: ``buildPlatform`` marker (Pulumi.yaml's default): build for the platform of the Docker engine that builds.
ENGINE_PLATFORM = ""

#: What ``imageTag`` may be: a tag, or the marker of the app's version.
IMAGE_TAG_RULE = f"{TAG_RULE}, or {APP_VERSION_TAG!r} for the app's version"

# The same grammars, or the marker of Pulumi.yaml's default.
_TAG_OR_MARKER = rf"^(?:{TAG.pattern[1:-1]}|{re.escape(APP_VERSION_TAG)})$"
_DNS_LABEL_OR_MARKER = rf"^(?:{DNS_LABEL.pattern[1:-1]}|{re.escape(DERIVED_NAMESPACE)})$"
# A digest, or the empty default: none.
_TAG_OR_MARKER_OR_NONE = rf"^(?:{TAG.pattern[1:-1]}|{re.escape(APP_VERSION_TAG)})?$"
# A percentage from 0 to 100, decimals allowed (checked against 100 by the field's bound).
_PERCENTAGE = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,3})?$")
_DIGEST_OR_NONE = rf"^(?:{DIGEST.pattern[1:-1]})?$"
_PLATFORM_OR_MARKER = rf"^(?:{PLATFORM.pattern[1:-1]}|{re.escape(ENGINE_PLATFORM)})$"
# The two spellings of a boolean the Pulumi CLI passes for a ``type: boolean`` key.
_BOOLEANS = {"true": True, "false": False}

# pydantic error types of this module's own: a value outside its key's grammar
# (reported with the key's rule), and a problem that carries its own message.
_BAD_VALUE = "config_value"
_PROBLEM = "config_problem"


def _integer(minimum: int) -> str:
    return f"must be an integer >= {minimum}"


_INT_OR_PERCENT_RULE = "must be an integer >= 0 or a percentage from 0% to 100%"
_QUANTITY_RULE = "must be a Kubernetes quantity such as '100m', '0.5', '64Mi' or '1Gi'"


def _rules(project: str) -> dict[str, str]:
    """What each key may be, by key: the second half of every message about it."""
    return {
        "imageTag": IMAGE_TAG_RULE,
        "imageRepository": (
            "must be a lowercase image name such as 'k8s-demo' or 'registry.example.com/team/k8s-demo', "
            "without tag or digest"
        ),
        "imageDigest": DIGEST_RULE,
        "replicas": _integer(0),
        "maxSurge": _INT_OR_PERCENT_RULE,
        "maxUnavailable": _INT_OR_PERCENT_RULE,
        "minReadySeconds": _integer(0),
        "podReadyTimeoutSeconds": _integer(1),
        "nodePort": (
            f"must be an integer from {NODE_PORT_MIN} to {NODE_PORT_MAX}, or {ASSIGNED_NODE_PORT} to have one assigned"
        ),
        "nodeAddress": "must be a host name or IP address",
        "namespace": (
            "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit; "
            f"or {DERIVED_NAMESPACE!r} for {project}-<stack>"
        ),
        "cpuRequest": _QUANTITY_RULE,
        "cpuLimit": _QUANTITY_RULE,
        "memoryRequest": _QUANTITY_RULE,
        "memoryLimit": _QUANTITY_RULE,
        "rollbackOnFailure": "must be true or false",
        "buildPlatform": (
            "must be a platform os/arch[/variant] such as 'linux/amd64', 'linux/arm64' or 'linux/arm/v7'; "
            f"or {ENGINE_PLATFORM!r} for the platform of the Docker engine that builds"
        ),
        "rolloutStrategy": f"must be {ROLLING!r} or {CANARY!r}",
        "canaryReplicas": _integer(1),
        "canaryAnalysisSeconds": _integer(MIN_ANALYSIS_SECONDS),
        "canaryMaxErrorRate": "must be a percentage from 0 to 100 such as '1' or '0.5', without '%'",
        "canaryMaxP99Ms": f"{_integer(0)} (milliseconds; 0 for no bound)",
        "canaryMinRequests": _integer(1),
        "canaryImageTag": f"{IMAGE_TAG_RULE}; or '' for no canary (make up sets it)",
    }


def _bad_value() -> PydanticCustomError:
    # Reported as "<key> = <raw value>: <the key's rule>" by load_settings.
    return PydanticCustomError(_BAD_VALUE, "not allowed")


def _problem(key: str, value: object, allowed: str, *, listed_after: str | None = None) -> PydanticCustomError:
    """A problem with its own message: ``<namespace>:<key> = <value>: <allowed>``.

    It is listed where the key that raised it is checked, or after ``listed_after``.
    """
    context = {"key": key, "value": repr(value), "allowed": allowed, "listed_after": listed_after}
    return PydanticCustomError(_PROBLEM, "{allowed}", context)


def _whole_number(raw: object) -> object:
    # Digits only (a leading '+' allowed): pydantic's own int parsing would take "1.0" and "1_000".
    text = raw.strip() if isinstance(raw, str) else raw
    if isinstance(text, str) and INTEGER.match(text):
        return int(text)
    raise _bad_value()


def _int_or_percent(raw: object) -> object:
    parsed = parse_int_or_percent(raw.strip()) if isinstance(raw, str) else None
    if parsed is None:
        raise _bad_value()
    return parsed


def _boolean(raw: object) -> object:
    value = _BOOLEANS.get(raw.strip()) if isinstance(raw, str) else None
    if value is None:
        raise _bad_value()
    return value


def _percentage(raw: object) -> object:
    text = raw.strip() if isinstance(raw, str) else None
    if text is None or not _PERCENTAGE.match(text):
        raise _bad_value()
    return float(text)


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Quantity = Annotated[str, Field(pattern=QUANTITY.pattern)]


def _context(info: ValidationInfo) -> dict[str, str]:
    context = info.context
    if not isinstance(context, dict):
        raise TypeError("ConfigKeys needs its context: namespace, project, stack and app_version")
    return context


class ConfigKeys(BaseModel):
    """Every key of the project's config namespace, parsed and checked; validated by its key (``imageTag``).

    Validate with ``context={"namespace": ..., "project": ..., "stack": ...,
    "app_version": ...}``: the markers resolve against it, so ``image_tag``
    and ``namespace`` hold what is deployed, and cross-key messages name keys
    in ``namespace``. Every value arrives as the string the CLI passes and is
    trimmed first. Times are in seconds; ``node_port`` 0 means assigned by the
    cluster. No field has a default: a key that is not set is reported, since
    the CLI merges Pulumi.yaml's defaults into every stack's config.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        str_strip_whitespace=True,
        alias_generator=to_camel,
        regex_engine="python-re",
    )

    image_tag: Annotated[str, Field(pattern=_TAG_OR_MARKER)]
    image_repository: Annotated[str, Field(pattern=REPOSITORY.pattern)]
    image_digest: Annotated[str, Field(pattern=_DIGEST_OR_NONE)]
    replicas: Annotated[WholeNumber, Field(ge=0)]
    max_surge: Annotated[IntOrPercent, BeforeValidator(_int_or_percent)]
    max_unavailable: Annotated[IntOrPercent, BeforeValidator(_int_or_percent)]
    min_ready_seconds: Annotated[WholeNumber, Field(ge=0)]
    pod_ready_timeout_seconds: Annotated[WholeNumber, Field(ge=1)]
    node_port: Annotated[WholeNumber, Field(ge=ASSIGNED_NODE_PORT, le=NODE_PORT_MAX)]
    node_address: Annotated[str, Field(pattern=HOSTNAME_OR_IP.pattern)]
    namespace: Annotated[str, Field(pattern=_DNS_LABEL_OR_MARKER)]
    cpu_request: Quantity
    cpu_limit: Quantity
    memory_request: Quantity
    memory_limit: Quantity
    rollback_on_failure: Annotated[bool, BeforeValidator(_boolean)]
    build_platform: Annotated[str, Field(pattern=_PLATFORM_OR_MARKER)]
    rollout_strategy: Annotated[str, Field(pattern=rf"^(?:{'|'.join(STRATEGIES)})$")]
    canary_replicas: Annotated[WholeNumber, Field(ge=1)]
    canary_analysis_seconds: Annotated[WholeNumber, Field(ge=MIN_ANALYSIS_SECONDS)]
    canary_max_error_rate: Annotated[float, BeforeValidator(_percentage), Field(ge=0, le=100)]
    canary_max_p99_ms: Annotated[WholeNumber, Field(ge=0)]
    canary_min_requests: Annotated[WholeNumber, Field(ge=1)]
    canary_image_tag: Annotated[str, Field(pattern=_TAG_OR_MARKER_OR_NONE)]

    @field_validator("image_tag")
    @classmethod
    def _app_version_marker(cls, tag: str, info: ValidationInfo) -> str:
        resolved = _context(info)["app_version"] if tag == APP_VERSION_TAG else tag
        if resolved == "latest":
            raise _problem("imageTag", resolved, LATEST_REFUSED)
        return resolved

    @field_validator("canary_image_tag")
    @classmethod
    def _canary_of_a_canary_release(cls, tag: str, info: ValidationInfo) -> str:
        # The program deploys what config says: a canary left under a rolling strategy would stay, unjudged.
        strategy = info.data.get("rollout_strategy")
        if tag and strategy == ROLLING:
            allowed = (
                f"a canary runs only with {_context(info)['namespace']}:rolloutStrategy = {CANARY!r}: finish it with "
                f"`make up` under {CANARY!r}, or drop it with `pulumi config rm canaryImageTag`"
            )
            raise _problem("canaryImageTag", tag, allowed)
        resolved = _context(info)["app_version"] if tag == APP_VERSION_TAG else tag
        if resolved == "latest":
            raise _problem("canaryImageTag", resolved, LATEST_REFUSED)
        return resolved

    @field_validator("image_digest")
    @classmethod
    def _digest_of_a_pushed_image(cls, digest: str, info: ValidationInfo) -> str:
        # A local image has no manifest in any registry: its digest would name nothing the cluster can pull.
        repository = info.data.get("image_repository")
        if digest and repository is not None and registry_host(repository) is None:
            allowed = (
                f"pins a pushed image, but {_context(info)['namespace']}:imageRepository = {repository!r} names no "
                "registry host; set a registry repository, or '' to deploy by tag"
            )
            raise _problem("imageDigest", digest, allowed)
        return digest

    @field_validator("max_unavailable")
    @classmethod
    def _not_both_zero(cls, unavailable: IntOrPercent, info: ValidationInfo) -> IntOrPercent:
        surge = info.data.get("max_surge")
        if surge is not None and is_zero(surge) and is_zero(unavailable):
            allowed = (
                f"must not be zero while {_context(info)['namespace']}:maxUnavailable = {unavailable!r} is zero too, "
                "or a rollout could never start"
            )
            raise _problem("maxSurge", surge, allowed)
        return unavailable

    @field_validator("node_port")
    @classmethod
    def _node_port_range(cls, port: int) -> int:
        if port != ASSIGNED_NODE_PORT and port < NODE_PORT_MIN:
            raise _bad_value()
        return port

    @field_validator("namespace")
    @classmethod
    def _derived_namespace(cls, namespace: str, info: ValidationInfo) -> str:
        if namespace == DERIVED_NAMESPACE:
            context = _context(info)
            return default_namespace(context["project"], context["stack"])
        if len(namespace) > DNS_LABEL_MAX:
            raise _problem("namespace", namespace, f"must be at most {DNS_LABEL_MAX} characters")
        return namespace

    # The API server would refuse a request above its limit; refuse it here, before anything changes.
    @field_validator("cpu_limit", "memory_limit")
    @classmethod
    def _request_within_limit(cls, limit: str, info: ValidationInfo) -> str:
        assert info.field_name is not None  # set for a field validator
        kind = info.field_name.removesuffix("_limit")
        request = info.data.get(f"{kind}_request")
        if request is not None and quantity_value(request) > quantity_value(limit):
            limit_key = to_camel(info.field_name)
            allowed = f"must not exceed {_context(info)['namespace']}:{limit_key} ({limit!r})"
            # Listed after the quantities' own problems: a limit's bad spelling reads before a comparison with it.
            raise _problem(to_camel(f"{kind}_request"), request, allowed, listed_after="memoryLimit")
        return limit


#: Every key this program reads, in the project's config namespace, in the order they are checked.
KNOWN_KEYS = tuple(to_camel(name) for name in ConfigKeys.model_fields)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the program needs from stack config, validated.

    ``image_tag`` is the tag to deploy, the ``app/VERSION`` marker resolved;
    ``image_digest`` the manifest digest that pins it (a promotion), empty for none;
    ``namespace`` is the namespace to create, its marker resolved;
    ``node_port`` None lets the cluster assign one; ``build_platform`` None
    builds for the Docker engine's own platform. ``rollout`` holds the
    replicas and the rolling update. ``rollback_on_failure``, ``strategy``
    (``rolling`` or ``canary``) and ``canary`` (how a canary is judged) are
    read only by ``ops.releases up`` (``make up``): the program itself deploys
    the same objects either way. ``canary_image_tag`` is the tag of the canary
    pods to run beside the stable ones (its marker resolved), None for none.
    ``docker_host`` is the Docker provider's ``docker:host`` in the same stack's
    config, None when unset: the engine a build runs in, whose platform it
    targets. The provider checks the value itself.
    """

    stack: str
    app_version: str
    image_repository: str
    image_tag: str
    image_digest: str
    rollout: RolloutPlan
    node_port: int | None
    node_address: str
    namespace: str
    resources: Resources
    rollback_on_failure: bool
    build_platform: str | None
    strategy: str
    canary: CanaryPlan
    canary_image_tag: str | None
    docker_host: str | None = None

    @property
    def change_cause(self) -> str:
        """The Deployment's ``kubernetes.io/change-cause``: the tag and the stack."""
        return f"pulumi up: image {self.image_repository}:{self.image_tag}, stack {self.stack}"

    @property
    def canary_change_cause(self) -> str:
        """The canary Deployment's ``kubernetes.io/change-cause``: its tag, the stable tag and the stack."""
        return (
            f"canary: image {self.image_repository}:{self.canary_image_tag} beside {self.image_tag}, stack {self.stack}"
        )


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


#: The Docker provider's key for the engine it builds in.
DOCKER_HOST_KEY = "docker:host"


def provider_value(config: ConfigSource, key: str) -> str | None:
    """A provider's key (``docker:host``) in the same stack's config as ``config``, None when unset or empty."""
    if isinstance(config, StackConfig):
        return config.values.get(key) or None
    namespace, name = key.split(":", 1)
    return pulumi.Config(namespace).get(name) or None


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


def _messages(error: ValidationError, raw: Mapping[str, str], namespace: str, project: str) -> list[str]:
    """One message per problem, in key order, misspelt keys last; in this module's words, never pydantic's."""
    rules = _rules(project)
    # Each message with where it is listed: (index of its key, 0), or (index of the key it follows, 1).
    listed: list[tuple[tuple[int, int], str]] = []
    unknown: dict[str, str] = {}
    reported: set[str] = set()
    for problem in error.errors(include_url=False):
        key = str(problem["loc"][0])
        kind = problem["type"]
        if kind == "extra_forbidden":
            unknown[key] = raw[key]
        elif kind == "missing":
            message = f"{namespace}:{key} is not set: {rules[key]} (its default is in Pulumi.yaml)"
            listed.append(((KNOWN_KEYS.index(key), 0), message))
        elif kind == _PROBLEM:
            context: dict[str, Any] = problem.get("ctx") or {}
            after = context["listed_after"]
            position = (KNOWN_KEYS.index(after), 1) if after else (KNOWN_KEYS.index(key), 0)
            listed.append((position, f"{namespace}:{context['key']} = {context['value']}: {context['allowed']}"))
        elif key not in reported:
            # A type, grammar or range error: one message for the key, with the value as given.
            reported.add(key)
            listed.append(((KNOWN_KEYS.index(key), 0), f"{namespace}:{key} = {raw[key]!r}: {rules[key]}"))
    # sorted() is stable: problems listed at the same place keep the order they were found in.
    messages = [message for _, message in sorted(listed, key=lambda item: item[0])]
    # A misspelt key would otherwise be ignored in silence and its default used.
    known = f"unknown key; known keys are: {', '.join(KNOWN_KEYS)}"
    messages += [f"{namespace}:{key} = {unknown[key]!r}: {known}" for key in sorted(unknown)]
    return messages


def load_settings(
    config: ConfigSource,
    *,
    project: str,
    stack: str,
    app_version: str,
) -> Settings:
    """Read and validate every key; raise one ``pulumi.RunError`` listing all problems.

    The one entry point for the program (``config`` a ``pulumi.Config``) and the
    operator commands (a ``StackConfig`` of ``pulumi config --json``'s values).
    """
    raw = {
        key: value
        for key in sorted(configured_keys(config) | set(KNOWN_KEYS))
        if (value := config.get(key)) is not None
    }
    context = {"namespace": config.name, "project": project, "stack": stack, "app_version": app_version}
    try:
        keys = ConfigKeys.model_validate(raw, context=context)
    except ValidationError as error:
        problems = _messages(error, raw, config.name, project)
        count = len(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise pulumi.RunError(
            f"invalid configuration for stack '{stack}' ({count} problem{'s' * (count != 1)}); "
            f"nothing was changed:\n{lines}"
        ) from None

    return Settings(
        stack=stack,
        app_version=app_version,
        image_repository=keys.image_repository,
        image_tag=keys.image_tag,
        image_digest=keys.image_digest,
        rollout=RolloutPlan(
            replicas=keys.replicas,
            max_surge=keys.max_surge,
            max_unavailable=keys.max_unavailable,
            min_ready_seconds=keys.min_ready_seconds,
            pod_ready_timeout_seconds=keys.pod_ready_timeout_seconds,
        ),
        node_port=None if keys.node_port == ASSIGNED_NODE_PORT else keys.node_port,
        node_address=keys.node_address,
        namespace=keys.namespace,
        resources=Resources(
            cpu_request=keys.cpu_request,
            cpu_limit=keys.cpu_limit,
            memory_request=keys.memory_request,
            memory_limit=keys.memory_limit,
        ),
        rollback_on_failure=keys.rollback_on_failure,
        build_platform=None if keys.build_platform == ENGINE_PLATFORM else keys.build_platform,
        docker_host=provider_value(config, DOCKER_HOST_KEY),
        strategy=keys.rollout_strategy,
        canary=CanaryPlan(
            replicas=keys.canary_replicas,
            analysis_seconds=keys.canary_analysis_seconds,
            max_error_rate=keys.canary_max_error_rate,
            max_p99_ms=keys.canary_max_p99_ms,
            min_requests=keys.canary_min_requests,
        ),
        canary_image_tag=keys.canary_image_tag or None,
    )
