#!/usr/bin/python3
"""OCI runtime wrapper for the sandbox's dockerd: runc, with negative OOM scores clamped to 0.

Root on this kind of machine lacks CAP_SYS_RESOURCE, so the kernel refuses a
negative ``oom_score_adj`` and runc fails with "can't get final child's PID
from pipe: EOF". The kubelet asks for -998 on every pod sandbox and -997 on
Guaranteed containers, so without this no pod of the real node could start.

docker-up.sh registers this file with the sandbox's own dockerd
(``--add-runtime sandbox-runc=<this file> --default-runtime sandbox-runc``),
so no dependency is patched and no other engine is affected. containerd's
runc shim calls it exactly as it would call runc::

    <this> --root R --log L --log-format json create --bundle B --pid-file P ID
    <this> --root R ... exec --process FILE --detach --pid-file P ID

For ``create`` and ``run`` it rewrites ``process.oomScoreAdj`` in
``<bundle>/config.json`` (the bundle defaults to the working directory, as in
runc); for ``exec`` it rewrites ``oomScoreAdj`` in the process file. Only a
negative value is rewritten, atomically and keeping the file's mode; every
other byte of meaning is kept (Python's json keeps integers above 2**53
exact, unlike jq 1.6). Then it execs runc with the arguments unchanged. A
file it cannot rewrite is passed through unchanged, with a note on stderr.

Environment: ``OOM_CLAMP_RUNC`` the runc to exec (default /usr/sbin/runc);
``OOM_CLAMP_LOG`` a file to append one line per clamp to (default: none).
Runs with the system python3 and its standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence

#: runc's global flags that take a value (``--root R``): skipped to find the subcommand.
GLOBAL_FLAGS_WITH_VALUE = frozenset({"--root", "--log", "--log-format", "--criu", "--rootless"})


def target(argv: Sequence[str], cwd: str) -> tuple[str, tuple[str, ...]] | None:
    """The JSON file and key path to clamp for this runc invocation, or None for other subcommands."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in GLOBAL_FLAGS_WITH_VALUE else 1
    if i >= len(argv) or argv[i] not in ("create", "run", "exec"):
        return None
    command, rest = argv[i], argv[i + 1 :]
    names = ("--process", "-p") if command == "exec" else ("--bundle", "-b")
    value: str | None = None
    for j, arg in enumerate(rest):
        if arg in names and j + 1 < len(rest):
            value = rest[j + 1]
        elif arg.partition("=")[0] in names and "=" in arg:
            value = arg.partition("=")[2]
    if command == "exec":
        return None if value is None else (value, ("oomScoreAdj",))
    return (os.path.join(value or cwd, "config.json"), ("process", "oomScoreAdj"))


def clamp(path: str, keys: tuple[str, ...], log: str | None) -> None:
    """Set the integer at ``keys`` in the JSON file ``path`` to 0 when it is negative; else leave the file alone."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    parent = document
    for key in keys[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    value = parent.get(keys[-1]) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or not isinstance(value, int) or value >= 0:
        return
    parent[keys[-1]] = 0
    fd, scratch = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".oom-clamp.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out, separators=(",", ":"))
    os.chmod(scratch, os.stat(path).st_mode & 0o7777)
    os.replace(scratch, path)
    if log:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} clamped {'.'.join(keys)} {value} -> 0 in {path}\n")


def main(argv: list[str]) -> None:
    runc = os.environ.get("OOM_CLAMP_RUNC", "/usr/sbin/runc")
    found = target(argv, os.getcwd())
    if found is not None:
        try:
            clamp(*found, os.environ.get("OOM_CLAMP_LOG") or None)
        except (OSError, ValueError) as error:
            note = f"oom-clamp-runc: could not rewrite {found[0]} ({error}); passing it through unchanged"
            print(note, file=sys.stderr)
    os.execv(runc, [runc, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
