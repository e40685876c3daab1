"""parallel.py — data-parallel training under torchrun: DDP or FSDP2, and the plain model alone.

    torchrun --nproc_per_node 8 train.py ... [--fsdp]

Every process holds the same model and reads a different slice of each global micro-batch.
- DDP: every process holds all weights; after the backward pass the gradients are all-reduced (averaged).
- FSDP2 (`fully_shard`): each block's parameters, gradients and AdamW moments are split across the
  processes; a block's full weights are gathered just for its forward and backward, and gradients are
  reduce-scattered. Memory per process falls with the number of processes; the maths is unchanged.
On a CPU the processes talk over gloo (tested with 2 processes), on GPUs over NCCL.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard

from model import Llama


def setup(device: str) -> tuple[int, int, int, bool]:
    """(rank, world size, local rank, whether we created the process group); torchrun sets the env."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0, False
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if dist.is_initialized():
        return rank, world, local, False
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, local, True


def wrap(raw: Llama, fsdp: bool, device: torch.device, local: int, world: int) -> torch.nn.Module:
    """FSDP2 (per block, then the root for the embeddings, final norm and head) or DDP under torchrun;
    the plain model alone."""
    if fsdp:
        for block in raw.model.layers:
            fully_shard(block)
        return fully_shard(raw)
    if world > 1:
        return torch.nn.parallel.DistributedDataParallel(raw, device_ids=[local] if device.type == "cuda" else None)
    return raw


def clip_grad_norm(model, clip: float) -> float:
    """Clip the global gradient norm (clip 0: only measure it); FSDP2's DTensor norm made a plain float."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def gather_full(model, raw: Llama, device, master: bool) -> Llama:
    """FSDP: gather the full weights (every rank takes part) into a plain model on rank 0."""
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not master:
        return raw
    plain = Llama(raw.config)
    plain.load_state_dict(full)
    return plain.to(device)
