"""Stack config: defaults, derived rollout timing, and every kind of bad input refused at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from components.settings import KNOWN_KEYS, Settings, StackConfig, load_settings
from ops.offline import CONFIG_ENV, ClusterMocks, run_program, stack_config
from project import DEPLOYMENT_TYPE, ROOT, project_defaults, stack_file_config
from tests.examples import example_config

Load = Callable[..., Settings]


@pytest.fixture
def load(config: Callable[..., pulumi.Config]) -> Load:
    def run(stack: str = "dev", **keys: str) -> Settings:
        return load_settings(config(**keys), project="k8s-demo", stack=stack, app_version="0.2")

    return run


def test_project_defaults_are_the_tutorials_rollout(load: Load) -> None:
    settings = load()
    rollout = settings.rollout
    assert (rollout.max_surge, rollout.max_unavailable, rollout.min_ready_seconds) == (1, 1, 3)
    assert (settings.image_repository, settings.node_port) == ("k8s-demo", None)


def test_new_stacks_default_to_one_replica(load: Load) -> None:
    # Review stacks have no stack file; dev sets the tutorial's 10 in Pulumi.dev.yaml.
    assert load("pr-7").rollout.replicas == 1


def test_image_tag_marker_means_the_app_version(load: Load) -> None:
    assert load(imageTag="app/VERSION").image_tag == "0.2"


def test_rollback_on_failure_defaults_to_on(load: Load) -> None:
    assert load().rollback_on_failure is True


def test_rollback_on_failure_can_be_turned_off(load: Load) -> None:
    assert load(rollbackOnFailure="false").rollback_on_failure is False


def test_build_platform_defaults_to_the_engines(load: Load) -> None:
    assert load().build_platform is None


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64", "linux/arm/v7"])
def test_build_platform_is_kept(load: Load, platform: str) -> None:
    assert load(buildPlatform=platform).build_platform == platform


def test_node_port_zero_means_assigned(load: Load) -> None:
    assert load(nodePort="0").node_port is None


def test_node_port_in_range_is_kept(load: Load) -> None:
    assert load(nodePort="30080").node_port == 30080


def test_missing_key_is_reported() -> None:
    values = {k: v for k, v in project_defaults().items() if k != "k8s-demo:replicas"}
    expected = r"k8s-demo:replicas is not set: must be an integer >= 0"
    with stack_config(values), pytest.raises(pulumi.RunError, match=expected):
        load_settings(pulumi.Config("k8s-demo"), project="k8s-demo", stack="dev", app_version="0.2")


def test_namespace_defaults_to_project_and_stack(load: Load) -> None:
    assert load("pr-7").namespace == "k8s-demo-pr-7"


def test_values_are_trimmed_and_normalised(load: Load) -> None:
    settings = load(replicas=" 4 ", maxSurge="050%", maxUnavailable="+0")
    rollout = settings.rollout
    assert (rollout.replicas, rollout.max_surge, rollout.max_unavailable) == (4, "50%", 0)


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "steps"),
    [(10, 1, 1, 5), (10, "25%", 0, 4), (4, "25%", "25%", 2), (1, 1, 1, 1), (0, 1, 1, 1), (3, "10%", "10%", 3)],
)
def test_rollout_steps(load: Load, replicas: int, surge: object, unavailable: object, steps: int) -> None:
    settings = load(replicas=str(replicas), maxSurge=str(surge), maxUnavailable=str(unavailable))
    assert settings.rollout.batches == steps


# The rollout plan's figures (the PR comment shows them), one test each. dev: 10 replicas; defaults 1, 1, 3 s.


def test_surge_percentage_rounds_up_to_pods(load: Load) -> None:
    assert load(replicas="4", maxSurge="25%", maxUnavailable="0%").rollout.surge_pods == 1


def test_unavailable_percentage_rounds_down_to_pods(load: Load) -> None:
    assert load(replicas="4", maxSurge="25%", maxUnavailable="0%").rollout.unavailable_pods == 0


def test_unavailable_is_one_pod_when_both_round_to_zero(load: Load) -> None:
    # No surge, and 10% of 3 rounds down to 0 pods: Kubernetes lets 1 pod be unavailable.
    assert load(replicas="3", maxSurge="0", maxUnavailable="10%").rollout.unavailable_pods == 1


def test_dev_rollout_takes_five_batches(load: Load) -> None:
    assert load(replicas="10").rollout.batches == 5


def test_dev_rollout_takes_at_least_fifteen_seconds(load: Load) -> None:
    assert load(replicas="10").rollout.least_seconds == 15


def test_dev_rollout_keeps_nine_pods_serving(load: Load) -> None:
    assert load(replicas="10").rollout.least_serving == 9


def test_percentage_rollout_keeps_every_pod_serving(load: Load) -> None:
    # 25% surge of 4 -> 1 pod, 0% unavailable -> 0 pods: all 4 keep serving, 4 batches.
    settings = load(replicas="4", maxSurge="25%", maxUnavailable="0%")
    assert (settings.rollout.least_serving, settings.rollout.batches) == (4, 4)


def test_dev_up_waits_at_most_the_rollout_timeout(load: Load) -> None:
    # 5 batches x (30 + 3) s + a progress deadline of 2 x 33 s.
    assert load(replicas="10").rollout.most_wait_seconds == 231


def test_timeouts_derive_from_rollout_settings(load: Load) -> None:
    settings = load(replicas="10", minReadySeconds="5", podReadyTimeoutSeconds="10")
    # step = 10 + 5; deadline = 2 steps; timeout = 5 steps + deadline.
    assert (settings.rollout.progress_deadline_seconds, settings.rollout.most_wait_seconds) == (30, 105)


def test_no_digest_is_pinned_by_default(load: Load) -> None:
    assert load().image_digest == ""


def test_a_digest_pins_a_pushed_image(load: Load) -> None:
    digest = "sha256:" + "ab" * 32
    settings = load(imageRepository="registry.example.com/k8s-demo", imageTag="0.1", imageDigest=digest)
    assert (settings.image_tag, settings.image_digest) == ("0.1", digest)


def test_a_digest_for_a_local_image_is_refused(load: Load) -> None:
    digest = "sha256:" + "ab" * 32
    expected = (
        rf"k8s-demo:imageDigest = '{digest}': pins a pushed image, but k8s-demo:imageRepository = 'k8s-demo' "
        r"names no registry host; set a registry repository, or '' to deploy by tag"
    )
    with pytest.raises(pulumi.RunError, match=expected):
        load(imageDigest=digest)


def test_change_cause_names_tag_and_stack(load: Load) -> None:
    assert load(imageTag="0.1").change_cause == "pulumi up: image k8s-demo:0.1, stack dev"


# Each bad value: (key, value, words of "what is allowed" that the message must carry).
BAD = [
    ("imageTag", "", "not empty"),
    ("imageTag", "latest", "'latest' is refused"),
    ("imageTag", "-1", "Docker tag"),
    ("imageTag", "has space", "Docker tag"),
    ("imageTag", "a" * 129, "at most 128"),
    ("imageRepository", "K8s-Demo", "lowercase image name"),
    ("imageRepository", "k8s-demo:0.1", "without tag or digest"),
    ("imageRepository", "", "lowercase image name"),
    ("imageDigest", "sha256:abc", "manifest digest: 'sha256:' and 64 lowercase hex digits, or '' for none"),
    ("imageDigest", "sha256:" + "AB" * 32, "64 lowercase hex digits"),
    ("imageDigest", "k8s-demo@sha256:" + "ab" * 32, "manifest digest"),
    ("replicas", "ten", "integer >= 0"),
    ("replicas", "-1", "integer >= 0"),
    ("replicas", "1.5", "integer >= 0"),
    ("maxSurge", "1.5", "percentage from 0% to 100%"),
    ("maxSurge", "101%", "percentage from 0% to 100%"),
    ("maxUnavailable", "%", "percentage from 0% to 100%"),
    ("maxUnavailable", "-1", "integer >= 0"),
    ("minReadySeconds", "3s", "integer >= 0"),
    ("podReadyTimeoutSeconds", "0", "integer >= 1"),
    ("nodePort", "80", "30000 to 32767"),
    ("nodePort", "32768", "30000 to 32767"),
    ("nodePort", "auto", "30000 to 32767"),
    ("namespace", "Team_A", "DNS-1123 label"),
    ("namespace", "-dev", "DNS-1123 label"),
    ("namespace", "a" * 64, "at most 63 characters"),
    ("nodeAddress", "http://x/", "host name or IP"),
    ("cpuRequest", "lots", "Kubernetes quantity"),
    ("memoryLimit", "64MB", "Kubernetes quantity"),
    ("replica", "3", "unknown key"),
    ("rollbackOnFailure", "yes", "true or false"),
    ("rollbackOnFailure", "1", "true or false"),
    ("rollbackOnFailure", "", "true or false"),
    ("buildPlatform", "amd64", "os/arch[/variant] such as 'linux/amd64'"),
    ("buildPlatform", "Linux/AMD64", "os/arch[/variant] such as 'linux/amd64'"),
    ("buildPlatform", "linux/arm/v7/x", "os/arch[/variant] such as 'linux/amd64'"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), BAD, ids=[f"{k}={v[:12]!r}" for k, v, _ in BAD])
def test_bad_value_is_refused_naming_key_value_and_rule(load: Load, key: str, value: str, allowed: str) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load(**{key: value})
    message = str(caught.value)
    assert f"k8s-demo:{key} = {value!r}: " in message
    assert allowed in message
    assert "(1 problem)" in message


def test_both_rollout_bounds_zero_is_refused(load: Load) -> None:
    expected = r"k8s-demo:maxSurge = 0: must not be zero while k8s-demo:maxUnavailable = '0%'"
    with pytest.raises(pulumi.RunError, match=expected):
        load(maxSurge="0", maxUnavailable="0%")


def test_request_above_limit_is_refused(load: Load) -> None:
    expected = r"k8s-demo:memoryRequest = '128Mi': must not exceed k8s-demo:memoryLimit \('64Mi'\)"
    with pytest.raises(pulumi.RunError, match=expected):
        load(memoryRequest="128Mi")


def test_request_in_other_units_below_limit_is_accepted(load: Load) -> None:
    assert load(cpuRequest="0.1", cpuLimit="200m").resources.cpu_request == "0.1"


def test_every_problem_is_reported_in_one_error(load: Load) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load(imageTag="latest", replicas="x", nodePort="1", namespace="NS")
    message = str(caught.value)
    assert "(4 problems)" in message
    for key in ("imageTag", "replicas", "nodePort", "namespace"):
        assert f"k8s-demo:{key} = " in message


def test_bad_config_registers_no_resource() -> None:
    engine = ClusterMocks()
    with pytest.raises(pulumi.RunError):
        run_program("dev", {**example_config("dev"), "k8s-demo:replicas": "many"}, mocks=engine)
    assert engine.resources == []


def test_good_config_does_register() -> None:
    # Guards the test above: the same engine does record resources when config is good.
    engine = ClusterMocks()
    run_program("dev", example_config("dev"), mocks=engine)
    assert [r.type for r in engine.resources if r.type == DEPLOYMENT_TYPE] == [DEPLOYMENT_TYPE]


def test_stack_config_reads_like_the_program(load: Load) -> None:
    # Operator commands validate the same settings from `pulumi config --json` values.
    values = {**project_defaults(), "k8s-demo:replicas": "10", "k8s-demo:imageTag": "0.1"}
    settings = load_settings(StackConfig("k8s-demo", values), project="k8s-demo", stack="dev", app_version="0.2")
    assert settings == load(replicas="10", imageTag="0.1")


def test_stack_config_refuses_an_unknown_key() -> None:
    values = {**project_defaults(), "k8s-demo:replica": "3"}
    with pytest.raises(pulumi.RunError, match=r"k8s-demo:replica = '3': unknown key"):
        load_settings(StackConfig("k8s-demo", values), project="k8s-demo", stack="dev", app_version="0.2")


# Misspelt keys: pulumi.Config cannot list keys and the CLI passes undeclared ones on, so the program
# lists them from PULUMI_CONFIG, where the language host puts the whole stack config.

UNKNOWN_REPLICA = (
    "k8s-demo:replica = '3': unknown key; known keys are: imageTag, imageRepository, imageDigest, replicas, maxSurge, "
    "maxUnavailable, minReadySeconds, podReadyTimeoutSeconds, nodePort, nodeAddress, namespace, cpuRequest, "
    "cpuLimit, memoryRequest, memoryLimit, rollbackOnFailure, buildPlatform, rolloutStrategy, canaryReplicas, "
    "canaryAnalysisSeconds, canaryMaxErrorRate, canaryMaxP99Ms, canaryMinRequests, canaryImageTag"
)


def test_unknown_key_is_refused_from_the_language_hosts_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # As under `pulumi up`: the config only in the environment variable, nothing set in-process.
    monkeypatch.setenv(CONFIG_ENV, json.dumps({**project_defaults(), "k8s-demo:replica": "3"}))
    pulumi.runtime.set_all_config({})
    with pytest.raises(pulumi.RunError) as caught:
        load_settings(pulumi.Config("k8s-demo"), project="k8s-demo", stack="dev", app_version="0.2")
    assert str(caught.value).splitlines()[1:] == [f"  - {UNKNOWN_REPLICA}"]


def test_unknown_key_is_refused_under_the_mocks() -> None:
    with pytest.raises(pulumi.RunError) as caught:
        run_program("dev", {**example_config("dev"), "k8s-demo:replica": "3"})
    assert str(caught.value).splitlines()[1:] == [f"  - {UNKNOWN_REPLICA}"]


def test_keys_of_other_namespaces_are_not_refused() -> None:
    # Provider settings such as kubernetes:context share the stack's config.
    run = run_program("dev", {**example_config("dev"), "kubernetes:context": "kind-k8s-demo"})
    assert len(run.of_type(DEPLOYMENT_TYPE)) == 1


# The reader's error collection: every problem at once, in key order, misspelt keys last, in the
# project's words (pydantic's own never reach the user).


def test_several_bad_keys_are_listed_in_one_error_in_key_order(load: Load) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load(
            zone="eu",
            replicas="-1",
            maxSurge="0",
            maxUnavailable="0%",
            nodePort="80",
            cpuRequest="1",
            memoryLimit="64MB",
            imageTag="latest",
        )
    assert str(caught.value) == (
        "invalid configuration for stack 'dev' (7 problems); nothing was changed:\n"
        "  - k8s-demo:imageTag = 'latest': 'latest' is refused: name the version, so rollback and history mean "
        "something\n"
        "  - k8s-demo:replicas = '-1': must be an integer >= 0\n"
        "  - k8s-demo:maxSurge = 0: must not be zero while k8s-demo:maxUnavailable = '0%' is zero too, "
        "or a rollout could never start\n"
        "  - k8s-demo:nodePort = '80': must be an integer from 30000 to 32767, or 0 to have one assigned\n"
        "  - k8s-demo:memoryLimit = '64MB': must be a Kubernetes quantity such as '100m', '0.5', '64Mi' or '1Gi'\n"
        "  - k8s-demo:cpuRequest = '1': must not exceed k8s-demo:cpuLimit ('200m')\n"
        f"  - k8s-demo:zone = 'eu': {UNKNOWN_REPLICA.split(': ', 1)[1]}"
    )


def test_every_missing_key_is_named_with_its_rule() -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load_settings(StackConfig("k8s-demo", {}), project="k8s-demo", stack="dev", app_version="0.2")
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid configuration for stack 'dev' (24 problems); nothing was changed:"
    assert lines[4] == "  - k8s-demo:replicas is not set: must be an integer >= 0 (its default is in Pulumi.yaml)"


def test_a_value_is_reported_as_given_before_it_is_trimmed(load: Load) -> None:
    with pytest.raises(pulumi.RunError, match=r"k8s-demo:replicas = ' ten ': must be an integer >= 0$"):
        load(replicas=" ten ")


def test_pulumi_yaml_declares_exactly_the_keys_the_reader_knows() -> None:
    assert [key.removeprefix("k8s-demo:") for key in project_defaults()] == list(KNOWN_KEYS)


# Canary releases: the strategy and how a canary is judged.


def test_strategy_defaults_to_rolling(load: Load) -> None:
    assert load("pr-7").strategy == "rolling"


def test_dev_keeps_rolling_and_prod_canaries() -> None:
    strategies = [
        load_settings(
            StackConfig("k8s-demo", example_config(stack)), project="k8s-demo", stack=stack, app_version="0.2"
        ).strategy
        for stack in ("dev", "prod")
    ]
    assert strategies == ["rolling", "canary"]


def test_canary_plan_from_the_keys(load: Load) -> None:
    settings = load(
        rolloutStrategy="canary",
        canaryReplicas="2",
        canaryAnalysisSeconds="30",
        canaryMaxErrorRate="0.5",
        canaryMaxP99Ms="250",
        canaryMinRequests="20",
    )
    canary = settings.canary
    assert (
        canary.replicas,
        canary.analysis_seconds,
        canary.max_error_rate,
        canary.max_p99_ms,
        canary.min_requests,
    ) == (
        2,
        30,
        0.5,
        250,
        20,
    )


def test_no_canary_runs_by_default(load: Load) -> None:
    assert load().canary_image_tag is None


def test_canary_image_tag_marker_means_the_app_version(load: Load) -> None:
    assert load(rolloutStrategy="canary", canaryImageTag="app/VERSION").canary_image_tag == "0.2"


def test_canary_share_counts_the_canary_pods_among_all(load: Load) -> None:
    settings = load(replicas="4", rolloutStrategy="canary")
    assert settings.canary.share(settings.rollout.replicas) == 0.2


def test_canary_adds_at_most_its_ready_budget_and_its_window(load: Load) -> None:
    # 30 s to get ready + 3 s minReadySeconds, then the default 120 s window.
    settings = load(rolloutStrategy="canary")
    assert settings.canary.most_added_seconds(settings.rollout) == 153


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("rolloutStrategy", "blue-green", "must be 'rolling' or 'canary'"),
        ("rolloutStrategy", "Canary", "must be 'rolling' or 'canary'"),
        ("canaryReplicas", "0", "must be an integer >= 1"),
        ("canaryReplicas", "one", "must be an integer >= 1"),
        ("canaryAnalysisSeconds", "9", "must be an integer >= 10"),
        ("canaryMaxErrorRate", "101", "must be a percentage from 0 to 100 such as '1' or '0.5', without '%'"),
        ("canaryMaxErrorRate", "5%", "must be a percentage from 0 to 100 such as '1' or '0.5', without '%'"),
        ("canaryMaxErrorRate", "-1", "must be a percentage from 0 to 100 such as '1' or '0.5', without '%'"),
        ("canaryMaxP99Ms", "-5", "must be an integer >= 0 (milliseconds; 0 for no bound)"),
        ("canaryMinRequests", "0", "must be an integer >= 1"),
        (
            "canaryImageTag",
            "not a tag",
            "must be a Docker tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-'), "
            "not empty and not 'latest', or 'app/VERSION' for the app's version; or '' for no canary (make up sets it)",
        ),
    ],
)
def test_bad_canary_value_is_refused_with_its_rule(load: Load, key: str, value: str, rule: str) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load(**{"rolloutStrategy": "canary", key: value})
    assert str(caught.value).splitlines()[1:] == [f"  - k8s-demo:{key} = {value!r}: {rule}"]


def test_canary_image_tag_latest_is_refused(load: Load) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load(rolloutStrategy="canary", canaryImageTag="latest")
    assert str(caught.value).splitlines()[1:] == [
        "  - k8s-demo:canaryImageTag = 'latest': 'latest' is refused: name the version, so rollback and history "
        "mean something"
    ]


def test_a_canary_under_the_rolling_strategy_is_refused(load: Load) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load(canaryImageTag="0.3")
    assert str(caught.value).splitlines()[1:] == [
        "  - k8s-demo:canaryImageTag = '0.3': a canary runs only with k8s-demo:rolloutStrategy = 'canary': finish "
        "it with `make up` under 'canary', or drop it with `pulumi config rm canaryImageTag`"
    ]


def test_every_bad_canary_key_is_reported_at_once(load: Load) -> None:
    with pytest.raises(pulumi.RunError) as caught:
        load(rolloutStrategy="canary", canaryReplicas="0", canaryAnalysisSeconds="1", canaryMinRequests="x")
    assert str(caught.value).splitlines()[0] == (
        "invalid configuration for stack 'dev' (3 problems); nothing was changed:"
    )


@pytest.mark.parametrize(("host", "expected"), [("ssh://builder", "ssh://builder"), ("", None)])
def test_the_docker_providers_host_comes_with_the_settings(host: str, expected: str | None) -> None:
    values = {**example_config("dev"), "docker:host": host}
    settings = load_settings(StackConfig("k8s-demo", values), project="k8s-demo", stack="dev", app_version="0.2")
    assert settings.docker_host == expected


@pytest.mark.parametrize("path", sorted(ROOT.glob("Pulumi.*.yaml")), ids=lambda path: path.name)
def test_each_of_the_projects_own_stack_files_is_valid_config(path: Path) -> None:
    # The one place the project's own stack files are read (the others pin tests/data/stacks): a team's edit
    # must still be config the program accepts.
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    settings = load_settings(
        StackConfig("k8s-demo", stack_file_config(stack)), project="k8s-demo", stack=stack, app_version="0.2"
    )
    assert settings.stack == stack
