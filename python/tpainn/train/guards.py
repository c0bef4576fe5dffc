"""Stops for training that can only produce garbage: a non-finite loss ends the run at once with an error
naming the optimizer step, the epoch and the frames of the batch (and which of them holds non-finite input),
instead of training on NaN and reporting NaN metrics."""

import math
from typing import Any, Dict, List

import torch

from tpainn.data.graph import Graph


class NonFiniteLossError(ValueError):
    """The training loss is NaN or infinite; the message says where and, if it can, why."""


def _steps_taken(optimizer: torch.optim.Optimizer) -> int:
    """Optimizer steps taken so far in this run (resumed runs included): Adam's per-parameter step count."""
    steps = [int(state["step"]) for state in optimizer.state.values() if "step" in state]
    return max(steps, default=0)


def _bad_frames(batch: Graph) -> List[str]:
    """'frame F (key)' for each frame of the batch whose positions or labels are not finite."""
    n_atoms = batch["n_atoms"].tolist()
    frame_ids = batch["frame"].tolist() if "frame" in batch else [-1] * len(n_atoms)
    per_atom = {key: batch[key] for key in ("positions", "forces") if key in batch}
    per_frame = {key: batch[key] for key in ("energy", "stress", "cell") if key in batch}
    bad, first = [], 0
    for k, (count, frame) in enumerate(zip(n_atoms, frame_ids)):
        keys = [key for key, values in per_atom.items() if not torch.isfinite(values[first : first + count]).all()]
        keys += [key for key, values in per_frame.items() if not torch.isfinite(values[k]).all()]
        if keys:
            name = f"frame {int(frame)}" if frame >= 0 else f"batch entry {k}"
            bad.append(f"{name} ({', '.join(keys)} not finite)")
        first += count
    return bad


def check_loss(loss: torch.Tensor, batch: Graph, optimizer: torch.optim.Optimizer, config: Dict[str, Any]) -> None:
    """NonFiniteLossError if `loss` is NaN or infinite, naming the step, the epoch and the batch's frames."""
    if bool(torch.isfinite(loss.detach()).all()):
        return
    step = _steps_taken(optimizer)  # this batch's step is step + 1
    steps_per_epoch = max(1, math.ceil(config["split"]["n_train"] / config["optimizer"]["batch_size"]))
    epoch, within = step // steps_per_epoch + 1, step % steps_per_epoch + 1
    dataset = config["data"]["dataset"]
    frame_ids = [int(f) for f in batch["frame"].tolist()] if "frame" in batch else []
    listed = [str(f) for f in frame_ids if f >= 0]
    others = sum(1 for f in frame_ids if f < 0)
    frames = f"frames {', '.join(listed)} of {dataset}" if listed else f"{len(batch['n_atoms'])} frames"
    if others and listed:
        frames += f" and {others} replayed frame(s)"
    bad = _bad_frames(batch)
    why = (
        f"non-finite input: {'; '.join(bad)}"
        if bad
        else f"the inputs are finite, so the model diverged: lower optimizer.lr (now {config['optimizer']['lr']:g}) "
        "or optimizer.grad_clip, or check the data for overlapping atoms"
    )
    raise NonFiniteLossError(
        f"training stopped: the loss is {float(loss.detach()):g} at optimizer step {step + 1} (epoch {epoch}, batch "
        f"{within} of {steps_per_epoch}); the batch holds {frames}; {why}"
    )
