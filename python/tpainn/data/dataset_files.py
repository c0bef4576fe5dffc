"""Where a registry dataset's files are: under $TPAINN_DATA_DIR/<name>/ (development and CI point it at a
shared copy) or else in the download cache ($TPAINN_CACHE_DIR, default ~/.cache/tpainn), fetching missing
files from their public URLs. Every file is checked against its sha256 before use.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from tpainn.data.errors import DataError
from tpainn.files import replacing
from tpainn.data.registry import Dataset, DatasetFile, get_dataset

_HASH_BLOCK_BYTES = 1 << 20
# Files whose checksum this process has already confirmed, keyed so that a changed file is re-checked.
_verified_files: set[tuple[str, int, int, str]] = set()


def _data_dir() -> Path | None:
    value = os.environ.get("TPAINN_DATA_DIR")
    return Path(value).expanduser() if value else None


def _cache_dir() -> Path:
    return Path(os.environ.get("TPAINN_CACHE_DIR") or Path.home() / ".cache" / "tpainn").expanduser()


def sha256_of(path) -> str:
    """Hex sha256 of a file's bytes."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, expected_sha256: str) -> None:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected_sha256)
    if key in _verified_files:
        return
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise DataError(
            f"{path}: checksum mismatch (sha256 expected {expected_sha256}, actual {actual}); the file is "
            "corrupt or another version: replace it, or delete it from the cache to download it again"
        )
    _verified_files.add(key)


def _fetch(url: str, out, label: str) -> str:
    """Stream `url` into the open binary file `out` with a progress bar; returns the sha256 of the bytes."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response:
        size = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=label) as progress:
            while block := response.read(_HASH_BLOCK_BYTES):
                out.write(block)
                digest.update(block)
                progress.update(len(block))
    return digest.hexdigest()


def _download(dataset: Dataset, file: DatasetFile, target: Path) -> None:
    """Download beside `target`, check it, then rename (tpainn.files.replacing): `target` is complete or absent."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with replacing(target) as partial:
        with open(partial, "wb") as out:
            try:
                actual = _fetch(file.url, out, label=f"{dataset.name}/{file.path}")
            except (OSError, http.client.HTTPException) as err:
                raise DataError(
                    f"could not download {file.url} ({err}). Without network access, place the dataset's files "
                    f"under $TPAINN_DATA_DIR/{dataset.name}/ (see `tpainn data info {dataset.name}`)"
                ) from err
        if actual != file.sha256:
            raise DataError(
                f"{file.url}: downloaded {dataset.name}/{file.path} has sha256 {actual}, expected {file.sha256}; "
                "the download was discarded"
            )


def _local_root(dataset: Dataset) -> Path | None:
    """$TPAINN_DATA_DIR/<name> when it holds every file of the dataset, else None."""
    data_dir = _data_dir()
    if data_dir is None:
        return None
    root = data_dir / dataset.name
    missing = [file.path for file in dataset.files if not (root / file.path).is_file()]
    if not missing:
        return root
    if root.exists():
        warnings.warn(f"{root} lacks {missing[0]} (and {len(missing) - 1} more); using the download cache instead")
    return None


def _dataset_root(dataset: Dataset) -> Path:
    """The folder holding every file of `dataset`, checked; downloads what the cache lacks."""
    root = _local_root(dataset)
    if root is None:
        root = _cache_dir() / dataset.name
        for file in dataset.files:
            if not (root / file.path).is_file():
                _download(dataset, file, root / file.path)
    for file in dataset.files:
        _verify(root / file.path, file.sha256)
    return root


def dataset_path(name: str) -> Path:
    """The path to give the dataset's reader (a file or a folder), with every file present and checked."""
    dataset = get_dataset(name)
    if not dataset.files:
        raise DataError(f"dataset {name!r} has no files: it comes from {dataset.source.repository}")
    return _dataset_root(dataset) / dataset.read_from


def location(dataset: Dataset) -> str:
    """Where the files of `dataset` are (or will be), for `tpainn data info NAME`."""
    if not dataset.files:
        return "installed Python package (nothing to download)"
    root = _local_root(dataset)
    if root is not None:
        return f"{root} ($TPAINN_DATA_DIR)"
    cache_root = _cache_dir() / dataset.name
    if all((cache_root / file.path).is_file() for file in dataset.files):
        return f"{cache_root} (download cache)"
    return f"not downloaded yet; load_dataset({dataset.name!r}) fetches it into {cache_root}"

