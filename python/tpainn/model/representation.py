"""The PaiNN representation: equivariant message passing (Schütt, Unke, Gastegger, ICML 2021).

Scalar features s_i ∈ R^F and vector features v_i ∈ R^{3×F} (stored as [N, 3, F]) are refined by
alternating message (Eqs. 7-8) and update (Eqs. 9-11) blocks, each added residually.
"""

from typing import List, Tuple

import torch
from torch import nn
from torch.nn import functional

# What the message blocks read of the edges r_ij: unit vectors [E, 3], radial basis [E, K], cutoff function [E, 1].
EdgeFeatures = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def messages(
    s: torch.Tensor,
    v: torch.Tensor,
    x: torch.Tensor,
    filters: torch.Tensor,
    unit_vectors: torch.Tensor,
    centres: torch.Tensor,
    neighbours: torch.Tensor,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """s and v plus the messages of the edges with filters W(r_ij) [E, 3F]: the first len(s) atoms receive; v and
    x = φ(s) hold every atom that sends."""
    ds, dvv, dvs = torch.split(x[neighbours] * filters, s.shape[1], dim=-1)
    dv = v[neighbours] * dvv.unsqueeze(1) + dvs.unsqueeze(1) * unit_vectors.unsqueeze(-1)
    s = s.index_add(0, centres, ds)
    v = v[: s.shape[0]].index_add(0, centres, dv)
    return s, v


class PaiNNMessage(nn.Module):
    """Message block: Δs_i = Σ_j φ_s(s_j) ∘ W_s(r_ij);  Δv_i = Σ_j v_j ∘ φ_vv(s_j) ∘ W_vv + φ_vs(s_j) ∘ W_vs r̂_ij.

    φ(s_j) is what atom j sends, computed once per atom (F×3F work per atom instead of per edge) by the
    representation, which exchanges it for the copies of atoms owned elsewhere. The filters W(r_ij) are
    (weight · rbf + bias) · cutoff, with the weight and bias of the layer's filter set.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features
        self.phi = nn.Sequential(nn.Linear(n_features, n_features), nn.SiLU(), nn.Linear(n_features, 3 * n_features))

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor,
        x: torch.Tensor,
        edges: EdgeFeatures,
        weight: torch.Tensor,
        bias: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        unit_vectors, rbf, cutoff = edges
        return messages(s, v, x, functional.linear(rbf, weight, bias) * cutoff, unit_vectors, centres, neighbours)


class PaiNNUpdate(nn.Module):
    """Update block: mixes channels within each atom. U and V act on vectors without bias (equivariance)."""

    def __init__(self, n_features: int, epsilon: float = 1e-8):
        super().__init__()
        self.n_features = n_features
        self.epsilon = epsilon
        self.uv = nn.Linear(n_features, 2 * n_features, bias=False)
        self.a = nn.Sequential(nn.Linear(2 * n_features, n_features), nn.SiLU(), nn.Linear(n_features, 3 * n_features))

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        u_v, v_v = torch.split(self.uv(v), self.n_features, dim=-1)
        # ε keeps the gradient of the norm finite where V v = 0.
        v_norm = torch.sqrt(torch.sum(v_v * v_v, dim=1) + self.epsilon)
        a_vv, a_sv, a_ss = torch.split(self.a(torch.cat([s, v_norm], dim=-1)), self.n_features, dim=-1)
        s = s + a_ss + a_sv * torch.sum(u_v * v_v, dim=1)
        v = v + a_vv.unsqueeze(1) * u_v
        return s, v


class PaiNNLayer(nn.Module):
    """One interaction: a message block (PaiNNMessage, or the fused one of exports and fused training:
    model/fused.py) followed by an update block."""

    def __init__(self, n_features: int):
        super().__init__()
        self.message = PaiNNMessage(n_features)
        self.update = PaiNNUpdate(n_features)

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor,
        x: torch.Tensor,
        edges: EdgeFeatures,
        weight: torch.Tensor,
        bias: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        s, v = self.message(s, v, x, edges, weight, bias, centres, neighbours)
        return self.update(s, v)


class NoGhostExchange(nn.Module):
    """The exchange step of a model whose every atom is its own (training, unfused exports): returns φ(s) and v.

    Fused exports exchange instead (tpainn.model.fused.GhostExchange): a domain-decomposed caller fills in the
    copies of atoms owned elsewhere there.
    """

    def __init__(self):
        super().__init__()
        self.fills_ghosts = False  # read by the C++ engine (csrc/engine.cpp)

    def forward(
        self, x: torch.Tensor, v: torch.Tensor, anchor: torch.Tensor, n_atoms: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] != n_atoms:
            raise ValueError("atoms owned elsewhere (n_owned < N) need the ghost exchange of a fused export")
        return x, v


class PaiNNRepresentation(nn.Module):
    """Embedding by element, radial filters, and n_interactions message + update blocks.

    The atoms [0, n_owned) of a call are its own, the others copies of atoms owned elsewhere (the ghosts of a
    domain-decomposed caller: csrc/engine.cpp, for the LAMMPS pair style on several MPI ranks), which only send
    messages. Before each layer after the first, the exchange step gives the copies their owners' φ(s) and v.
    """

    def __init__(
        self,
        n_species: int,
        n_features: int,
        n_interactions: int,
        radial_basis: nn.Module,
        n_rbf: int,
        cutoff_fn: nn.Module,
        shared_filters: bool,
    ):
        super().__init__()
        self.n_features = n_features
        self.n_interactions = n_interactions
        self.shared_filters = shared_filters
        self.embedding = nn.Embedding(n_species, n_features)
        self.radial_basis = radial_basis
        self.cutoff_fn = cutoff_fn
        # Each layer's 3F filters are a linear map of the radial basis (one map shared by all layers with
        # shared_filters). Separate maps per layer, rather than one stacked map, let autotuning freeze them.
        n_filter_sets = 1 if shared_filters else n_interactions
        self.filter_nets = nn.ModuleList([nn.Linear(n_rbf, 3 * n_features) for _ in range(n_filter_sets)])
        self.layers = nn.ModuleList([PaiNNLayer(n_features) for _ in range(n_interactions)])
        self.ghost_exchange = NoGhostExchange()

    def forward(
        self, species: torch.Tensor, vectors: torch.Tensor, centres: torch.Tensor, neighbours: torch.Tensor, n_owned: int
    ) -> torch.Tensor:
        """species [N] (index into the model's species), vectors r_ij [E, 3] of edges from the first n_owned
        atoms → their scalar features [n_owned, F]."""
        n_atoms = species.shape[0]
        distances = torch.linalg.vector_norm(vectors, dim=-1)
        edges = (vectors / distances.unsqueeze(-1), self.radial_basis(distances), self.cutoff_fn(distances).unsqueeze(-1))
        filter_sets: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for filter_net in self.filter_nets:
            filter_sets.append((filter_net.weight, filter_net.bias))
        s = self.embedding(species[:n_owned])
        v = torch.zeros((n_atoms, 3, self.n_features), dtype=s.dtype, device=s.device)
        # φ(s) of the first layer, where s is still the element's embedding: once per element, known for copies too.
        x = self.layers[0].message.phi(self.embedding.weight)[species]
        for index, layer in enumerate(self.layers):
            if index > 0:
                # The edge vectors anchor the exchange in the graph that the forces differentiate.
                x, v = self.ghost_exchange(layer.message.phi(s), v, vectors, n_atoms)
            weight, bias = filter_sets[0 if self.shared_filters else index]
            s, v = layer(s, v, x, edges, weight, bias, centres, neighbours)
        return s
