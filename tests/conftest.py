"""Shared fixtures of the unit tests: whole-program runs under mocks, and a mock engine for component tests.

The end-to-end fixtures are in tests/e2e/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pulumi
import pytest
from pulumi.runtime.settings import set_root_resource

from components.values import Resources
from ops.offline import ClusterMocks, ProgramRun, run_program, stack_config
from project import NAME, config_key, project_defaults
from tests.examples import example_config

#: The example stacks plus a review stack that has no stack file.
STACKS = ("dev", "prod", "pr-42")


@pytest.fixture(scope="session")
def stack_runs() -> dict[str, ProgramRun]:
    """The program run once per stack with that example stack's config (tests/examples.py)."""
    return {stack: run_program(stack, example_config(stack)) for stack in STACKS}


@pytest.fixture(scope="session")
def dev(stack_runs: dict[str, ProgramRun]) -> ProgramRun:
    return stack_runs["dev"]


@pytest.fixture(scope="session")
def prod(stack_runs: dict[str, ProgramRun]) -> ProgramRun:
    return stack_runs["prod"]


@pytest.fixture(scope="session")
def review(stack_runs: dict[str, ProgramRun]) -> ProgramRun:
    return stack_runs["pr-42"]


@pytest.fixture
def run_dev_with() -> Callable[..., ProgramRun]:
    """Run the dev stack with extra project keys: ``run_dev_with(imageTag="0.1")``."""

    def run(**keys: str) -> ProgramRun:
        config = {**example_config("dev"), **{config_key(key): value for key, value in keys.items()}}
        return run_program("dev", config)

    return run


@pytest.fixture
def config() -> Iterator[Callable[..., pulumi.Config]]:
    """Hand the program the project defaults overlaid with ``keys`` (short names); return a ``pulumi.Config``.

    The config goes where the language host puts it (``ops.offline.stack_config``) until the test ends.
    """
    with ExitStack() as installed:

        def make(**keys: str) -> pulumi.Config:
            values = {**project_defaults(), **{config_key(k): v for k, v in keys.items()}}
            installed.enter_context(stack_config(values))
            return pulumi.Config(NAME)

        yield make


@pytest.fixture
def mocks() -> ClusterMocks:
    """A fresh mock engine for testing one component at a time."""
    engine = ClusterMocks()
    set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_mocks(engine, project=NAME, stack="unit", preview=False)
    return engine


@pytest.fixture
def resources() -> Resources:
    return Resources(cpu_request="50m", cpu_limit="200m", memory_request="32Mi", memory_limit="64Mi")
