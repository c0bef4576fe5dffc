"""Message blocks as one fused operator each (exports, and training when switched on), and the exchange step of
exports.

`torch.ops.tpainn.painn_message` (csrc/ops/) computes each edge's filter on the fly from K + 1 radial
features and never stores the per-edge [E, 3F] tensors the eager block (representation.py) materialises and
reads back, which is where the eager model spends its time. The operator is differentiable to any order (its
backward's backward is made of the same two operators: csrc/ops/painn_message_autograd.cpp), so a model with
fused blocks also trains with forces in its loss. It has CPU kernels; on other devices (GPU) it runs as ATen
operations a chunk of edges at a time (csrc/ops/painn_message_aten.cpp), so the per-edge tensors never exist
for the whole graph there either. A fused model is the eager one with these blocks in its layers: it shares the
eager parameters under the same state_dict keys, so it computes the same function; the eager blocks stay the
reference.

`torch.ops.tpainn.ghost_exchange` (csrc/ops/ghost_exchange_op.h) is the step between layers that gives the
copies of atoms owned elsewhere (a LAMMPS rank's ghosts) their owners' features, when the C++ engine's
domain-decomposed path has installed an exchange; otherwise it returns its inputs.
"""

import copy
from typing import Tuple

import torch
from torch import nn

from tpainn._extension import load_extension
from tpainn.model.potential import PaiNN
from tpainn.model.representation import EdgeFeatures, PaiNNMessage

OPERATORS = ["tpainn::painn_message", "tpainn::ghost_exchange"]


class FusedPaiNNMessage(nn.Module):
    """PaiNNMessage (same inputs, outputs and φ) computing filters and messages in one C++ operator."""

    def __init__(self, eager: PaiNNMessage):
        super().__init__()
        load_extension()  # registers torch.ops.tpainn.*, which scripting resolves
        self.n_features = eager.n_features
        self.phi = eager.phi

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
        # The eager filter (W rbf + b) · cutoff is the product of the K + 1 radial features [rbf · cutoff, cutoff]
        # with [Wᵀ; b], which the operator forms per edge.
        radial = torch.cat([rbf * cutoff, cutoff], dim=-1)
        # The operator updates every row of v and x: s gets zero rows for the atoms that only send.
        n = s.shape[0]
        padded = torch.cat([s, s.new_zeros((v.shape[0] - n, s.shape[1]))]) if n < v.shape[0] else s
        filter_weight = torch.cat([weight.t(), bias.unsqueeze(0)])
        s, v = torch.ops.tpainn.painn_message(padded, v, x, radial, filter_weight, unit_vectors, centres, neighbours)
        return s[:n], v[:n]


class GhostExchange(nn.Module):
    """The exchange step of exported models: tpainn::ghost_exchange, which the C++ engine's decomposed path fills."""

    def __init__(self):
        super().__init__()
        load_extension()
        self.fills_ghosts = True  # read by the C++ engine (csrc/engine.cpp)

    def forward(
        self, x: torch.Tensor, v: torch.Tensor, anchor: torch.Tensor, n_atoms: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return torch.ops.tpainn.ghost_exchange(x, v, anchor, n_atoms)


def fuse_messages(model: PaiNN) -> PaiNN:
    """`model` itself, its message blocks switched to the fused operator (for training: same parameters)."""
    for layer in model.representation.layers:
        if isinstance(layer.message, PaiNNMessage):
            layer.message = FusedPaiNNMessage(layer.message)
    return model


def fuse(model: PaiNN) -> PaiNN:
    """A copy of `model` whose message blocks run the fused operator and whose exchange step can fill in ghosts
    (exports)."""
    fused = fuse_messages(copy.deepcopy(model))
    fused.representation.ghost_exchange = GhostExchange()
    return fused
