"""device.py — one decision of device, dtype and CPU threads for every script that runs a model.

CPUs differ more than people expect. On a Xeon with AMX torch's bf16 matmul runs several times
faster than fp32; on an EPYC with AVX-512 BF16 about twice; on a CPU with AVX2 only bf16 is
emulated and runs tens of times *slower*. So on the CPU nothing is assumed: `decide()` times a
matmul of the model's own shapes in this process (well under a second) and

- threads: the CPU's cores unless one thread is faster *now* (a busy machine makes OpenMP threads
  wait on each other, and a second thread can cost many times more than it brings);
- dtype: bf16 autocast only when bf16 is clearly faster than fp32 at those shapes, else fp32;
- peak: the measured FLOP/s of the chosen dtype, which MFU divides by.

On CUDA: bf16 where supported (else fp16 with a GradScaler), TF32 on, the GPU's stated dense bf16
peak. Every choice comes back with one line saying why, which each script prints.

    from device import decide
    rt = decide(device="auto", dtype="auto", threads=0, shape=(hidden, ffn))
    print(rt.why); model.to(rt.device); with rt.autocast(): ...

    python device.py [--device cpu] [--dtype bf16] [--threads 2]   # what this machine gets, and
                                                                    # the measurements behind it

Under torchrun (`torchrun --nproc_per_node 8 train.py ... [--fsdp]`) every process holds the same
model and reads a different slice of each global micro-batch:
- DDP: every process holds all weights; after the backward pass the gradients are all-reduced.
- FSDP2 (`fully_shard`): each block's parameters, gradients and AdamW moments are split across the
  processes; a block's full weights are gathered just for its forward and backward, and gradients
  are reduce-scattered. Memory per process falls with the number of processes; the maths is the
  same.
On a CPU the processes talk over gloo (tested with 2 processes), on GPUs over NCCL.
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import fully_shard

from cli import Parser, UsageError, add_config_flags, check_config, guard, opt
from model import Llama

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}  # torch's spellings, accepted
BF16_MARGIN = 1.3     # bf16 must beat fp32 by this factor to be chosen: "clearly faster", not noise
THREADS_MARGIN = 1.0  # all cores unless one is faster now (busy machine: OpenMP threads wait)
EMULATED = 4          # bf16 this many times slower than fp32: no bf16 hardware, torch emulates it
PEAK_ROWS = 1024      # MFU peak: a matmul as tall as a training micro-batch (128 rows run below)
# Stated dense bf16 tensor-core peaks (TFLOP/s, no sparsity), NVIDIA data sheets; first match wins.
GPU_BF16_PEAK = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0))


class DeviceError(ValueError):
    """A --device/--dtype/--threads value this machine cannot honour (one line for the CLI)."""


@dataclass
class Runtime:
    device: torch.device
    dtype: str          # "fp32" | "bf16" | "fp16": the compute dtype
    threads: int        # torch CPU threads set for this process
    peak_flops: float   # FLOP/s one process can reach in `dtype` (MFU's denominator)
    why: str            # one line: what was chosen and the measurement behind it

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def amp(self) -> torch.dtype | None:
        """The autocast dtype, None for plain fp32."""
        return None if self.dtype == "fp32" else DTYPES[self.dtype]

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)


def canonical_dtype(name: str, flag: str = "--dtype") -> str:
    """'auto', 'fp32', 'bf16' or 'fp16' from either spelling; DeviceError otherwise."""
    name = ALIASES.get(name, name)
    if name != "auto" and name not in DTYPES:
        raise DeviceError(f"{flag} {name!r}: expected auto, fp32, bf16 or fp16 "
                          "(float32/bfloat16/float16 also accepted)")
    return name


def check_flags(device: str, dtype: str) -> None:
    """--device and --dtype, checked before anything is read or written: one UsageError naming
    the flag (a CUDA device that is not there, a dtype with no name here)."""
    try:
        canonical_dtype(dtype)
    except DeviceError as e:
        raise UsageError(str(e)) from None
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to torch here; use cpu or auto")


def stated_bf16_peak(gpu_name: str) -> float | None:
    """The data-sheet dense bf16 TFLOP/s of a GPU named like torch.cuda.get_device_name, None if
    unknown (first match wins, so "H100 PCIe" is looked for before "H100")."""
    return next((p for k, p in GPU_BF16_PEAK if k in gpu_name), None)


def cpu_name() -> str:
    """The CPU model and torch's kernel level ('AMD EPYC, AVX2'): recorded beside every figure."""
    name = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}"


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def matmul_flops(dtype: torch.dtype, threads: int, shape: tuple[int, int], rows: int = 128,
                 seconds: float = 0.01, windows: int = 3) -> float:
    """FLOP/s of a (rows, k) @ (k, n) matmul on `threads` CPU threads: the best of `windows` timings
    of about `seconds` each (a peak, so a moment of load elsewhere does not lower it), each at least
    one call, so an emulated bf16 costs a few slow calls, not a loop of them."""
    k, n = (min(d, 1024) for d in shape)  # a 7B model's shapes capped: the kernel is what we time
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(rows, k).to(dtype), torch.randn(k, n).to(dtype)
        # warm-up: wake the thread pool, pick kernels
        torch.matmul(a if dtype is torch.float32 else a[:8], b)
        best = 0.0
        for _ in range(windows):
            calls, t0 = 0, time.perf_counter()
            while calls == 0 or time.perf_counter() - t0 < seconds:
                torch.matmul(a, b)
                calls += 1
            best = max(best, 2 * rows * k * n * calls / (time.perf_counter() - t0))
        return best
    finally:
        torch.set_num_threads(old)


def decide(device: str = "auto", dtype: str = "auto", threads: int = 0,
           shape: tuple[int, int] = (256, 688), local_rank: int = 0,
           peak_tflops: float | None = None, measure=matmul_flops) -> Runtime:
    """The one decision. threads=0 measures (CPU); shape = (hidden, ffn) of the model to run;
    `measure(dtype, threads, shape, rows=...) -> FLOP/s` is replaceable for tests."""
    dtype = canonical_dtype(dtype)
    if device not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"--device {device!r}: expected auto, cpu or cuda")
    if threads < 0:
        raise DeviceError(f"--threads {threads}: expected 0 (measure) or a positive count")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu "
                          "or auto")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return _decide_cuda(dtype, local_rank, peak_tflops)
    if dtype == "fp16":
        raise DeviceError("--dtype fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return _decide_cpu(dtype, threads, shape, peak_tflops, measure)


def _decide_cuda(dtype: str, local_rank: int, peak_tflops: float | None) -> Runtime:
    dev = torch.device("cuda", local_rank)
    torch.cuda.set_device(dev)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if dtype == "auto":
        dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    gpu = torch.cuda.get_device_name(dev)
    stated = stated_bf16_peak(gpu)
    peak = peak_tflops or stated
    if peak is None:  # unknown GPU: measure what its matmul reaches in this dtype
        peak = _cuda_matmul_tflops(DTYPES[dtype])
        src = f"measured {peak:.0f} TFLOP/s {dtype} matmul (GPU not in GPU_BF16_PEAK)"
    else:
        src = f"peak {peak:g} TFLOP/s ({'--peak-tflops' if peak_tflops else 'stated bf16 dense'})"
    why = f"device {dev} ({gpu}), {dtype}, TF32 on, {src}"
    return Runtime(dev, dtype, torch.get_num_threads(), peak * 1e12, why)


def _cuda_matmul_tflops(dt: torch.dtype, n: int = 8192, reps: int = 10) -> float:
    a = torch.randn(n, n, device="cuda", dtype=dt)
    torch.matmul(a, a)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.matmul(a, a)
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12


def _decide_cpu(dtype: str, threads: int, shape, peak_tflops, measure) -> Runtime:
    notes = []
    if threads == 0:
        cores = available_cores()
        threads = 1
        if cores > 1:
            one = measure(torch.float32, 1, shape, rows=512)
            many = measure(torch.float32, cores, shape, rows=512)
            threads = cores if many > THREADS_MARGIN * one else 1
            notes.append(f"{threads} thread(s): fp32 matmul {one / 1e9:.1f} GFLOP/s on 1, "
                         f"{many / 1e9:.1f} on {cores}")
        else:
            notes.append("1 thread (1 core)")
    else:
        notes.append(f"{threads} thread(s) (--threads)")
    torch.set_num_threads(threads)
    fp32 = bf16 = None
    if dtype == "auto" or peak_tflops is None:
        fp32 = measure(torch.float32, threads, shape)
    if dtype == "auto" or (dtype == "bf16" and peak_tflops is None):
        bf16 = measure(torch.bfloat16, threads, shape)
    if dtype == "auto":
        dtype = "bf16" if bf16 > BF16_MARGIN * fp32 else "fp32"
        verdict = ("faster" if dtype == "bf16" else
                   "emulated, slower" if bf16 < fp32 / EMULATED else "not clearly faster")
        notes.append(f"{dtype}: bf16 matmul {bf16 / 1e9:.1f} GFLOP/s vs fp32 {fp32 / 1e9:.1f} "
                     f"({verdict})")
    else:
        emulated = bf16 is not None and fp32 is not None and bf16 < fp32 / EMULATED
        note = f"{dtype} (--dtype)"
        if emulated:
            note += (f", although bf16 is emulated here: {bf16 / 1e9:.1f} GFLOP/s vs fp32 "
                     f"{fp32 / 1e9:.1f}")
        notes.append(note)
    peak = peak_tflops * 1e12 if peak_tflops else (bf16 if dtype == "bf16" else fp32)
    if not peak_tflops and peak > fp32 / EMULATED:  # the peak on as many rows as a batch feeds
        peak = max(peak, measure(DTYPES[dtype], threads, shape, rows=PEAK_ROWS))
    src = "--peak-tflops" if peak_tflops else f"measured {dtype} matmul at the model's shapes"
    notes.append(f"MFU peak {peak / 1e9:.1f} GFLOP/s ({src})")
    why = f"device cpu ({cpu_name()}), " + "; ".join(notes)
    return Runtime(torch.device("cpu"), dtype, threads, peak, why)


def decide_for_training(device: str, dtype: str, threads: int, mc, local: int, world: int,
                        peak_tflops: float | None) -> Runtime:
    """decide() at the model's matmul shapes; under torchrun every rank takes rank 0's CPU choice.
    A choice this machine cannot honour is a usage error (one line)."""
    shape = (mc.hidden_size, mc.intermediate_size)
    try:
        rt = decide(device, dtype, threads, shape, local, peak_tflops)
        if world > 1 and rt.device.type == "cpu":
            choice = [(rt.dtype, rt.threads)]
            dist.broadcast_object_list(choice, src=0)
            if choice[0] != (rt.dtype, rt.threads):
                rt = decide("cpu", choice[0][0], choice[0][1], shape, local, peak_tflops)
    except DeviceError as e:
        raise UsageError(str(e)) from None
    return rt


def seed_all(seed: int) -> None:
    """torch's, Python's and NumPy's generators, all from one seed."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def oom_message(e: Exception) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else "out of memory"
    return (f"out of memory ({first}). Reduce memory with --batch-size (and raise --grad-accum), "
            "--max-len, --grad-ckpt, --lora, --fsdp (several GPUs) or --dtype bf16")


# ----------------------------------------------------------------------------- several processes
def setup_processes(device: str) -> tuple[int, int, int, bool]:
    """(rank, world size, local rank, whether we created the process group); torchrun sets the
    environment."""
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
    """FSDP2 (per block, then the root for the embeddings, final norm and head) or DDP under
    torchrun; the plain model alone."""
    if fsdp:
        for block in raw.model.layers:
            fully_shard(block)
        return fully_shard(raw)
    if world > 1:
        ids = [local] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(raw, device_ids=ids)
    return raw


def clip_grad_norm(model, clip: float) -> float:
    """Clip the global gradient norm (clip 0: only measure it); FSDP2's DTensor norm made a plain
    float."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def gather_full(model, raw: Llama, device, master: bool) -> Llama:
    """FSDP: gather the full weights (every rank takes part) into a plain model on rank 0."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    full = get_model_state_dict(model, options=options)
    if not master:
        return raw
    plain = Llama(raw.config)
    plain.load_state_dict(full)
    return plain.to(device)


@dataclass
class DeviceConfig:
    device: str = opt("auto", "where to run", choices=("auto", "cpu", "cuda"))
    dtype: str = opt("auto", "compute dtype: auto, fp32, bf16 or fp16 (or the torch spellings)")
    threads: int = opt(0, "CPU threads; 0 measures whether more than one helps now",
                       range="[0, inf)")


def main(argv=None) -> int:
    """Print what this machine gets and the measurements behind it; exit 2 on a bad choice."""
    parser = add_config_flags(Parser(prog="device.py", doc=__doc__), DeviceConfig)
    cfg = DeviceConfig(**vars(parser.parse_args(argv)))

    def body():
        check_config(cfg)
        print(decide(cfg.device, cfg.dtype, cfg.threads).why)
    return guard("device.py", body, usage=(DeviceError,))


if __name__ == "__main__":
    sys.exit(main())
