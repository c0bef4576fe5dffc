"""The PaiNN potential: representation → atomwise energies → total energy, forces and virial.

Units: positions, cell in Å; energies in eV; forces in eV/Å; virial in eV; stress in eV/Å³.
Inputs and outputs are float64 whatever the network's dtype: only edge vectors are cast to it,
so total energies keep float64 precision and reference energies (hundreds of eV per atom) are exact.
"""

from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from ase.data import atomic_numbers as ATOMIC_NUMBERS
from ase.data import chemical_symbols
from torch import nn

from tpainn.model.d3_spec import canonical as canonical_dispersion
from tpainn.model.radial import CosineCutoff, radial_basis
from tpainn.model.repulsion import ShortRangeRepulsion
from tpainn.model.representation import PaiNNRepresentation

# The `dtype` hyperparameter: the network's precision (inputs, outputs and energies stay float64).
NETWORK_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _symbols(species: Sequence[Union[str, int]]) -> List[str]:
    symbols = []
    for s in species:
        symbol = chemical_symbols[s] if isinstance(s, int) else str(s)
        if symbol not in ATOMIC_NUMBERS or symbol == "X":
            raise ValueError(f"unknown element {s!r} in model species")
        symbols.append(symbol)
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"model species {symbols} contain duplicates")
    return symbols


class PaiNN(nn.Module):
    """PaiNN interatomic potential (Schütt et al. 2021).

    E = Σ_i [ E_ref(Z_i) + scale · MLP(s_i) ] + E_rep where s_i are the PaiNN scalar features, E_ref the
    per-element reference energies (fitted by least squares), scale a global energy scale and E_rep the
    short-range repulsion below the training data's shortest distances (repulsion="zbl"; model/repulsion.py).
    """

    def __init__(
        self,
        species: Sequence[Union[str, int]],
        cutoff: float = 5.0,
        n_features: int = 128,
        n_interactions: int = 3,
        n_rbf: int = 20,
        rbf: str = "gaussian",
        shared_filters: bool = False,
        dtype: str = "float64",
        repulsion: str = "none",
        dispersion: str = "none",  # D3 outside the network (tpainn/dispersion.py): metadata only here
    ):
        super().__init__()
        self.species: List[str] = _symbols(species)
        self.cutoff = float(cutoff)
        self.n_interactions = int(n_interactions)
        self.hyperparameters = dict(
            species=self.species, cutoff=self.cutoff, n_features=n_features, n_interactions=n_interactions,
            n_rbf=n_rbf, rbf=rbf, shared_filters=shared_filters, dtype=dtype, repulsion=repulsion,
            dispersion=canonical_dispersion(dispersion),
        )  # fmt: skip
        numbers = [ATOMIC_NUMBERS[s] for s in self.species]
        self.register_buffer("atomic_numbers", torch.tensor(numbers, dtype=torch.long))
        species_index = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
        species_index[numbers] = torch.arange(len(numbers))
        self.register_buffer("species_index", species_index)

        self.representation = PaiNNRepresentation(
            n_species=len(numbers),
            n_features=n_features,
            n_interactions=n_interactions,
            radial_basis=radial_basis(rbf, n_rbf, cutoff),
            n_rbf=n_rbf,
            cutoff_fn=CosineCutoff(cutoff),
            shared_filters=shared_filters,
        )
        self.readout = nn.Sequential(nn.Linear(n_features, n_features // 2), nn.SiLU(), nn.Linear(n_features // 2, 1))
        # Readouts of other label sources on the shared features (multi-head replay while autotuning,
        # train/replay.py): frame heads k ≥ 1 use heads[k − 1]. Training only: model files hold `readout` alone.
        self.heads = nn.ModuleList()
        # An untrained model predicts exactly the reference energies instead of a random offset of
        # ~scale per atom, which a force-dominated loss would take many epochs to remove.
        nn.init.zeros_(self.readout[-1].weight)
        nn.init.zeros_(self.readout[-1].bias)
        network_dtype = NETWORK_DTYPES[dtype]
        self.representation.to(network_dtype)
        self.readout.to(network_dtype)
        self.register_buffer("reference_energies", torch.zeros(len(numbers), dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))
        self.repulsion = ShortRangeRepulsion(numbers, repulsion)

    def species_of(self, numbers: torch.Tensor) -> torch.Tensor:
        """Index into the model's species of each atomic number; an error names the unknown ones."""
        species = self.species_index[numbers]
        if bool((species < 0).any()):
            unknown: List[int] = torch.unique(numbers[species < 0]).tolist()
            raise ValueError("atomic numbers " + str(unknown) + " are not among this model's species " + str(self.species))
        return species

    def atom_energies(self, s: torch.Tensor, species: torch.Tensor, head: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Energies [N] (eV, float64) of atoms with scalar features s [N, F]: E_ref(Z) + scale · MLP(s), the
        MLP of each atom's `head` [N] (0: readout, k: heads[k − 1]) if given."""
        e = self.readout(s).squeeze(-1)
        if head is not None:
            for k, readout in enumerate(self.heads):
                e = torch.where(head == k + 1, readout(s).squeeze(-1), e)
        return e.to(torch.float64) * self.energy_scale + self.reference_energies[species]

    def set_repulsion(self, kind: str, frames: Sequence) -> None:
        """Use repulsion `kind` with onsets fitted to `frames` (kept below the present ones if the kind is unchanged)."""
        if kind != self.hyperparameters["repulsion"]:
            self.repulsion = ShortRangeRepulsion(self.atomic_numbers.tolist(), kind).to(self.atomic_numbers.device)
            self.hyperparameters["repulsion"] = kind
        self.repulsion.fit_onsets(frames, self.species)

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Dict[str, Any]) -> "PaiNN":
        return cls(**hyperparameters)

    def forward(
        self,
        positions: torch.Tensor,
        numbers: torch.Tensor,
        cell: torch.Tensor,
        edge_index: torch.Tensor,
        cell_shifts: torch.Tensor,
        batch: torch.Tensor,
        n_graphs: int,
        compute_forces: bool = True,
        compute_stress: bool = False,
        heads: Optional[torch.Tensor] = None,
        n_owned: Optional[int] = None,
    ) -> Dict[str, torch.Tensor]:
        """positions [N,3] Å, numbers [N] atomic numbers, cell [B,3,3] Å, edge_index [2,E] (centre, neighbour),
        cell_shifts [E,3] integer image multiples (r_ij = R_j − R_i + shift·cell), batch [N] graph of each atom.

        Returns energy [B] eV, energies [N] eV; forces [N,3] eV/Å; virial [B,3,3] eV (= −∂E/∂ε) and
        stress [B,3,3] eV/Å³ (= ∂E/∂ε / V, the ASE sign convention) when asked for. heads [B]: the readout of
        each graph (training with several label sources; default: `readout` for all).

        n_owned: atoms [0, n_owned) are the call's own and the others copies of atoms owned elsewhere, whose
        features the exchange step of a fused export fills in between layers (the C++ engine's domain-decomposed
        path: csrc/engine.cpp); edges start at owned atoms, energies are those of the owned atoms, forces those
        on all atoms. Default: all atoms.
        """
        species = self.species_of(numbers)
        positions = positions.to(torch.float64)
        cell = cell.to(torch.float64)
        inputs: List[torch.Tensor] = []
        if compute_forces:
            positions.requires_grad_(True)
            inputs.append(positions)
        if compute_stress:
            # Homogeneous strain ε applied to atoms and cell: the virial is −∂E/∂ε at ε = 0.
            strain = torch.zeros((n_graphs, 3, 3), dtype=torch.float64, device=positions.device).requires_grad_(True)
            inputs.append(strain)
            symmetric = 0.5 * (strain + strain.transpose(1, 2))
            positions = positions + torch.bmm(positions.unsqueeze(1), symmetric[batch]).squeeze(1)
            cell = cell + torch.bmm(cell, symmetric)

        centres, neighbours = edge_index[0], edge_index[1]
        shifts = torch.bmm(cell_shifts.to(torch.float64).unsqueeze(1), cell[batch[centres]]).squeeze(1)
        vectors = positions[neighbours] - positions[centres] + shifts

        owned = len(species) if n_owned is None else n_owned
        network_dtype = self.representation.embedding.weight.dtype
        s = self.representation(species, vectors.to(network_dtype), centres, neighbours, owned)
        graph_of_owned = batch[:owned]
        head = heads[graph_of_owned] if heads is not None else None
        energies = self.atom_energies(s, species[:owned], head) + self.repulsion(vectors, species, centres, neighbours, owned)
        energy = torch.zeros(n_graphs, dtype=torch.float64, device=energies.device).index_add(0, graph_of_owned, energies)
        result: Dict[str, torch.Tensor] = {"energy": energy, "energies": energies}
        return _with_derivatives(result, inputs, compute_forces, compute_stress, cell, self.training)


def _with_derivatives(result: Dict[str, torch.Tensor], inputs: List[torch.Tensor], compute_forces: bool,
                      compute_stress: bool, cell: torch.Tensor, create_graph: bool) -> Dict[str, torch.Tensor]:
    """`result` with the forces −∂E/∂r, virial −∂E/∂ε and stress ∂E/∂ε / V of the inputs asked for (positions,
    then strain); create_graph when training, so that a loss on them can be differentiated again."""
    if len(inputs) == 0:
        return result
    grads = torch.autograd.grad([result["energy"].sum()], inputs, create_graph=create_graph, allow_unused=True)
    if compute_forces:
        result["forces"] = -_zeros_if_none(grads[0], inputs[0])
    if compute_stress:
        dE_dstrain = _zeros_if_none(grads[-1], inputs[-1])
        volume = torch.abs(torch.linalg.det(cell.detach()))
        result["virial"] = -dE_dstrain
        result["stress"] = dE_dstrain / volume.view(-1, 1, 1)
    return result


def _zeros_if_none(grad: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    # Atoms with no neighbours (e.g. a single atom) do not enter the graph: their gradient is zero.
    if grad is None:
        return torch.zeros_like(like)
    return grad
