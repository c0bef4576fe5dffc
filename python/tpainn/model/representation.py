"""The PaiNN representation: equivariant message passing (Schütt, Unke, Gastegger, ICML 2021).

Scalar features s_i ∈ R^F and vector features v_i ∈ R^{3×F} (stored as [N, 3, F]) are refined by
alternating message (Eqs. 7-8) and update (Eqs. 9-11) blocks, each added residually.
"""

from typing import Tuple

import torch
from torch import nn


class PaiNNMessage(nn.Module):
    """Message block: Δs_i = Σ_j φ_s(s_j) ∘ W_s(r_ij);  Δv_i = Σ_j v_j ∘ φ_vv(s_j) ∘ W_vv + φ_vs(s_j) ∘ W_vs r̂_ij."""

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features
        self.phi = nn.Sequential(nn.Linear(n_features, n_features), nn.SiLU(), nn.Linear(n_features, 3 * n_features))

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor,
        filters: torch.Tensor,
        unit_vectors: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        # φ on the nodes, then gather: F×3F work per atom instead of per edge.
        x = self.phi(s)[neighbours] * filters
        ds, dvv, dvs = torch.split(x, self.n_features, dim=-1)
        dv = v[neighbours] * dvv.unsqueeze(1) + dvs.unsqueeze(1) * unit_vectors.unsqueeze(-1)
        s = s.index_add(0, centres, ds)
        v = v.index_add(0, centres, dv)
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
        filters: torch.Tensor,
        unit_vectors: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        s, v = self.message(s, v, filters, unit_vectors, centres, neighbours)
        return self.update(s, v)


class PaiNNRepresentation(nn.Module):
    """Embedding by element, radial filters, and n_interactions message + update blocks."""

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
        distances = torch.linalg.vector_norm(vectors, dim=-1)
        unit_vectors = vectors / distances.unsqueeze(-1)
        rbf = self.radial_basis(distances)
        cutoff = self.cutoff_fn(distances).unsqueeze(-1)
        layer_filters = [filter_net(rbf) * cutoff for filter_net in self.filter_nets]

        s = self.embedding(species)
        v = torch.zeros((s.shape[0], 3, self.n_features), dtype=s.dtype, device=s.device)
        for i, layer in enumerate(self.layers):
            f = layer_filters[0 if self.shared_filters else i]
            s, v = layer(s, v, f, unit_vectors, centres, neighbours)
        return s
