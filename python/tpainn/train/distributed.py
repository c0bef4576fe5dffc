"""Data-parallel training over the processes that `torchrun` starts (DistributedDataParallel).

`torchrun --nproc_per_node K -m tpainn train CONFIG` sets WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT; the
trainer then runs as K processes that together take the optimizer steps of a one-process run:
- `optimizer.batch_size` stays the global batch. Every process draws the same seeded permutation and the same
  batches as one process would, and takes every K-th frame of each (replayed frames likewise), so K processes
  follow the one-process run to round-off, whatever K is.
- Each process's loss is its share of the batch's loss: sums over its frames and atoms divided by the counts of
  the whole batch, which the processes add up (one all-reduce of three numbers per step). DDP averages the
  gradients, so each process back-propagates K × its share.
- Validation and test frames are split the same way and the predictions gathered, so every process computes the
  same metrics and takes the same early-stopping and schedule decisions.
- Process 0 alone writes files (checkpoints, model, metrics, plots); every process reads the same checkpoint
  on `--resume`.
Without WORLD_SIZE (or with WORLD_SIZE=1) nothing of this runs: `SINGLE_PROCESS` is the identity.
"""

import atexit
import os
from typing import Dict, List, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, RandomSampler, Subset

T = TypeVar("T")


class ShardedBatchSampler(BatchSampler):
    """The batches of a one-process run (same sampler, same batch size), of each of which this process takes
    every `world_size`-th index from its `rank` on."""

    def __init__(self, sampler, batch_size: int, rank: int, world_size: int):
        super().__init__(sampler, batch_size, drop_last=False)
        self.rank, self.world_size = rank, world_size

    def __iter__(self):
        for batch in super().__iter__():
            yield batch[self.rank :: self.world_size]


class Distributed:
    """This process's place among the training processes (rank of world_size) and the collectives it takes part in."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size

    @classmethod
    def from_env(cls) -> "Distributed":
        """The process group torchrun describes in the environment (joined once per process), or one process."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return SINGLE_PROCESS
        if not dist.is_initialized():
            # The trainer runs on the CPU, so the backend is gloo (NCCL needs CUDA tensors).
            dist.init_process_group(backend="gloo")
            atexit.register(dist.destroy_process_group)
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files."""
        return self.rank == 0

    def check_batches(self, n_train: int, batch_size: int) -> None:
        """ValueError unless every batch of an epoch (the last one too) gives each process at least one frame."""
        last = n_train % batch_size or batch_size
        if self.world_size > 1 and min(batch_size, last) < self.world_size:
            raise ValueError(
                f"optimizer.batch_size={batch_size} is the global batch, shared by {self.world_size} processes: each batch "
                f"needs at least {self.world_size} frames, and split.n_train={n_train} leaves {last} in the last one"
            )

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module that computes the training forward pass: the model itself, or DDP around it."""
        if self.world_size == 1:
            return model
        # Buffers (species tables, reference energies) are never changed by a step, so they need no broadcast.
        # Extra readout heads see only the replayed frames, which a process may not have in a batch.
        return DistributedDataParallel(model, broadcast_buffers=False, find_unused_parameters=len(getattr(model, "heads", ())) > 0)

    def batch_sampler(self, dataset: Sequence, batch_size: int, generator: torch.Generator) -> BatchSampler:
        """This process's part of the shuffled batches a one-process DataLoader(shuffle=True) would draw."""
        sampler = RandomSampler(dataset, generator=generator)
        if self.world_size == 1:
            return BatchSampler(sampler, batch_size, drop_last=False)
        return ShardedBatchSampler(sampler, batch_size, self.rank, self.world_size)

    def share(self, items: List[T]) -> List[T]:
        """This process's part of a list that every process holds whole."""
        return items[self.rank :: self.world_size]

    def shard(self, frames: Sequence) -> Sequence:
        """This process's part of the frames to evaluate (see `gathered`)."""
        return frames if self.world_size == 1 else Subset(frames, range(self.rank, len(frames), self.world_size))

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over the processes (float64, on every process)."""
        values = values.to(torch.float64)
        if self.world_size > 1:
            dist.all_reduce(values)
        return values

    def gathered(self, prediction: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """The predictions of every process's shard, concatenated in rank order (on every process)."""
        if self.world_size == 1:
            return prediction
        parts: List[Dict[str, np.ndarray]] = [{} for _ in range(self.world_size)]
        dist.all_gather_object(parts, prediction)
        keys = [key for part in parts for key in part]
        return {key: np.concatenate([part[key] for part in parts if key in part]) for key in dict.fromkeys(keys)}


SINGLE_PROCESS = Distributed(0, 1)
