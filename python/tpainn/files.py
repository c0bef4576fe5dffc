"""Whole-file replacement: a file is written beside its target and renamed onto it in one step, so that a
reader (or a run killed while writing) sees the old file or the complete new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path (`path` + '.partial') to write the new file to: renamed onto `path` when the block
    completes, removed when it fails."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
