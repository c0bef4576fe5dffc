"""Frame sources of a run: the DFT pool, its test set, and how both are named (with sha256) in results.

A frame source is a registry name (`tpainn data list`), a file (extended XYZ, n2p2 input.data, ASE database,
HDF5 frame store) or a DeePMD folder. The test set (`data.test` of a training config, `test` of a learning
curve) is one of:

- "standard": the registry's standard split of the pool (registry datasets only);
- a number 0 < f < 1: the first round(f·n) frames of numpy.random.default_rng(test_seed).permutation(n) of the
  pool's n frames (the rule the registry uses for QM9), the rest staying in the pool;
- another frame source: every frame of it, the whole of the first source being the pool;
- null: no test set (the validation frames are evaluated at the end).

Label keys (`energy_key`, `forces_key`, `stress_key`) apply to the extended XYZ and ASE database sources; the
other formats define their labels themselves. A test frame that is also in the pool is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from torch.utils.data import Subset

from tpainn.data.dataset_files import sha256_of
from tpainn.data.frames import load_frames, no_such_source
from tpainn.data.registry import DATASETS, standard_split

LABEL_KEYS = ("energy_key", "forces_key", "stress_key")
_hashes: dict[tuple[str, int, int], str] = {}


def label_keys(data: dict[str, Any]) -> dict[str, str | None]:
    """The label keys of a config's `data` section (None where not given)."""
    return {key: data.get(key) for key in LABEL_KEYS}


# ------------------------------------------------------------------------------------------- naming


def _file_sha256(path: Path) -> str:
    """sha256_of, remembered per (file, size, mtime): a learning curve names its sources once per run."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = sha256_of(path)
    return _hashes[key]


def _manifest_sha256(lines: list[tuple[str, str]]) -> str:
    """sha256 of the `sha256sum` listing ("<sha256>  <path>\\n" per file, sorted by path) of several files."""
    text = "".join(f"{sha}  {name}\n" for name, sha in sorted(lines, key=lambda line: line[0]))
    return hashlib.sha256(text.encode()).hexdigest()


def source_record(spec: str | os.PathLike) -> dict[str, Any]:
    """What a frame source is: {"source", "kind", "sha256"} (a folder or a multi-file dataset: the sha256 of the
    `sha256sum` listing of its files, sorted by path; a package dataset: its pinned revision instead)."""
    spec = str(spec)
    if spec in DATASETS:
        dataset = DATASETS[spec]
        if not dataset.files:
            return {"source": spec, "kind": "registry", "sha256": None, "revision": dataset.source.revision}
        files = [(file.path, file.sha256) for file in dataset.files]
        sha = files[0][1] if len(files) == 1 else _manifest_sha256(files)
        return {"source": spec, "kind": "registry", "sha256": sha}
    path = Path(spec)
    if path.is_dir():
        files = [(str(f.relative_to(path)), _file_sha256(f)) for f in path.rglob("*") if f.is_file()]
        return {"source": str(path.resolve()), "kind": "folder", "sha256": _manifest_sha256(files)}
    if not path.is_file():
        raise no_such_source(spec)
    return {"source": str(path.resolve()), "kind": "file", "sha256": _file_sha256(path)}


def describe_test(test: Any, seed: int) -> dict[str, Any]:
    if test == "standard":
        return {"test": "standard split of the pool"}
    if isinstance(test, float):
        return {"test": f"fraction {test:g} of the pool", "test_seed": seed}
    if test is None:
        return {"test": None}
    return {"test": source_record(test)}


def sources_of(data: dict[str, Any]) -> dict[str, Any]:
    """The pool and the test set of a config's `data` section, named with their sha256 (for provenance/results)."""
    record = {"pool": source_record(data["dataset"]), **describe_test(data["test"], data.get("test_seed", 0))}
    record.update({key: value for key, value in label_keys(data).items() if value is not None})
    return record


def sha_line(record: dict[str, Any]) -> str:
    return f"{record['source']} (sha256 {record['sha256']})" if record.get("sha256") else str(record["source"])


# ------------------------------------------------------------------------------------------- splits


def fraction_split(n_frames: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) indices: test = the first round(fraction·n) of default_rng(seed).permutation(n), sorted."""
    n_test = round(fraction * n_frames)
    if not 1 <= n_test < n_frames:
        raise ValueError(f"a test fraction of {fraction:g} of {n_frames} frames leaves {n_test} test frames "
                         f"and {n_frames - n_test} for training: both need at least one")  # fmt: skip
    test = np.sort(np.random.default_rng(seed).permutation(n_frames)[:n_test]).astype(np.int64)
    return np.setdiff1d(np.arange(n_frames, dtype=np.int64), test), test


# Positions closer than this (Å) in every coordinate are the same frame (a copy written with 8 decimals).
SAME_FRAME_ATOL_A = 1e-6


def check_held_out(pool: Sequence[Atoms], test: Sequence[Atoms], pool_name: str, test_name: str) -> None:
    """ValueError when frames of the test set are also in the pool (same elements, positions within
    SAME_FRAME_ATOL_A): a test set must be held out. Candidates are found by their mean position, sorted."""
    pool = list(pool)
    means = np.array([np.asarray(atoms.positions).mean(axis=0)[0] for atoms in pool])
    order = np.argsort(means)
    shared = []
    for j, atoms in enumerate(test):
        x = np.asarray(atoms.positions).mean(axis=0)[0]
        lo, hi = np.searchsorted(means[order], [x - SAME_FRAME_ATOL_A, x + SAME_FRAME_ATOL_A])
        for i in order[lo:hi]:
            other = pool[int(i)]
            if len(other) == len(atoms) and (other.numbers == atoms.numbers).all() and np.allclose(
                other.positions, atoms.positions, rtol=0, atol=SAME_FRAME_ATOL_A
            ):
                shared.append((j, int(i)))
                break
    if shared:
        j, i = shared[0]
        raise ValueError(f"{len(shared)} of the {len(test)} test frames ({test_name}) are also in the pool ({pool_name}), "
                         f"e.g. test frame {j} = pool frame {i}: the test set must be held out")  # fmt: skip


def pool_and_test(data: dict[str, Any], frames: Sequence[Atoms]) -> tuple[np.ndarray, Sequence[Atoms] | None]:
    """The pool's frame indices (train and validation are drawn from them) and the test frames of a config's
    `data` section, `frames` being those of data["dataset"] (see the module docstring)."""
    dataset, test = str(data["dataset"]), data["test"]
    if test == "standard":
        if dataset not in DATASETS:
            raise ValueError(
                f"data.test=standard: {dataset} is not a registry dataset and has no standard split; give a test "
                "file (data.test=FILE, --test FILE) or a fraction of the pool (data.test=0.2)"
            )
        pool, test_indices = standard_split(dataset, len(frames))
        return pool, Subset(frames, test_indices.tolist())
    if isinstance(test, float):
        pool, test_indices = fraction_split(len(frames), test, data.get("test_seed", 0))
        return pool, Subset(frames, test_indices.tolist())
    if test is None:
        return np.arange(len(frames)), None
    test_frames = load_frames(test, data.get("format"), **label_keys(data))
    check_held_out(frames, test_frames, dataset, str(test))
    return np.arange(len(frames)), test_frames


def test_setting(value: Any) -> None:
    """Config check of a test setting: "standard", null, a fraction 0 < f < 1, or a frame source."""
    if value is None or value == "standard":
        return
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be 'standard', a frame source or a fraction 0 < f < 1, got {value!r}")
    if isinstance(value, (int, float)) and not 0 < value < 1:
        raise ValueError(f"a test fraction must lie between 0 and 1 (exclusive), got {value!r}")
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
