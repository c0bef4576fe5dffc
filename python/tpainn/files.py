"""Whole-file replacement: a file is written beside its target and renamed onto it in one step, so that a
reader (or a run killed while writing) sees the old file or the complete new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write the new file to: flushed to disk and renamed onto `path` when the
    block completes, removed when it fails. The name holds the process id: processes writing the same file at
    once (the ranks of a DDP run filling a cache) each write their own and the last rename wins."""
    path = Path(path)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        with open(partial, "rb+") as written:  # the bytes on disk before the name points at them
            os.fsync(written.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
