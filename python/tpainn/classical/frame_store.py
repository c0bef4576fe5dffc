"""The HDF5 frame files the classical generators write (tpainn.data.hdf5), as resumable stores.

A generator checks its output path first (`check_output`), then either creates the file with its metadata
(`create`, so that an unwritable place fails before any sampling) or continues the file already there:
`stored_run` opens it and refuses a file that is not a frame file or comes from another generator,
`check_settings` refuses one written with other settings, naming every difference. Frames are then appended
in chunks (write_frames(..., append=True)), so that a killed run keeps what it wrote. A file made in one go
(`write_complete`) appears only when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ase import Atoms

from tpainn.data.errors import DataError
from tpainn.data.hdf5 import H5_SUFFIXES, H5Frames, write_frames
from tpainn.files import replacing


def check_output(output: str | os.PathLike) -> Path:
    """`output` as a Path to an HDF5 file that can be written; ValueError says why not."""
    output = Path(output)
    if output.suffix.lower() not in H5_SUFFIXES:
        raise ValueError(f"output {output}: must be an HDF5 file ending in {' or '.join(H5_SUFFIXES)}")
    if output.is_dir():
        raise ValueError(f"output {output}: is a folder, not a file")
    if not output.parent.is_dir():
        raise ValueError(f"output {output}: the folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK | os.X_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise ValueError(f"output {output}: not writable")
    return output


def create(output: Path, metadata: dict) -> None:
    """An empty frame file with `metadata` (creating it now proves the place writable)."""
    try:
        write_frames(output, [], metadata=metadata)
    except (DataError, OSError) as err:
        raise ValueError(f"output {output}: cannot be written ({err})") from err


def stored_run(output: Path, generator: str) -> tuple[dict, int] | None:
    """(metadata, number of frames) of the file at `output` to continue, None when there is none; ValueError for
    a file that is no frame file or was written by something other than `generator`."""
    if not output.exists():
        return None
    try:
        frames = H5Frames(output)
    except DataError as err:
        raise ValueError(f"output {output}: exists and is not a tpainn frame file to continue ({err})") from err
    try:
        metadata, n_frames = frames.metadata, len(frames)
    finally:
        frames.close()
    if metadata.get("generator") != generator:
        raise ValueError(
            f"output {output}: exists but was not written by {generator.rsplit('.', 1)[-1]}; refusing to append "
            "to it (choose another output or delete the file)"
        )
    return metadata, n_frames


def check_settings(output: Path, stored: dict, wanted: dict) -> None:
    """ValueError naming every setting (key of `wanted`) whose value in the file (`stored`) differs."""
    wanted = json.loads(json.dumps(wanted))  # tuples as the file holds them: lists
    differing = {key: (stored.get(key), value) for key, value in wanted.items() if stored.get(key) != value}
    if differing:
        details = "; ".join(f"{key}: file has {old!r}, this run {new!r}" for key, (old, new) in differing.items())
        raise ValueError(
            f"output {output}: was written with other settings ({details}); re-run with the file's settings "
            "to continue it, or choose another output"
        )


def require_generator(path: str | os.PathLike, metadata: dict, generator: str, command: str) -> None:
    """ValueError unless the file at `path` (its `metadata`) was written by `generator` (`tpainn COMMAND`)."""
    if metadata.get("generator") != generator:
        raise ValueError(f"{path}: not written by `tpainn {command}` (generator {metadata.get('generator')!r})")


def read_frame(path: Path, index: int) -> Atoms:
    frames = H5Frames(path)
    try:
        return frames[index]
    finally:
        frames.close()


def write_complete(output: Path, frames: list[Atoms], metadata: dict) -> None:
    """All of a file at once: `output` appears only when it is complete."""
    with replacing(output) as partial:
        write_frames(partial, frames, metadata=metadata)
