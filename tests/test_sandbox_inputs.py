"""The sandbox tools' cache is keyed by sandbox/versions.env, which records the sources built from this repository."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SANDBOX = Path(__file__).resolve().parent.parent / "sandbox"


def inputs_digest() -> str:
    """sha256 (first 12 hex digits) of the pause image's source and the patches, as versions.env documents it."""
    files = [SANDBOX / "pause" / "go.mod", SANDBOX / "pause" / "main.go", *sorted((SANDBOX / "patches").iterdir())]
    return hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()[:12]


def recorded(name: str) -> str:
    found = re.search(rf"^{name}=(\S+)$", (SANDBOX / "versions.env").read_text(encoding="utf-8"), re.MULTILINE)
    assert found is not None, f"sandbox/versions.env has no {name}"
    return found.group(1)


def test_the_recorded_inputs_are_the_sources_in_the_repository() -> None:
    digest = inputs_digest()
    assert recorded("SANDBOX_TOOLS_INPUTS") == digest, (
        f"sandbox/pause or sandbox/patches changed: set SANDBOX_TOOLS_INPUTS={digest} in sandbox/versions.env "
        "and bump SANDBOX_TOOLS_RECIPE, so the sandbox tools are built again"
    )


def test_the_tools_path_keys_the_cache_by_the_recipe() -> None:
    assert "recipe=$SANDBOX_TOOLS_RECIPE" in (SANDBOX / "tools-path.sh").read_text(encoding="utf-8")
