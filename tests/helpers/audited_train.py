"""`python -m helpers.audited_train ARGS` runs `tpainn ARGS` and, at exit, writes the paths this process opened
for writing (seen by a Python audit hook) to $TPAINN_AUDIT_DIR/writes-$RANK.json: which process writes what."""

import atexit
import json
import os
import sys
from pathlib import Path

from tpainn.cli import main

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
written = set()


def _record(event: str, args: tuple) -> None:
    if event != "open" or not isinstance(args[0], (str, os.PathLike)):
        return
    path, mode, flags = args
    if (mode and any(c in mode for c in "wax+")) or (not mode and flags & WRITE_FLAGS):
        written.add(os.path.abspath(path))


def _report() -> None:
    report = Path(os.environ["TPAINN_AUDIT_DIR"]) / f"writes-{os.environ.get('RANK', '0')}.json"
    paths = sorted(written)  # before opening the report itself
    report.write_text(json.dumps(paths))


atexit.register(_report)
sys.addaudithook(_record)
sys.exit(main())
