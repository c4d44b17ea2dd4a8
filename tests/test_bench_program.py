"""The mock benchmark runs every case and prints its table (timings themselves are not asserted)."""

from __future__ import annotations

import pytest

from tools.bench_program import main


def test_bench_prints_one_row_per_case(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--runs", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "ms" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "baseline: empty program",
        "dev (builds app/VERSION)",
        "dev, imageTag=0.1 (no build)",
        "prod (push, digest)",
        "pr-42 (no stack file)",
    ]
