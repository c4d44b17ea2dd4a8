"""The example stacks the unit tests pin: tests/data/stacks/, not the project's own stack files.

A team edits its ``Pulumi.<stack>.yaml`` (a registry for dev, its own replicas); ``make test``, which gates
``deploy.yml``, must not fail because it did. See tests/data/README.md, "Example stack files".
"""

from __future__ import annotations

from pathlib import Path

from project import stack_file_config

#: The example stack files, as committed when the tests were written.
EXAMPLE_STACKS = Path(__file__).resolve().parent / "data" / "stacks"


def example_config(stack: str) -> dict[str, str]:
    """An example stack's config as the CLI passes it: the project's defaults, overlaid by the example stack file
    (none for a review stack such as ``pr-42``)."""
    return stack_file_config(stack, stack_dir=EXAMPLE_STACKS)
