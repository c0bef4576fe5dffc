"""The PaiNN representation: equivariant message passing (Schütt, Unke, Gastegger, ICML 2021).

Scalar features s_i ∈ R^F and vector features v_i ∈ R^{3×F} (stored as [N, 3, F]) are refined by
alternating message (Eqs. 7-8) and update (Eqs. 9-11) blocks, each added residually.
"""

from typing import List, Tuple

import torch
from torch import nn


class PaiNNMessage(nn.Module):
    """Message block: Δs_i = Σ_j φ_s(s_j) ∘ W_s(r_ij);  Δv_i = Σ_j v_j ∘ φ_vv(s_j) ∘ W_vv + φ_vs(s_j) ∘ W_vs r̂_ij.

    φ(s_j) is what atom j sends, computed once per atom (F×3F work per atom instead of per edge) by the
    caller: a domain-decomposed run (the LAMMPS pair style) computes it for its own atoms and receives it
    for the others. The first len(s) atoms receive messages; v and x hold every atom that sends.
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
        filters: torch.Tensor,
        unit_vectors: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        ds, dvv, dvs = torch.split(x[neighbours] * filters, self.n_features, dim=-1)
        dv = v[neighbours] * dvv.unsqueeze(1) + dvs.unsqueeze(1) * unit_vectors.unsqueeze(-1)
        s = s.index_add(0, centres, ds)
        v = v[: s.shape[0]].index_add(0, centres, dv)
        return s, v


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
    """One interaction: a message block followed by an update block."""

    def __init__(self, n_features: int):
        super().__init__()
        self.message = PaiNNMessage(n_features)
        self.update = PaiNNUpdate(n_features)

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor,
        x: torch.Tensor,
        filters: torch.Tensor,
        unit_vectors: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        s, v = self.message(s, v, x, filters, unit_vectors, centres, neighbours)
        return self.update(s, v)


class PaiNNRepresentation(nn.Module):
    """Embedding by element, radial filters, and n_interactions message + update blocks.

    forward() runs the steps below in sequence. They are methods of their own (kept in exported models) so
    that a domain-decomposed caller (csrc/engine.cpp, for the LAMMPS pair style on several MPI ranks) can run
    them one layer at a time and exchange φ(s) and v of its boundary atoms between layers.
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

    def forward(
        self, species: torch.Tensor, vectors: torch.Tensor, centres: torch.Tensor, neighbours: torch.Tensor
    ) -> torch.Tensor:
        """species [N] (index into the model's species), vectors r_ij [E, 3] → scalar features [N, F]."""
        edges = self.edge_features(vectors)
        s, v = self.embed(species)
        for index in range(self.n_interactions):
            x = self.first_messages(species) if index == 0 else self.node_messages(index, s)
            s, v = self.interact(index, s, v, x, edges, centres, neighbours)
        return s

    @torch.jit.export
    def edge_features(self, vectors: torch.Tensor) -> List[torch.Tensor]:
        """What the layers need of the edges r_ij [E, 3]: unit vectors, then each filter set W(r_ij) [E, 3F]."""
        distances = torch.linalg.vector_norm(vectors, dim=-1)
        rbf = self.radial_basis(distances)
        cutoff = self.cutoff_fn(distances).unsqueeze(-1)
        return [vectors / distances.unsqueeze(-1)] + [filter_net(rbf) * cutoff for filter_net in self.filter_nets]

    @torch.jit.export
    def embed(self, species: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Initial features: s from the element, v = 0."""
        s = self.embedding(species)
        return s, torch.zeros((s.shape[0], 3, self.n_features), dtype=s.dtype, device=s.device)

    @torch.jit.export
    def node_messages(self, index: int, s: torch.Tensor) -> torch.Tensor:
        """φ(s) [N, 3F] of layer `index`: what each atom sends to its neighbours."""
        for i, layer in enumerate(self.layers):
            if i == index:
                return layer.message.phi(s)
        raise IndexError("no interaction layer " + str(index))

    @torch.jit.export
    def first_messages(self, species: torch.Tensor) -> torch.Tensor:
        """φ(s) of the first layer, where s is still the element's embedding: computed once per element."""
        return self.node_messages(0, self.embedding.weight)[species]

    @torch.jit.export
    def interact(
        self,
        index: int,
        s: torch.Tensor,
        v: torch.Tensor,
        x: torch.Tensor,
        edges: List[torch.Tensor],
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Layer `index` for the first len(s) atoms; v and x = φ(s) hold every atom they read (edge_features)."""
        filters = edges[1 if self.shared_filters else 1 + index]
        for i, layer in enumerate(self.layers):
            if i == index:
                return layer(s, v, x, filters, edges[0], centres, neighbours)
        raise IndexError("no interaction layer " + str(index))
