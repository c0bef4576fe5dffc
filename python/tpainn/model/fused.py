"""The PaiNN representation with each message block as one fused operator, for exported models (inference).

`torch.ops.tpainn.painn_message` (csrc/ops/) computes each edge's filter on the fly from K + 1 radial
features and never stores the per-edge [E, 3F] tensors the eager block (representation.py) materialises and
reads back, which is where the eager model spends its time. The operator has first derivatives only (forces,
virial): training keeps the eager modules. It has CPU kernels only; on other devices (GPU) the fused layers
run the eager message block. A fused representation shares the eager one's parameters under the same
state_dict keys, so it computes the same function.
"""

import copy
from typing import Tuple

import torch
from torch import nn

from tpainn._extension import load_extension
from tpainn.model.potential import PaiNN
from tpainn.model.representation import PaiNNLayer, PaiNNRepresentation

OPERATORS = ["tpainn::painn_message"]


class FusedPaiNNLayer(nn.Module):
    """PaiNNLayer whose message block runs the fused operator: φ(s) per atom here, filters and messages in C++."""

    def __init__(self, layer: PaiNNLayer):
        super().__init__()
        self.message = layer.message
        self.update = layer.update

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor,
        radial: torch.Tensor,
        filter_weight: torch.Tensor,
        unit_vectors: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if s.device.type == "cpu":
            x = self.message.phi(s)
            s, v = torch.ops.tpainn.painn_message(s, v, x, radial, filter_weight, unit_vectors, centres, neighbours)
        else:  # the operator has CPU kernels only: the eager block, same function, elsewhere (GPU)
            s, v = self.message(s, v, radial @ filter_weight, unit_vectors, centres, neighbours)
        return self.update(s, v)


class FusedPaiNNRepresentation(nn.Module):
    """PaiNNRepresentation (same inputs, output and parameters) with fused message blocks."""

    def __init__(self, eager: PaiNNRepresentation):
        super().__init__()
        load_extension()  # registers torch.ops.tpainn.*, which scripting resolves
        self.n_features = eager.n_features
        self.n_interactions = eager.n_interactions
        self.shared_filters = eager.shared_filters
        self.embedding = eager.embedding
        self.radial_basis = eager.radial_basis
        self.cutoff_fn = eager.cutoff_fn
        self.filter_nets = eager.filter_nets
        self.layers = nn.ModuleList([FusedPaiNNLayer(layer) for layer in eager.layers])

    def forward(
        self, species: torch.Tensor, vectors: torch.Tensor, centres: torch.Tensor, neighbours: torch.Tensor
    ) -> torch.Tensor:
        distances = torch.linalg.vector_norm(vectors, dim=-1)
        unit_vectors = vectors / distances.unsqueeze(-1)
        cutoff = self.cutoff_fn(distances).unsqueeze(-1)
        # The eager filter (W rbf + b) * cutoff is [rbf * cutoff, cutoff] @ [W^T; b]: one linear map of K + 1
        # radial features, which the operator applies per edge.
        radial = torch.cat([self.radial_basis(distances) * cutoff, cutoff], dim=-1)
        filter_weights = [torch.cat([net.weight.t(), net.bias.unsqueeze(0)]) for net in self.filter_nets]

        s = self.embedding(species)
        v = torch.zeros((s.shape[0], 3, self.n_features), dtype=s.dtype, device=s.device)
        for i, layer in enumerate(self.layers):
            weight = filter_weights[0 if self.shared_filters else i]
            s, v = layer(s, v, radial, weight, unit_vectors, centres, neighbours)
        return s


def fuse(model: PaiNN) -> PaiNN:
    """A copy of `model` whose message blocks run the fused operator (first derivatives only: for inference)."""
    fused = copy.deepcopy(model)
    fused.representation = FusedPaiNNRepresentation(fused.representation)
    return fused
