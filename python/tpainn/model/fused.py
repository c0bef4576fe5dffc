"""The PaiNN representation with each message block as one fused operator, for exported models (inference).

`torch.ops.tpainn.painn_message` (csrc/ops/) computes each edge's filter on the fly from K + 1 radial
features and never stores the per-edge [E, 3F] tensors the eager block (representation.py) materialises and
reads back, which is where the eager model spends its time. The operator has first derivatives only (forces,
virial): training keeps the eager modules. It has CPU kernels only; on other devices (GPU) the fused layers
run the eager message block. A fused representation shares the eager one's parameters under the same
state_dict keys, so it computes the same function.
"""

import copy
from typing import List, Tuple

import torch
from torch import nn

from tpainn._extension import load_extension
from tpainn.model.potential import PaiNN
from tpainn.model.representation import PaiNNLayer, PaiNNRepresentation

OPERATORS = ["tpainn::painn_message"]


class FusedPaiNNLayer(nn.Module):
    """PaiNNLayer whose message block runs the fused operator: filters and messages in C++."""

    def __init__(self, layer: PaiNNLayer):
        super().__init__()
        self.message = layer.message
        self.update = layer.update

    def forward(
        self,
        s: torch.Tensor,
        v: torch.Tensor,
        x: torch.Tensor,
        radial: torch.Tensor,
        filter_weight: torch.Tensor,
        unit_vectors: torch.Tensor,
        centres: torch.Tensor,
        neighbours: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if s.device.type == "cpu":
            # The operator updates every row of v and x: s gets zero rows for the atoms that only send.
            n = s.shape[0]
            padded = torch.cat([s, s.new_zeros((v.shape[0] - n, s.shape[1]))]) if n < v.shape[0] else s
            s, v = torch.ops.tpainn.painn_message(padded, v, x, radial, filter_weight, unit_vectors, centres, neighbours)
            s, v = s[:n], v[:n]
        else:  # the operator has CPU kernels only: the eager block, same function, elsewhere (GPU)
            s, v = self.message(s, v, x, radial @ filter_weight, unit_vectors, centres, neighbours)
        return self.update(s, v)


class FusedPaiNNRepresentation(PaiNNRepresentation):
    """PaiNNRepresentation (same inputs, output, parameters and steps) with fused message blocks."""

    def __init__(self, eager: PaiNNRepresentation):
        nn.Module.__init__(self)  # not PaiNNRepresentation.__init__: the parameters are the eager model's
        load_extension()  # registers torch.ops.tpainn.*, which scripting resolves
        self.n_features = eager.n_features
        self.n_interactions = eager.n_interactions
        self.shared_filters = eager.shared_filters
        self.embedding = eager.embedding
        self.radial_basis = eager.radial_basis
        self.cutoff_fn = eager.cutoff_fn
        self.filter_nets = eager.filter_nets
        self.layers = nn.ModuleList([FusedPaiNNLayer(layer) for layer in eager.layers])

    @torch.jit.export
    def edge_features(self, vectors: torch.Tensor) -> List[torch.Tensor]:
        """Unit vectors and the K + 1 radial features [rbf · cutoff, cutoff]: the eager filter (W rbf + b) · cutoff
        is their product with [Wᵀ; b], which the operator forms per edge."""
        distances = torch.linalg.vector_norm(vectors, dim=-1)
        cutoff = self.cutoff_fn(distances).unsqueeze(-1)
        return [vectors / distances.unsqueeze(-1), torch.cat([self.radial_basis(distances) * cutoff, cutoff], dim=-1)]

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
        weight = torch.empty(0)
        for i, net in enumerate(self.filter_nets):
            if i == (0 if self.shared_filters else index):
                weight = torch.cat([net.weight.t(), net.bias.unsqueeze(0)])
        for i, layer in enumerate(self.layers):
            if i == index:
                return layer(s, v, x, edges[1], weight, edges[0], centres, neighbours)
        raise IndexError("no interaction layer " + str(index))


def fuse(model: PaiNN) -> PaiNN:
    """A copy of `model` whose message blocks run the fused operator (first derivatives only: for inference)."""
    fused = copy.deepcopy(model)
    fused.representation = FusedPaiNNRepresentation(fused.representation)
    return fused
