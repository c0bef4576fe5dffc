"""From ase.Atoms to the graph tensors the model takes, and batching of graphs.

A graph is a dict of float64/int64 tensors: positions [N,3] Å, numbers [N], cell [1,3,3] Å,
edge_index [2,E], cell_shifts [E,3] (integer image multiples), and, when the frame is labelled,
energy [1] eV, forces [N,3] eV/Å and stress [1,3,3] eV/Å³ (ASE sign). Per-frame training keys (`weight`,
`energy_offset` in eV, `head`, see train/replay.py) may be added to a graph; collate fills them in for graphs without.
"""

from typing import Dict, List, Sequence, Tuple

import torch
from ase import Atoms
from ase.data import chemical_symbols

from tpainn.data.labels import stress_of
from tpainn.neighbors import neighbor_list

Graph = Dict[str, torch.Tensor]


def atoms_to_graph(atoms: Atoms, cutoff: float) -> Graph:
    positions = torch.as_tensor(atoms.positions, dtype=torch.float64)
    cell = torch.as_tensor(atoms.cell.array, dtype=torch.float64)
    edge_index, cell_shifts, _ = neighbor_list(positions, cell, atoms.pbc, cutoff)
    graph = {
        "positions": positions,
        "numbers": torch.as_tensor(atoms.numbers, dtype=torch.long),
        "cell": cell.unsqueeze(0),
        "edge_index": edge_index,
        "cell_shifts": cell_shifts,
    }
    results = atoms.calc.results if atoms.calc is not None else {}
    if "energy" in results:
        graph["energy"] = torch.tensor([results["energy"]], dtype=torch.float64)
    if "forces" in results:
        graph["forces"] = torch.as_tensor(results["forces"], dtype=torch.float64)
    stress = stress_of(atoms, "frame")
    if stress is not None:
        graph["stress"] = torch.as_tensor(stress, dtype=torch.float64).unsqueeze(0)
    return graph


# Per-frame keys that not every graph of a batch needs to have, with the value of a graph that has none.
_PER_FRAME_DEFAULTS = {
    "weight": torch.tensor([1.0], dtype=torch.float64),
    "forces_weight": torch.tensor([1.0], dtype=torch.float64),  # a factor on the force term (replay)
    "energy_offset": torch.tensor([0.0], dtype=torch.float64),
    "head": torch.tensor([0], dtype=torch.long),  # the model's readout (PaiNN.heads)
}


def collate(graphs: Sequence[Graph]) -> Graph:
    """Concatenate graphs into one disconnected graph; `batch` maps atoms to their graph."""
    n_atoms = torch.tensor([len(g["numbers"]) for g in graphs])
    first_atom = torch.cumsum(n_atoms, 0) - n_atoms
    batch: Graph = {
        "batch": torch.repeat_interleave(torch.arange(len(graphs)), n_atoms),
        "n_atoms": n_atoms,
        "edge_index": torch.cat([g["edge_index"] + offset for g, offset in zip(graphs, first_atom.tolist())], dim=1),
    }
    for key in ("positions", "numbers", "cell", "cell_shifts", "energy", "forces"):
        if all(key in g for g in graphs):
            batch[key] = torch.cat([g[key] for g in graphs])
    if any("stress" in g for g in graphs):
        # Frames without stress get zeros and a False mask: they add nothing to a stress loss or metric.
        batch["stress"] = torch.cat([g.get("stress", torch.zeros(1, 3, 3, dtype=torch.float64)) for g in graphs])
        batch["stress_mask"] = torch.tensor([("stress" in g) for g in graphs])
    for key, default in _PER_FRAME_DEFAULTS.items():
        if any(key in g for g in graphs):
            batch[key] = torch.cat([g.get(key, default) for g in graphs])
    if any("frame" in g for g in graphs):  # data-set frame numbers (GraphDataset); -1 for other graphs
        batch["frame"] = torch.cat([g.get("frame", torch.tensor([-1])) for g in graphs])
    return batch


def model_inputs(batch: Graph) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The positional arguments of PaiNN.forward for a collated batch."""
    return (
        batch["positions"],
        batch["numbers"],
        batch["cell"],
        batch["edge_index"],
        batch["cell_shifts"],
        batch["batch"],
        len(batch["n_atoms"]),
    )


class GraphDataset(torch.utils.data.Dataset):
    """Frames (a list, or a lazily read H5Frames) as graphs; in-memory frames keep their graphs cached."""

    def __init__(self, frames: Sequence[Atoms], cutoff: float, cache: bool = True):
        self.frames = frames
        self.cutoff = cutoff
        self.cache: Dict[int, Graph] = {} if cache else None

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Graph:
        if self.cache is None:
            return self._graph(index)
        if index not in self.cache:
            self.cache[index] = self._graph(index)
        return self.cache[index]

    def _graph(self, index: int) -> Graph:
        graph = atoms_to_graph(self.frames[index], self.cutoff)
        # The frame's number in the underlying data set (through Subsets), so that an error can name a batch's frames.
        graph["frame"] = torch.tensor([source_index(self.frames, index)])
        return graph


def source_index(frames: Sequence[Atoms], index: int) -> int:
    """The number of frames[index] in the data set under any torch Subsets."""
    while isinstance(frames, torch.utils.data.Subset):
        frames, index = frames.dataset, frames.indices[index]
    return int(index)


def elements_in(frames: Sequence[Atoms]) -> List[str]:
    """Element symbols present in the frames, ordered by atomic number."""
    numbers = sorted({int(z) for atoms in frames for z in atoms.numbers})
    return [chemical_symbols[z] for z in numbers]
