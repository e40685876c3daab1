"""train.py — pretrain the miniature base, then cross-lingual instruction tuning (x-LLaMA / m-LLaMA).

The main job, on a CPU with nothing downloaded (writes runs/world, runs/base, runs/x-llama-de):

    python train.py --lang de

It writes the miniature world if missing (world.py), trains its sentencepiece tokenizer, pretrains an
English-dominant miniature LLaMA on DATA/pretrain/*.txt (cached at runs/base and reused), runs CoIT
(English Alpaca + Alpaca in X + en->X translation) and saves x-LLaMA; it ends by printing the folder,
the final loss per data source, a sample translation and a sample answer (greedy).

Other recipes (the paper's models and ablations):

    python train.py --recipe alpaca                                   # English-only Alpaca baseline
    python train.py --recipe muit --langs ar,el,hi,tr,vi,zh --budget 6000 --allocation uniform
    python train.py --recipe muit --langs ar,zh --budget 4000 --allocation alloc.json   # {"ar": 3000, "zh": 1000}
    python train.py --recipe trans_only|instr_only|coit_x2en --lang de
    python train.py --lang zh --max-steps 50 --out runs/quick       # short runs (scaling sweeps)
    python train.py --lang de --resume                               # continue a killed run bit-identically
    python train.py --recipe pretrain --data runs/world --base-out runs/base   # the base alone (BASE_PRETRAIN)

Real checkpoints and data (full fine-tuning with the paper's hyper-parameters, or LoRA):

    python train.py --base ~/llama-7b-hf --data ../shared/data --lang zh --preset paper-7b
    torchrun --nproc_per_node 8 train.py --base ~/llama-7b-hf --data ../shared/data --lang zh \\
        --preset paper-7b --fsdp                                     # 8 GPUs, as the paper (untested here)
    python train.py --base ~/llama-7b-hf --data ../shared/data --lang zh --preset paper-7b \\
        --lora --lr 3e-4 --grad-ckpt                                 # one GPU

Outputs in --out: an HF LlamaForCausalLM folder (config.json, model.safetensors, generation_config.json)
plus tokenizer.model, train_config.json (resolved config + status) and metrics.jsonl (one row per log step;
--resume drops the rows logged after the resumable state, so each step appears once);
resume/state.pt is the resumable state (model, optimizer, step, RNG states, data position), kept apart
from the exported model. A finished run is never overwritten without --overwrite.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

import data as D
from model import PRESETS, Llama, LlamaConfig

RECIPES = ("pretrain", "alpaca", "coit", "muit", "trans_only", "instr_only", "coit_x2en")
# CPU --dtype auto. Measured on this machine (README "train"): bf16 autocast trains the mini model 1.8-2.1x
# faster than fp32 (AVX-512 BF16) and reaches the same loss after 240 pretraining steps.
CPU_AUTO_DTYPE = "bf16"


class UsageError(ValueError):
    """Bad flag or input: the CLI prints the one line and exits with code 2."""


class NonFiniteLoss(RuntimeError):
    """The loss or gradient norm became inf/nan; the last good resumable state is kept."""


def opt(default, help):  # a dataclass field that carries its --help text
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    recipe: str = opt("coit", "what to train: " + " | ".join(RECIPES))
    lang: str = opt("de", "target language X for coit and its ablations (" + ",".join(D.LANGS[1:]) + ")")
    langs: str = opt("ar,el,hi,tr,vi,zh", "muit: comma-separated languages")
    budget: int | None = opt(None, "muit: total translation pairs, split across --langs by --allocation")
    allocation: str = opt("uniform", "muit: 'uniform' or a JSON file {lang: pairs} (e.g. from scaling.py)")
    n_translation: int | None = opt(None, "use the first N translation pairs per language (scaling study)")
    n_alpaca: int | None = opt(None, "use the first N Alpaca examples per language")
    data: str = opt("runs/world", "data folder; the default miniature world is written when missing")
    base: str | None = opt(None, "HF LLaMA checkpoint folder; default: the miniature base at --base-out")
    base_out: str = opt("runs/base", "where the miniature base is pretrained and cached")
    out: str | None = opt(None, "output folder; default runs/x-llama-<lang>, runs/m-llama, runs/alpaca-en, ...")
    arch: str = opt("mini", "pretrain only: model.PRESETS name or a config.json path")
    vocab_size: int = opt(3000, "pretrain only: sentencepiece vocabulary of the miniature world")
    preset: str | None = opt(None, "hyper-parameter preset: paper-7b (lr 2e-5, 3 epochs, batch 128, len 512)")
    epochs: float = opt(3.0, "passes over the training mixture (fractions allowed)")
    max_steps: int | None = opt(None, "optimizer steps; overrides --epochs for the schedule")
    batch_size: int = opt(16, "examples per micro-batch per process")
    grad_accum: int = opt(1, "micro-batches per optimizer step")
    effective_batch: int | None = opt(None, "if set, grad_accum = effective_batch / (batch_size * processes)")
    max_len: int = opt(256, "max tokens per example (prompt + response); pretrain block length")
    lr: float = opt(1e-3, "peak learning rate")
    min_lr_ratio: float = opt(0.0, "cosine ends at lr * this (0 as Hugging Face's cosine)")
    warmup_ratio: float = opt(0.03, "linear warmup over this fraction of the steps")
    weight_decay: float = opt(0.0, "AdamW weight decay on matrices (not norms)")
    beta1: float = opt(0.9, "AdamW beta1")
    beta2: float = opt(0.999, "AdamW beta2")
    grad_clip: float = opt(1.0, "clip the global gradient norm (0 = off)")
    seed: int = opt(0, "one seed for init, data order and dropout")
    lora: bool = opt(False, "train LoRA adapters instead of all weights (exported merged + adapter/)")
    lora_r: int = opt(8, "LoRA rank")
    lora_alpha: float = opt(16.0, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = opt(0.05, "LoRA dropout")
    lora_targets: str = opt("q_proj,v_proj", "comma-separated module names, or 'all'")
    device: str = opt("auto", "auto | cpu | cuda")
    dtype: str = opt("auto", "auto | fp32 | bf16 | fp16 (autocast; weights stay fp32)")
    compile: bool = opt(False, "torch.compile the model")
    grad_ckpt: bool = opt(False, "activation checkpointing (less memory, ~30% slower)")
    fsdp: bool = opt(False, "shard full fine-tuning with FSDP under torchrun (untested here)")
    threads: int = opt(2, "CPU threads")
    peak_tflops: float | None = opt(None, "peak TFLOP/s for MFU; default: stated per device (printed)")
    log_every: int = opt(10, "optimizer steps between log lines")
    save_every: int = opt(200, "optimizer steps between resumable states (resume/state.pt)")
    resume: bool = opt(False, "continue the unfinished run in --out")
    overwrite: bool = opt(False, "replace a finished or unfinished run in --out")
    reuse: bool = opt(False, "return a finished run in --out instead of refusing")
    stop_after: int | None = opt(None, "stop (as if killed) after this step, keeping the resumable state")
    progress: bool = opt(True, "tqdm bar")
    samples: bool = opt(True, "print per-source loss and sample generations at the end")


PRESETS_TRAIN = {  # the paper's official 7B fine-tuning (NJUNLP/x-LLM): HF Trainer, FSDP, 8 A100s
    "paper-7b": dict(lr=2e-5, epochs=3.0, effective_batch=128, batch_size=4, max_len=512,
                     warmup_ratio=0.03, weight_decay=0.0, min_lr_ratio=0.0, grad_clip=1.0,
                     dtype="bf16", log_every=1, save_every=200),
}
# The miniature base: tokenizer + pretraining hyper-parameters, chosen so that the README's first
# command (base + CoIT) fits in 15 minutes on 2 cores (measured in README).
BASE_PRETRAIN = dict(recipe="pretrain", epochs=3.0, batch_size=16, max_len=128, lr=3e-3,
                     min_lr_ratio=0.1, warmup_ratio=0.05, weight_decay=0.1, beta2=0.95, samples=False)


def default_out(cfg: TrainConfig) -> str:
    return {"coit": f"runs/x-llama-{cfg.lang}", "muit": "runs/m-llama", "alpaca": "runs/alpaca-en",
            "pretrain": cfg.base_out}.get(cfg.recipe, f"runs/{cfg.recipe}-{cfg.lang}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Fill defaults and check flags; raise UsageError naming the flag."""
    if cfg.recipe not in RECIPES:
        raise UsageError(f"--recipe {cfg.recipe!r}: expected one of {', '.join(RECIPES)}")
    if cfg.lang not in D.LANGS or cfg.lang == "en":
        raise UsageError(f"--lang {cfg.lang!r}: expected one of {', '.join(D.LANGS[1:])}")
    bad = [x for x in cfg.langs.split(",") if x not in D.LANGS or x == "en"]
    if bad:
        raise UsageError(f"--langs: unknown language(s) {','.join(bad)}; expected from {','.join(D.LANGS[1:])}")
    if cfg.base is not None and not (Path(cfg.base) / "config.json").is_file():
        raise UsageError(f"--base {cfg.base}: no config.json there (expected an HF LLaMA checkpoint folder)")
    if cfg.allocation != "uniform" and not Path(cfg.allocation).is_file():
        raise UsageError(f"--allocation {cfg.allocation}: expected 'uniform' or a JSON file")
    for name in ("batch_size", "grad_accum", "max_len", "threads", "log_every", "save_every"):
        if getattr(cfg, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if cfg.dtype not in ("auto", "fp32", "bf16", "fp16") or cfg.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--dtype {cfg.dtype} / --device {cfg.device}: see --help")
    if cfg.preset is not None and cfg.preset not in PRESETS_TRAIN:
        raise UsageError(f"--preset {cfg.preset!r}: expected one of {', '.join(PRESETS_TRAIN)}")
    return dataclasses.replace(cfg, out=cfg.out or default_out(cfg))


def check_data(cfg: TrainConfig) -> None:
    """The data folder must hold the files the recipe reads (one line naming what is missing)."""
    root = Path(cfg.data)
    if not root.is_dir():
        raise UsageError(f"--data {root}: folder not found")
    langs = cfg.langs.split(",") if cfg.recipe == "muit" else [cfg.lang]
    need = []
    if cfg.recipe == "pretrain":
        if not list((root / "pretrain").glob("*.txt")):
            need.append(root / "pretrain" / "<lang>.txt")
    else:
        if cfg.recipe != "trans_only":
            need.append(root / "alpaca" / "alpaca_en.json")
        for x in langs if cfg.recipe != "alpaca" else []:
            if cfg.recipe != "trans_only":
                need.append(root / "alpaca" / f"alpaca_{x}.json")
            if cfg.recipe not in ("instr_only",):
                need.append(root / "parallel" / f"en-{x}")
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise UsageError(f"--data {root}: missing {', '.join(missing)}")


# ----------------------------------------------------------------------------- small pure helpers
def get_lr(step: int, total: int, lr: float, warmup: int, min_ratio: float = 0.0) -> float:
    """Linear warmup over `warmup` steps, then cosine from lr down to lr * min_ratio at `total`."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def n_targets(ex: dict) -> int:
    return sum(1 for t in ex["labels"][1:] if t != -100)


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def status(out: Path) -> str:
    """'finished', 'unfinished' (a resumable state exists) or 'empty'."""
    cfg_file = out / "train_config.json"
    if cfg_file.is_file() and json.loads(cfg_file.read_text()).get("status") == "finished":
        return "finished"
    return "unfinished" if (out / "resume" / "state.pt").is_file() else "empty"


def micro_batches(encoded: list[dict], global_bs: int, seed: int, skip: int):
    """Endless stream of (epoch, global micro-batch); epochs are reshuffled with (seed, epoch)."""
    epoch = 0
    while True:
        for batch in D.iterate_batches(encoded, batch_size=global_bs, seed=seed, epoch=epoch):
            if skip > 0:
                skip -= 1
                continue
            yield epoch, batch
        epoch += 1


# ----------------------------------------------------------------------------- world, tokenizer, base
def ensure_world(data_dir: str | Path = "runs/world", seed: int = 0, **size_flags) -> Path:
    """Write the miniature world into data_dir unless it is there (written to a temp dir, then renamed)."""
    import world
    data_dir = Path(data_dir)
    if (data_dir / "WORLD.json").is_file():
        return data_dir
    tmp = data_dir.with_name(f".{data_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    world.write_world(tmp, seed=seed, **size_flags)
    shutil.rmtree(data_dir, ignore_errors=True)
    os.replace(tmp, data_dir)
    return data_dir


def ensure_tokenizer(data_dir: Path, out_path: Path, vocab_size: int, seed: int = 0) -> D.Tokenizer:
    """Sentencepiece on the world's pretraining text + every Alpaca field, all languages (cached)."""
    if out_path.is_file():
        return D.Tokenizer(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    corpus = out_path.with_name("tokenizer_corpus.txt")
    lines = []  # the text the model sees: Alpaca examples inside the prompt template (so it is cheap)
    for f in sorted((data_dir / "alpaca").glob("alpaca_*.json")):
        lines += [D.format_prompt(ex["instruction"], ex["input"]) + " " + ex["output"] for ex in D.read_alpaca(f)]
    D.write_atomic(corpus, "\n".join(x.replace("\n", " ") for x in lines) + "\n")
    files = sorted(str(p) for p in (data_dir / "pretrain").glob("*.txt")) + [str(corpus)]
    return D.Tokenizer.train(files, out_path, vocab_size, seed)


def ensure_base(data_dir: str | Path = "runs/world", out: str | Path = "runs/base", distributed: bool = False,
                **overrides) -> Path:
    """The miniature English-dominant base (tokenizer + pretraining), trained once and reused;
    a killed pretraining resumes. `overrides` change BASE_PRETRAIN / TrainConfig fields."""
    out = Path(out)
    cfg = TrainConfig(**{**BASE_PRETRAIN, **overrides, "data": str(data_dir), "out": str(out)})
    return train(dataclasses.replace(cfg, reuse=True, resume=status(out) == "unfinished"), distributed)


# ----------------------------------------------------------------------------- examples
def pretrain_examples(data_dir: Path, tok: D.Tokenizer, block: int) -> list[dict]:
    """Documents as [bos] doc [eos], concatenated and cut into blocks of `block` + 1 tokens."""
    stream: list[int] = []
    for f in sorted((data_dir / "pretrain").glob("*.txt")):
        for doc in f.read_text(encoding="utf-8").splitlines():
            if doc.strip():
                stream += [tok.bos_id] + tok.encode(doc) + [tok.eos_id]
    n = (len(stream) - 1) // block
    chunks = [stream[i * block: i * block + block + 1] for i in range(n)]
    return [dict(input_ids=c, labels=c, source="pretrain", lang="mix") for c in chunks]


def sft_examples(cfg: TrainConfig, tok: D.Tokenizer) -> list[dict]:
    """The recipe's mixture (data.build_mixture), tokenized; examples truncated away are dropped."""
    langs = cfg.langs.split(",") if cfg.recipe == "muit" else [cfg.lang]
    budget, allocation = cfg.budget, None  # uniform: data.py splits the budget evenly
    if cfg.allocation != "uniform":
        budget, allocation = None, cfg.allocation
    mix = D.build_mixture(cfg.recipe, cfg.data, langs, n_translation=cfg.n_translation,
                          budget=budget, allocation=allocation, n_alpaca=cfg.n_alpaca, seed=cfg.seed)
    encoded = []
    for ex in mix:
        enc = D.encode_example(tok, ex, cfg.max_len)
        if enc is not None:
            encoded.append(dict(enc, source=ex["source"], lang=ex["lang"]))
    if not encoded:
        raise UsageError(f"--data {cfg.data}: recipe {cfg.recipe} produced no training examples")
    return encoded


# ----------------------------------------------------------------------------- device and model
# Stated dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's data sheets; first match wins.
GPU_BF16_PEAK = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0))


def stated_bf16_peak(gpu_name: str) -> float | None:
    """The data-sheet dense bf16 TFLOP/s of a GPU named like torch.cuda.get_device_name, None if unknown
    (first match wins, so "H100 PCIe" is looked for before "H100")."""
    return next((p for k, p in GPU_BF16_PEAK if k in gpu_name), None)


def pick_device(cfg: TrainConfig, local_rank: int) -> tuple[torch.device, torch.dtype | None, float, str]:
    """Device, autocast dtype (None = fp32), the peak FLOP/s used for MFU, and a line saying why."""
    cuda = torch.cuda.is_available() if cfg.device == "auto" else cfg.device == "cuda"
    if cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        name = cfg.dtype if cfg.dtype != "auto" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        gpu = torch.cuda.get_device_name(device)
        stated = stated_bf16_peak(gpu)
        peak = cfg.peak_tflops or stated or 100.0
        why = f"{gpu}, TF32 on, " + (f"peak {peak:g} TFLOP/s" if cfg.peak_tflops or stated
                                     else "unknown GPU: MFU against an assumed 100 TFLOP/s (set --peak-tflops)")
    else:
        device = torch.device("cpu")
        torch.set_num_threads(cfg.threads)
        name = cfg.dtype if cfg.dtype != "auto" else CPU_AUTO_DTYPE
        ghz = cpu_ghz()
        flops_per_cycle = 128 if name == "bf16" else 64  # AVX-512 FMA: 2 x 16 fp32 lanes x 2; bf16 dot: x2
        peak = cfg.peak_tflops or cfg.threads * flops_per_cycle * ghz / 1e3
        why = f"{cfg.threads} threads, stated peak {cfg.threads} x {flops_per_cycle} FLOP/cycle x {ghz:.2f} GHz"
    amp = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
    if amp is torch.float16 and device.type == "cpu":
        raise UsageError("--dtype fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return device, amp, peak * 1e12, f"device {device}, {name} autocast ({why})"


def cpu_ghz() -> float:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1e3
    except OSError:
        pass
    return 2.5


def build_model(cfg: TrainConfig, tok: D.Tokenizer, base: Path | None, frozen_dtype=None) -> Llama:
    if base is not None:  # fp32 master weights; a frozen LoRA base may stay in the autocast dtype
        return Llama.from_pretrained(base, dtype=frozen_dtype if cfg.lora else torch.float32).train()
    if cfg.arch in PRESETS:
        p = PRESETS[cfg.arch]
        mc = dataclasses.replace(p, vocab_size=tok.vocab_size) if isinstance(p, LlamaConfig) \
            else LlamaConfig(**{**p, "vocab_size": tok.vocab_size})
    elif Path(cfg.arch).is_file():
        mc = LlamaConfig.from_json(cfg.arch)
    else:
        raise UsageError(f"--arch {cfg.arch!r}: expected one of {', '.join(PRESETS)} or a config.json")
    return Llama(mc)


def lora_config(cfg: TrainConfig):
    import lora as L
    targets = tuple(L.ALL_LINEAR) if cfg.lora_targets == "all" else tuple(cfg.lora_targets.split(","))
    return L.LoraConfig(r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, target_modules=targets)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay only on matrices (embeddings and linears), never on norms or LoRA-free biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8, fused=fused)


# ----------------------------------------------------------------------------- distributed + state
def setup_dist(cfg: TrainConfig) -> tuple[int, int, int, bool]:
    """(rank, world size, local rank, whether we created the process group); torchrun sets the env."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0, False
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if dist.is_initialized():
        return rank, world, local, False
    cuda = torch.cuda.is_available() if cfg.device == "auto" else cfg.device == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, local, True


def rng_state() -> dict:
    return dict(torch=torch.get_rng_state(), python=random.getstate(), numpy=np.random.get_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    if s["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


# config fields that may differ between a killed run and its resumption
RESUME_FREE = {"resume", "overwrite", "reuse", "stop_after", "progress", "samples", "log_every",
               "save_every", "threads", "peak_tflops", "compile"}


def save_state(path: Path, raw: torch.nn.Module, opt, scaler, step: int, consumed: int, cfg: TrainConfig,
               world: int, master: bool) -> None:
    """Everything --resume needs; only trainable weights (all of them unless --lora)."""
    rngs = [None] * world
    if world > 1:
        dist.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    if master:
        model_sd = {k: v for k, v in raw.state_dict().items() if not cfg.lora or "lora_" in k}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(dict(model=model_sd, optimizer=opt.state_dict(), scaler=scaler.state_dict() if scaler else None,
                         step=step, micro_batches_consumed=consumed, rng=rngs, config=dataclasses.asdict(cfg)), path)


def load_state(path: Path, raw: torch.nn.Module, opt, scaler, cfg: TrainConfig, rank: int) -> tuple[int, int]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    old, new = state["config"], dataclasses.asdict(cfg)
    diff = [k for k in new if k not in RESUME_FREE and old.get(k) != new[k]]
    if diff:
        raise UsageError(f"--resume: flags differ from the killed run in {path}: "
                         + ", ".join(f"--{k.replace('_', '-')} {old.get(k)} -> {new[k]}" for k in diff))
    missing, unexpected = raw.load_state_dict(state["model"], strict=not cfg.lora)
    assert not unexpected and not any("lora_" in k for k in missing), (missing, unexpected)
    opt.load_state_dict(state["optimizer"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"][rank])
    return state["step"], state["micro_batches_consumed"]


def clear_run(out: Path) -> None:
    """--overwrite: remove what a previous run wrote."""
    for name in ("resume", "adapter"):
        shutil.rmtree(out / name, ignore_errors=True)
    for f in out.glob("*"):
        if f.is_file():
            f.unlink()


def export(raw: torch.nn.Module, cfg: TrainConfig, tok_path: Path, out: Path, base: Path | None) -> None:
    """HF folder: each file written into a temp folder first, then renamed into `out`."""
    tmp = out / f".export.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if cfg.lora:
        import lora as L
        L.save_adapter(raw, tmp / "adapter", lora_config(cfg), str(base))
        L.unload_lora(raw)  # merged into plain nn.Linear weights: a standard HF folder
    raw.save_pretrained(tmp)
    if tok_path.resolve() != (out / "tokenizer.model").resolve():
        shutil.copyfile(tok_path, tmp / "tokenizer.model")
    for f in tmp.iterdir():
        if f.is_dir():
            shutil.rmtree(out / f.name, ignore_errors=True)
        os.replace(f, out / f.name)
    tmp.rmdir()


# ----------------------------------------------------------------------------- the loop
def forward_backward(model, raw: Llama, batches: list[list[dict]], pad_id: int, device, autocast, scaler,
                     rank: int, world: int) -> tuple[float, int, float]:
    """One optimizer step's gradients: forward and backward over its micro-batches (each split across
    ranks), gradients accumulating in the model. The loss is summed over target tokens and divided by
    the target tokens of the whole step, not averaged per micro-batch. Returns (that loss over all
    ranks, input tokens of the step, FLOPs per token at this sequence length)."""
    n_tok = sum(n_targets(ex) for b in batches for ex in b)  # target tokens of the whole step
    n_in = sum(len(ex["input_ids"]) - 1 for b in batches for ex in b)
    loss_sum, flops_tok = torch.zeros((), device=device), 0.0
    for i, b in enumerate(batches):
        shard, weight = b[rank::world], 1.0
        if not shard:  # fewer examples than ranks: join the all-reduce with a zero-weight example
            shard, weight = b[:1], 0.0
        mb = D.make_batch(shard, pad_id)
        idx, targets = mb["idx"].to(device), mb["targets"].to(device)
        # no attention mask: padding is on the right, so causal attention never lets a real
        # token see a pad, and pad positions carry target -100
        sync = model.no_sync() if world > 1 and i < len(batches) - 1 else contextlib.nullcontext()
        with sync:
            with autocast():
                _, loss = model(idx, targets, reduction="sum")
            # DDP averages gradients over ranks, hence * world; / target tokens of the whole step
            scaled = loss * (weight * world / n_tok)
            (scaler.scale(scaled) if scaler else scaled).backward()
        loss_sum += loss.detach().float() * weight
        flops_tok = raw.flops_per_token(idx.shape[1])
    if world > 1:
        dist.all_reduce(loss_sum)
    return loss_sum.item() / n_tok, n_in, flops_tok


def train(cfg: TrainConfig, distributed: bool = True) -> Path:
    """Train as configured; return the finished checkpoint folder (or `out` after --stop-after).
    Under torchrun every rank calls this; distributed=False trains in this process alone."""
    cfg = validate(cfg)
    rank, world, local, own_pg = setup_dist(cfg) if distributed else (0, 1, 0, False)
    master = rank == 0
    device, amp, peak, why = pick_device(cfg, local)
    peak *= world  # MFU of the whole job: every process's peak
    out = Path(cfg.out)
    st = status(out)
    if st == "finished" and cfg.reuse and not cfg.overwrite:
        return out
    if st == "finished" and not cfg.overwrite:
        raise UsageError(f"--out {out}: holds a finished run; pass --overwrite to replace it")
    if st == "unfinished" and not (cfg.resume or cfg.overwrite):
        raise UsageError(f"--out {out}: holds an unfinished run; pass --resume to continue or --overwrite")
    if cfg.resume and st != "unfinished":
        raise UsageError(f"--resume: no resumable state at {out / 'resume' / 'state.pt'}")
    if cfg.fsdp and (cfg.lora or cfg.resume or device.type != "cuda"):
        raise UsageError("--fsdp is for full fine-tuning on several GPUs, without --lora or --resume")

    def once(fn):  # rank 0 does the cached work first, the others then find it done
        if master:
            r = fn()
        if world > 1:
            dist.barrier()
        return r if master else fn()

    if cfg.data == TrainConfig.data:
        once(lambda: ensure_world(cfg.data))
    check_data(cfg)
    if master and cfg.overwrite:
        clear_run(out)
    if cfg.recipe == "pretrain":
        base, tok_path = None, out / "tokenizer.model"
        once(lambda: ensure_tokenizer(Path(cfg.data), tok_path, cfg.vocab_size, cfg.seed))
    else:
        inherit = {k: getattr(cfg, k) for k in ("seed", "device", "dtype", "threads", "progress", "log_every")}
        base = Path(cfg.base) if cfg.base else once(lambda: ensure_base(cfg.data, cfg.base_out, **inherit))
        tok_path = base / "tokenizer.model"
        if not tok_path.is_file():
            raise UsageError(f"--base {base}: no tokenizer.model there")
    tok = D.Tokenizer(tok_path)
    if master:
        out.mkdir(parents=True, exist_ok=True)
        D.write_atomic(out / "train_config.json", json.dumps({**dataclasses.asdict(cfg), "status": "running",
                                                            "base": str(base), "world_size": world}, indent=2))

    encoded = pretrain_examples(Path(cfg.data), tok, cfg.max_len) if cfg.recipe == "pretrain" \
        else sft_examples(cfg, tok)
    torch.manual_seed(cfg.seed)  # the same init (scratch weights, LoRA A) on every rank and every run
    model = build_model(cfg, tok, base, amp if device.type == "cuda" else torch.float32)
    if cfg.lora:
        import lora as L
        L.inject_lora(model, lora_config(cfg))
        L.freeze_base(model)
    model.gradient_checkpointing = cfg.grad_ckpt
    raw = model.to(device)
    torch.manual_seed(cfg.seed + rank)  # dropout differs per rank; init above did not
    random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)

    gbs = cfg.batch_size * world  # one global micro-batch, split across ranks
    ga = max(1, cfg.effective_batch // gbs) if cfg.effective_batch else cfg.grad_accum
    per_epoch = sum(1 for _ in D.iterate_batches(encoded, batch_size=gbs, seed=cfg.seed))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch / ga))
    warmup = math.ceil(cfg.warmup_ratio * total)
    n_params, n_train = raw.num_params(), sum(p.numel() for p in raw.parameters() if p.requires_grad)
    if cfg.fsdp:  # one FSDP unit per decoder block: one block's full weights in memory at a time
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy
        from model import Block
        model = FSDP(model, use_orig_params=True, device_id=device, auto_wrap_policy=ModuleWrapPolicy({Block}))
    elif world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local] if device.type == "cuda" else None)
    optimizer = make_optimizer(model, cfg, device)
    scaler = torch.amp.GradScaler("cuda") if amp is torch.float16 else None
    step = consumed = 0
    if cfg.resume:
        step, consumed = load_state(out / "resume" / "state.pt", raw, optimizer, scaler, cfg, rank)
    if cfg.compile:
        model = torch.compile(model)
    autocast = (lambda: torch.autocast(device.type, dtype=amp)) if amp else contextlib.nullcontext

    if master:
        what = {"muit": cfg.langs, "pretrain": "", "alpaca": "en"}.get(cfg.recipe, cfg.lang)
        print(f"train: {cfg.recipe} {what} -> {out} | {why}")
        print(f"train: {len(encoded)} examples, {per_epoch} micro-batches/epoch of {gbs} x {ga} accumulation, "
              f"{total} steps (warmup {warmup}), {world} process(es), "
              f"{n_params / 1e6:.2f}M params, {n_train / 1e6:.2f}M trainable")
        if cfg.resume:
            print(f"train: resumed at step {step}")
    if master and cfg.resume:  # rows logged after the last resumable state are redone: drop them
        mpath = out / "metrics.jsonl"
        rows = mpath.read_text().splitlines() if mpath.is_file() else []
        D.write_atomic(mpath, "".join(r + "\n" for r in rows if r.strip() and json.loads(r).get("step", 0) <= step))
    metrics = open(out / "metrics.jsonl", "a") if master else None
    bar = tqdm(total=total, initial=step, disable=not (master and cfg.progress), desc=cfg.recipe, leave=False)
    stream = micro_batches(encoded, gbs, cfg.seed, consumed)
    last_saved, t_log, tok_log, wall0, tok_all, t_all = step, time.time(), 0, time.time(), 0, 0.0
    flops_tok, loss_val = 0.0, float("nan")
    try:
        while step < total:
            lr = get_lr(step, total, cfg.lr, warmup, cfg.min_lr_ratio)
            for g in optimizer.param_groups:
                g["lr"] = lr
            batches = [next(stream)[1] for _ in range(ga)]
            consumed += ga
            loss_val, n_in, flops_tok = forward_backward(model, raw, batches, tok.pad_id, device, autocast, scaler,
                                                         rank, world)
            if scaler:
                scaler.unscale_(optimizer)
            clip = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
            gnorm = float(model.clip_grad_norm_(clip) if cfg.fsdp else
                          torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], clip))
            if not math.isfinite(loss_val) or (scaler is None and not math.isfinite(gnorm)):
                raise NonFiniteLoss(f"non-finite loss {loss_val} / grad norm {gnorm} at step {step + 1}; stopped. "
                                    f"Last good resumable state: {out / 'resume' / 'state.pt'} (step {last_saved}). "
                                    "Try a lower --lr, --dtype fp32 or --grad-clip 1.")
            if scaler:
                scaler.step(optimizer)  # skips the step when fp16 gradients overflowed
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tok_log += n_in
            bar.update(1)
            if step % cfg.log_every == 0 or step == total:
                dt = time.time() - t_log
                tps = tok_log / dt
                row = dict(step=step, loss=round(loss_val, 5), lr=lr, grad_norm=round(gnorm, 4),
                           tokens_per_s=round(tps, 1), mfu=round(tps * flops_tok / peak, 5),
                           elapsed_s=round(time.time() - wall0, 2))
                tok_all, t_all = tok_all + tok_log, t_all + dt
                t_log, tok_log = time.time(), 0
                if master:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                    tqdm.write(f"step {step}/{total} loss {loss_val:.4f} lr {lr:.2e} gnorm {gnorm:.2f} "
                               f"tok/s {tps:.0f} mfu {100 * row['mfu']:.2f}%")
            if (step % cfg.save_every == 0 or step == cfg.stop_after) and not cfg.fsdp:
                save_state(out / "resume" / "state.pt", raw, optimizer, scaler, step, consumed, cfg, world, master)
                last_saved = step
                t_log = time.time()  # checkpoint time is not training time
            if step == cfg.stop_after:
                break
    except torch.OutOfMemoryError as e:
        raise RuntimeError(f"CUDA out of memory ({e}). Reduce memory with --batch-size (and raise --grad-accum), "
                           "--max-len, --grad-ckpt, --lora, --fsdp (several GPUs) or --dtype bf16") from None
    finally:
        bar.close()
        if metrics:
            metrics.close()
    if step < total:  # --stop-after: left as a killed run would be, resumable
        if own_pg:
            dist.destroy_process_group()
        return out
    tps_all = tok_all / max(t_all, 1e-9)
    summary = dict(final_loss=loss_val, steps=step, wall_s=round(time.time() - wall0, 1),
                   tokens_per_s=round(tps_all, 1), mfu=round(tps_all * flops_tok / peak, 5), peak_flops=peak)
    if cfg.fsdp:  # gather the full weights (every rank takes part) into a plain model on rank 0
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if master:
            raw = Llama(raw.config)
            raw.load_state_dict(full)
            raw.to(device)
    if master:
        export(raw, cfg, tok_path, out, base)
        D.write_atomic(out / "train_config.json", json.dumps({**dataclasses.asdict(cfg), "status": "finished",
                                                            "base": str(base), "world_size": world,
                                                            "summary": summary}, indent=2))
        shutil.rmtree(out / "resume", ignore_errors=True)  # the export supersedes it (7B: ~84 GB of Adam state)
        print(f"train: done in {summary['wall_s']} s, {tps_all:.0f} tok/s, MFU {100 * summary['mfu']:.2f}%")
        if cfg.samples and cfg.recipe != "pretrain":
            report(raw, cfg, tok, encoded, device, amp, out)
    if world > 1:
        dist.barrier()
    if own_pg:
        dist.destroy_process_group()
    return out


# ----------------------------------------------------------------------------- the end-of-run report
@torch.no_grad()
def source_losses(model: Llama, encoded: list[dict], pad_id: int, device, amp, n: int = 64, bs: int = 16) -> dict:
    """Mean loss per target token for each (source, lang) over its first n training examples."""
    groups: dict[str, list[dict]] = {}
    for ex in encoded:
        groups.setdefault(f"{ex['source']}/{ex['lang']}", []).append(ex)
    res = {}
    model.eval()
    for key, exs in sorted(groups.items()):
        tot, cnt = 0.0, 0
        for i in range(0, min(n, len(exs)), bs):
            mb = D.make_batch(exs[i:i + bs], pad_id)
            with torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
                _, loss = model(mb["idx"].to(device), mb["targets"].to(device), reduction="sum")
            tot, cnt = tot + loss.item(), cnt + int((mb["targets"] != -100).sum())
        res[key] = tot / cnt
    model.train()
    return res


@torch.no_grad()
def complete(model: Llama, tok: D.Tokenizer, ex: dict, device, max_new_tokens: int = 64) -> str:
    """Greedy response to one Alpaca-style example."""
    model.eval()
    ids = [tok.bos_id] + tok.encode(D.format_prompt(ex["instruction"], ex["input"]))
    outp = model.generate(torch.tensor([ids], device=device), max_new_tokens, eos_id=tok.eos_id)
    model.train()
    return tok.decode(outp[0, len(ids):].tolist()).strip()


def report(model: Llama, cfg: TrainConfig, tok: D.Tokenizer, encoded: list[dict], device, amp, out: Path) -> None:
    print(f"model: {out}  (load with Llama.from_pretrained or transformers.AutoModelForCausalLM)")
    for key, v in source_losses(model, encoded, tok.pad_id, device, amp).items():
        print(f"final loss {key:<22} {v:.4f}")
    lang = cfg.langs.split(",")[0] if cfg.recipe == "muit" else cfg.lang
    try:
        src, ref = D.read_flores(cfg.data, "en")[0], D.read_flores(cfg.data, lang)[0]
        ex = D.translation_example(src, "", "en", lang)
        print(f"sample translation en->{lang}\n  source: {src}\n  model:  {complete(model, tok, ex, device)}"
              f"\n  ref:    {ref}")
        qa = D.read_squad(D.xquad_path(cfg.data, lang))[0]
        ex = D.qa_example(qa["context"], qa["question"], lang)
        print(f"sample answer ({lang} XQuAD)\n  question: {qa['question']}\n  model:    "
              f"{complete(model, tok, ex, device)}\n  gold:     {qa['answers'][0]}")
    except (FileNotFoundError, ValueError, IndexError) as e:
        print(f"(no sample: {e})")


# ----------------------------------------------------------------------------- CLI
class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"train.py: error: {message}\n")


def build_parser() -> Parser:
    p = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=__doc__.split("\n\n", 1)[1])
    types = {"int": int, "float": float, "str": str}
    for f in dataclasses.fields(TrainConfig):
        flag, h = "--" + f.name.replace("_", "-"), f"{f.metadata['help']} (default: {f.default})"
        if f.type == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=h)
        else:
            p.add_argument(flag, type=types[f.type.split(" ")[0]], default=argparse.SUPPRESS, help=h)
    return p


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Defaults, then the --preset's values, then the flags given explicitly."""
    args = vars(build_parser().parse_args(argv))
    kw = dataclasses.asdict(TrainConfig())
    if args.get("recipe") == "pretrain":  # the same run as ensure_base()
        kw.update(BASE_PRETRAIN)
    if args.get("preset") is not None:
        if args["preset"] not in PRESETS_TRAIN:
            raise UsageError(f"--preset {args['preset']!r}: expected one of {', '.join(PRESETS_TRAIN)}")
        kw.update(PRESETS_TRAIN[args["preset"]])
    kw.update(args)
    return TrainConfig(**kw)


def main(argv: list[str] | None = None) -> int:
    try:
        train(config_from_args(argv))
    except (UsageError, D.DataError) as e:  # bad flag or input file
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    except (NonFiniteLoss, RuntimeError) as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
