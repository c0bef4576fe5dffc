"""Replay of pretraining frames during autotuning (as MACE's multi-head replay fine-tuning).

Every fine-tuning batch of DFT frames gets `autotune.replay.per_batch` classical frames added, drawn from a
fixed, seeded pool of `n_frames` frames of the replay source, their loss terms weighted by `weight` and their
force term also by `forces_weight` (the classical forces disagree with DFT inside the molecule, but on water
they also carry the density: examples/water/README.md). The network is shared, so where the DFT frames say
nothing (other densities, compressed or stretched contacts, the stress) it keeps answering as the pretrained
model did.

Each classical frame is scored against its own energy zero: the classical and DFT zeros differ by
hundreds of eV per atom, so the replayed frame's predicted energy is the model's energy with the DFT
reference energies exchanged for the pretrained (classical) ones, E + C (e_classical − e_DFT), through the
graph key `energy_offset`. The energy scale is the same for both (autotune forbids its refit with replay).

A model with D3 (`model.dispersion`) learns DFT minus D3 and gets D3 added back at run time, so the replayed
frames lose D3 too: network plus D3 then keeps the classical equation of state, rather than D3 pulling on top
of it. The per-composition mean of their D3 energies stays in the energy offset, where the pretrained
references had absorbed it, so the network is asked only for how D3 varies between frames.

With `head: separate` the replayed frames are scored by a readout of their own (PaiNN.heads[0], a copy of the
pretrained readout, trained along) on the shared features: the classical and DFT labels then need not agree
on one readout, only on the representation (MACE's multi-head fine-tuning). Model files keep the DFT readout.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch

from tpainn.data import DATASETS, load_frames
from tpainn.data.graph import Graph, atoms_to_graph, collate
from tpainn.data.labels import labels_of
from tpainn.dispersion import without_dispersion
from tpainn.model import PaiNN
from tpainn.train.checkpoint import load_trained
from tpainn.train.reference_energies import composition_matrix


def replay_source(config: Dict[str, Any]) -> Optional[str]:
    """The frame source replayed during autotuning, or None."""
    source = config["autotune"]["replay"]["data"]
    if not source or not config["autotune"]["from"]:
        return None
    if source != "pretraining":
        return str(source)
    datasets = load_trained(config["autotune"]["from"]).provenance.get("datasets") or []
    if not datasets or not (Path(datasets[0]).exists() or datasets[0] in DATASETS):
        where = f"its frames {datasets[0]} are not here" if datasets else "its provenance names no data"
        raise ValueError(
            f"autotune.replay.data=pretraining: the pretrained model {config['autotune']['from']} was trained on "
            f"frames that cannot be replayed ({where}); give a frame source, or autotune.replay.data=null"
        )
    return datasets[0]


class Replay:
    """A seeded pool of classical graphs, each carrying its loss weight and energy offset (eV)."""

    def __init__(self, config: Dict[str, Any], model: PaiNN, source: str):
        settings = config["autotune"]["replay"]
        frames = load_frames(source)
        n_pool = min(int(settings["n_frames"]), len(frames))
        pool = np.random.default_rng(config["seed"]).choice(len(frames), size=n_pool, replace=False)
        pool_frames = [frames[int(i)] for i in np.sort(pool)]
        pretrained = load_trained(config["autotune"]["from"])
        if pretrained.species != model.species:
            raise ValueError(f"replay: pretrained species {pretrained.species} differ from the model's {model.species}")
        shift = pretrained.reference_energies.numpy() - model.reference_energies.numpy()
        composition = composition_matrix(pool_frames, model.species)
        # The frames' D3 energies (zero without model.dispersion); their per-composition mean stays in the offset.
        labelled = without_dispersion(pool_frames, config["model"]["dispersion"], source)
        d3 = np.array([labels_of(a, source)[0] - labels_of(b, source)[0] for a, b in zip(pool_frames, labelled)])
        offsets = composition @ (shift - np.linalg.lstsq(composition, d3, rcond=None)[0])
        pool_frames = labelled
        weight = torch.tensor([float(settings["weight"])], dtype=torch.float64)
        forces_weight = torch.tensor([float(settings["forces_weight"])], dtype=torch.float64)
        separate = settings["head"] == "separate"
        if separate and len(model.heads) != 1:
            raise ValueError(f"replay: autotune.replay.head=separate needs one extra model head, the model has {len(model.heads)}")
        head = torch.tensor([1 if separate else 0])
        self.per_batch = int(settings["per_batch"])
        self.source = source
        self.graphs: List[Graph] = [
            {**atoms_to_graph(atoms, model.cutoff), "weight": weight, "forces_weight": forces_weight,
             "energy_offset": torch.tensor([offset]), "head": head}
            for atoms, offset in zip(pool_frames, offsets)
        ]

    def batches(self, loader, generator: torch.Generator, share: Callable[[List[int]], List[int]] = list) -> Iterator[Graph]:
        """The loader's lists of DFT graphs, each collated with the next `per_batch` replayed graphs of a
        permutation of the pool drawn from `generator` (so a resumed epoch replays the same frames); of these,
        `share` picks this process's part (distributed training: train/distributed.py)."""
        order = torch.randperm(len(self.graphs), generator=generator).tolist()
        position = 0
        for graphs in loader:
            chosen = [order[(position + k) % len(order)] for k in range(self.per_batch)]
            position += self.per_batch
            yield collate([*graphs, *(self.graphs[i] for i in share(chosen))])
