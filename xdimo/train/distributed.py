"""The ranks of a run: torchrun's environment read into Dist, the process groups set up and torn down, the votes
that keep every rank on one branch, and the tensors that FSDP2 shards across them (DTensor to full and back).

Separate from the loop because it is the part that fails in ways a single process never shows (a rank alone in a
collective, gloo threads at interpreter shutdown): the loop calls these at its edges and stays about the steps.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from xdimo.train.run_config import TrainConfig


@dataclass
class Dist:
    rank: int
    local_rank: int
    world: int
    local_world: int
    device: torch.device
    flag_group: Any = None  # a gloo group for the per-step "stop?" vote (CPU, no device sync)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.world // max(1, self.local_world))


def setup_distributed(cfg: TrainConfig) -> Dist:
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank, local_world = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    if cfg.parallel == "single" and world > 1:
        raise ValueError("--parallel single runs one process; launch it with --nproc_per_node=1")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    flag_group = None
    if world > 1:
        backend = "nccl" if cuda else "gloo"
        timeout = timedelta(seconds=cfg.nccl_timeout_s)
        dist.init_process_group(backend, timeout=timeout, device_id=device if cuda else None)
        # the votes (stop signal, a failed save) wait as long as any collective may: a new group's default is
        # 30 min whatever --nccl-timeout-s says, and a checkpoint save of a large model is waited out in one
        flag_group = dist.new_group(backend="gloo", timeout=timeout) if cuda else dist.group.WORLD
    return Dist(rank, local_rank, world, local_world, device, flag_group)


def largest_on_any_rank(d: Dist, flag: int) -> int:
    """The largest ``flag`` any rank holds, on every rank: a vote on the (CPU) flag group, so the ranks take one
    branch together (a rank alone on a branch that skips a collective holds the others in theirs)."""
    if d.world == 1:
        return flag
    vote = torch.tensor([flag], dtype=torch.int64)
    dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=d.flag_group)
    return int(vote.item())


def no_sync(model: nn.Module, sync: bool):
    """With ``sync=False``, skip the gradient all-reduce (all but the last micro-batch of an accumulation)."""
    if hasattr(model, "no_sync") and not sync:  # DDP
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(sync)
    return nullcontext()


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """``t`` whole when it is a DTensor (FSDP2; a collective then), else as is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def local_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` cut to ``like``'s shard when ``like`` is a DTensor (FSDP2), else as is."""
    if hasattr(like, "device_mesh"):
        from torch.distributed.tensor import distribute_tensor
        return distribute_tensor(full.to(like.device), like.device_mesh, like.placements)
    return full.to(like.device)


# The last barriers' handles: never dropped while the process runs (last_barrier says why).
_LAST_BARRIERS: list[dist.Work] = []


def end_distributed(d: Dist, finished: bool) -> None:
    """Tear the process groups down; after a finished run, only once every rank is done with them (last_barrier).
    After an error no barrier: another rank may never come to it."""
    if d.world == 1 or not dist.is_initialized():
        return
    if finished:
        last_barrier(d)
    dist.destroy_process_group()


def last_barrier(d: Dist) -> None:
    """Every rank meets before any tears its sockets down (gloo aborts a peer still talking to it), and no gloo
    thread is left to free a tensor while the interpreter shuts down.

    Gloo runs collectives on threads of its own, and the thread that ran one frees it, tensors included, after the
    caller was woken. Freeing a tensor that Python has seen takes the GIL; a thread that gets the GIL once the
    interpreter is finalising is ended inside that C++ destructor: std::terminate, and a rank whose run finished
    dies of SIGABRT ("terminate called without an active exception"; pytorch/pytorch#190489). destroy_process_group
    would join those threads, but it does not end a group something still holds, and something does (under FSDP2,
    the DeviceMeshes in DTensor's caches, among others). A gloo barrier holds, weakly, every collective its threads
    have not let go of when it is issued: while the barrier lives, their letting go frees nothing. So its handle is
    kept until the interpreter exits, and the main thread frees what it holds then.
    """
    if d.device.type == "cuda":
        dist.barrier()  # the default group is NCCL's; the gloo one is the flag group
    work = dist.barrier(group=d.flag_group, async_op=True)  # on the CPU, the default group
    work.wait()
    _LAST_BARRIERS.append(work)
