"""``make drift STACK=…``: has the cluster drifted from the stack's last update? The verdict and its exit code.

The check is a refreshing preview that writes no state: it reads every
resource from the cluster and compares it with the last update, as the PR
comment's drift section does, and prints that same section. The exit code
tells the three outcomes apart, so a scheduled job can act on each:

- 0: no drift, the cluster matches the last update;
- 1: drift: each drifted field, its value in the cluster, in the last update and in config;
- 2: the check itself failed (the cluster or the backend unreachable, config the program refuses,
  a locked stack): nothing can be said about drift.

An error wins over drift: a preview that failed may have read only part of the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Exit codes of ``make drift``.
NO_DRIFT = 0
DRIFT = 1
ERROR = 2


def exit_code(*, failed: bool, drifted: int) -> int:
    """2 when the check failed, else 1 when ``drifted`` (resources found changed) is not zero, else 0."""
    if failed:
        return ERROR
    return DRIFT if drifted else NO_DRIFT


@dataclass(frozen=True, kw_only=True)
class DriftReport:
    """The outcome of one stack's drift check.

    ``section`` is the PR comment's drift section (Markdown lines); ``errors``
    what made the check fail (the engine's error diagnostics and the CLI's own
    error output), empty when it did not.
    """

    stack: str
    drifted: int
    section: Sequence[str]
    errors: Sequence[str] = ()

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def exit_code(self) -> int:
        return exit_code(failed=self.failed, drifted=self.drifted)

    def text(self) -> str:
        """What ``make drift`` prints: a verdict line, then the drift section, or what failed."""
        if self.failed:
            lines = [f"{self.stack}: the drift check failed, so drift is unknown:", ""]
            lines += [f"  {line}" for error in self.errors for line in error.strip().splitlines()]
            if self.drifted:
                lines += ["", "What it read before it failed:", "", *self.section]
            return "\n".join(lines)
        if not self.drifted:
            return f"{self.stack}: no drift: the cluster matches the last update."
        verdict = (
            f"{self.stack}: drift in {self.drifted} resource(s): the next `make up STACK={self.stack}` "
            "puts back what config says; to keep a change, write it into config first."
        )
        return "\n".join([verdict, "", *self.section])
