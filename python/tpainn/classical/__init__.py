"""Classical force-field data for pretraining: flexible water in LAMMPS, MMFF94 (RDKit) for QM9 molecules."""

from collections.abc import Sequence

from tpainn.data.hdf5 import H5Frames


def verify_frames(path, indices: Sequence[int]) -> dict:
    """Recompute stored frames of a classical data file with its own generator's check (water or QM9).

    Negative indices count from the end. The report's `passed` says whether every deviation is
    within the generator's tolerances.
    """
    frames = H5Frames(path)
    generator, n_frames = frames.metadata.get("generator", ""), len(frames)
    bad = [i for i in indices if not -n_frames <= i < n_frames]
    if bad:
        raise ValueError(f"{path}: frame index {bad[0]} out of range ({n_frames} frames)")
    indices = [i % n_frames for i in indices]
    if generator.startswith("tpainn.classical.water"):
        from tpainn.classical import water

        return water.verify_frames(path, indices)
    if generator.startswith("tpainn.classical.mmff"):
        from tpainn.classical import mmff

        return mmff.verify_frames(path, indices)
    raise ValueError(f"{path}: not written by `tpainn classical water` or `qm9` (generator {generator!r})")
