"""Kubernetes and Docker values: tags, repositories, namespaces, quantities and rollout bounds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from components.values import (
    TAG_RULE,
    IntOrPercent,
    default_namespace,
    image_tag_problem,
    is_int_or_percent,
    is_zero,
    parse_int_or_percent,
    quantity_value,
    registry_host,
    resolve_int_or_percent,
)


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("0.1", None),
        ("v1_2-rc.3", None),
        ("latest", "'latest' is refused: name the version, so rollback and history mean something"),
        ("has space", TAG_RULE),
        ("-1", TAG_RULE),
        ("", TAG_RULE),
        ("app/VERSION", TAG_RULE),
    ],
)
def test_image_tag_problem(tag: str, problem: str | None) -> None:
    assert image_tag_problem(tag) == problem


@pytest.mark.parametrize(
    ("stack", "expected"),
    [("dev", "k8s-demo-dev"), ("Feature_X.1", "k8s-demo-feature-x-1"), ("a" * 80, "k8s-demo-" + "a" * 54)],
)
def test_default_namespace_is_a_dns_label(stack: str, expected: str) -> None:
    assert default_namespace("k8s-demo", stack) == expected


def test_a_percentage_rounds_up_to_surge_pods() -> None:
    assert resolve_int_or_percent("25%", 10, round_up=True) == 3


def test_a_percentage_rounds_down_to_unavailable_pods() -> None:
    assert resolve_int_or_percent("25%", 10, round_up=False) == 2


@pytest.mark.parametrize(
    ("repository", "host"),
    [
        ("k8s-demo", None),
        ("team/k8s-demo", None),
        ("registry.example.com/k8s-demo", "registry.example.com"),
        ("localhost:5000/k8s-demo", "localhost:5000"),
        ("localhost/k8s-demo", "localhost"),
    ],
)
def test_registry_host(repository: str, host: str | None) -> None:
    assert registry_host(repository) == host


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("100m", Decimal("0.1")), ("0.5", Decimal("0.5")), ("2", Decimal(2)), ("64Mi", Decimal(64 * 1024**2))],
)
def test_quantity_value(quantity: str, value: Decimal) -> None:
    assert quantity_value(quantity) == value


def test_quantity_value_refuses_a_unit_kubernetes_does_not_know() -> None:
    with pytest.raises(ValueError, match=r"^not a Kubernetes quantity: '64MB'$"):
        quantity_value("64MB")


@pytest.mark.parametrize(
    ("raw", "bound"),
    [
        ("2", 2),
        ("+0", 0),
        ("25%", "25%"),
        ("050%", "50%"),
        ("100%", "100%"),
        ("101%", None),
        ("-1", None),
        ("1.5", None),
    ],
)
def test_parse_int_or_percent(raw: str, bound: IntOrPercent | None) -> None:
    assert parse_int_or_percent(raw) == bound


@pytest.mark.parametrize(
    ("value", "valid"), [(0, True), (3, True), ("0%", True), ("100%", True), (-1, False), ("101%", False), ("3", False)]
)
def test_is_int_or_percent(value: IntOrPercent, valid: bool) -> None:
    assert is_int_or_percent(value) is valid


@pytest.mark.parametrize(("value", "zero"), [(0, True), ("0%", True), ("00%", True), (1, False), ("1%", False)])
def test_is_zero(value: IntOrPercent, zero: bool) -> None:
    assert is_zero(value) is zero
