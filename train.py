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
        --preset paper-7b --fsdp                                     # 8 GPUs, as the paper (FSDP2; tested on CPU with gloo)
    python train.py --base ~/llama-7b-hf --data ../shared/data --lang zh --preset paper-7b \\
        --lora --lr 3e-4 --grad-ckpt                                 # one GPU

Outputs in --out: an HF LlamaForCausalLM folder (config.json, model.safetensors, generation_config.json)
plus tokenizer.model, train_config.json (resolved config + status), metrics.jsonl (one row per log interval,
with the loss per data source; --resume drops the rows logged after the resumable state, so each step
appears once) and loss.png (plot.py); resume/state.pt is the resumable state (model, optimizer, step, RNG
states, data position), kept apart from the exported model. A finished run is never overwritten without
--overwrite, and --overwrite deletes nothing before every input has been checked.

Device, dtype and CPU threads come from device.decide (printed with the measurement behind them).
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

from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_optimizer_state_dict,
                                                     set_model_state_dict, set_optimizer_state_dict)
from torch.distributed.fsdp import fully_shard

import data as D
import device as DV
import lora
import plot
from model import PRESETS, Llama, LlamaConfig

RECIPES = ("pretrain", "alpaca", "coit", "muit", "trans_only", "instr_only", "coit_x2en")


class UsageError(ValueError):
    """Bad flag or input: the CLI prints the one line and exits with code 2."""


class NonFiniteLoss(RuntimeError):
    """The loss or gradient norm became inf/nan; the last good resumable state is kept."""


class Interrupted(RuntimeError):
    """Ctrl-C during training: the last resumable state is kept (exit 130)."""


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
    arch: str = opt("micro", "pretrain only: model.PRESETS name or a config.json path")
    vocab_size: int = opt(3000, "pretrain only: sentencepiece vocabulary of the miniature world")
    preset: str | None = opt(None, "hyper-parameter preset: paper-7b (lr 2e-5, 3 epochs, batch 128, len 512)")
    epochs: float = opt(2.0, "passes over the training mixture (fractions allowed; the paper's 3: --preset paper-7b)")
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
    dtype: str = opt("auto", "auto (CPU: bf16 only where measured clearly faster) | fp32 | bf16 | fp16 (autocast; "
                             "weights stay fp32)")
    compile: bool = opt(False, "torch.compile the model")
    grad_ckpt: bool = opt(False, "activation checkpointing (less memory, about a third slower)")
    fsdp: bool = opt(False, "shard full fine-tuning with FSDP2 (fully_shard) under torchrun")
    threads: int = opt(0, "CPU threads; 0 = all cores if a short measurement shows them faster than one now")
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
# The miniature base: tokenizer + pretraining hyper-parameters. With the default arch (micro) and
# CoIT's 2 epochs the main job stays within minutes on two fp32 cores (docs/training.md, "The main job").
BASE_PRETRAIN = dict(recipe="pretrain", epochs=3.0, batch_size=16, max_len=128, lr=3e-3,
                     min_lr_ratio=0.1, warmup_ratio=0.05, weight_decay=0.1, beta2=0.95, samples=False)


def default_out(cfg: TrainConfig) -> str:
    return {"coit": f"runs/x-llama-{cfg.lang}", "muit": "runs/m-llama", "alpaca": "runs/alpaca-en",
            "pretrain": cfg.base_out}.get(cfg.recipe, f"runs/{cfg.recipe}-{cfg.lang}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Fill defaults and check every flag before anything is read or written; raise UsageError naming it."""
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
    if cfg.recipe == "pretrain" and cfg.arch not in PRESETS and not Path(cfg.arch).is_file():
        raise UsageError(f"--arch {cfg.arch!r}: expected one of {', '.join(PRESETS)} or a config.json file")
    at_least = dict(batch_size=1, grad_accum=1, max_len=2, log_every=1, save_every=1, max_steps=1, stop_after=1,
                    effective_batch=1, lora_r=1, vocab_size=300, n_alpaca=1, n_translation=0, budget=0, threads=0)
    for name, low in at_least.items():
        v = getattr(cfg, name)
        if v is not None and v < low:
            raise UsageError(f"--{name.replace('_', '-')} {v}: expected a whole number >= {low}")
    ranges = dict(epochs=(0, math.inf, "> 0"), lr=(0, math.inf, "> 0"), beta1=(0, 1, "in [0, 1)"),
                  beta2=(0, 1, "in [0, 1)"), lora_alpha=(0, math.inf, "> 0"))
    for name, (lo, hi, what) in ranges.items():
        v = getattr(cfg, name)
        if not (lo <= v < hi) or (what == "> 0" and v == 0):
            raise UsageError(f"--{name.replace('_', '-')} {v}: expected {what}")
    for name in ("lora_dropout", "warmup_ratio", "min_lr_ratio", "weight_decay", "grad_clip"):
        v = getattr(cfg, name)
        if not (0 <= v <= (1 if name in ("lora_dropout", "warmup_ratio", "min_lr_ratio") else math.inf)) \
                or (name in ("lora_dropout", "warmup_ratio") and v == 1):
            raise UsageError(f"--{name.replace('_', '-')} {v}: expected a value in "
                             + ("[0, 1)" if name in ("lora_dropout", "warmup_ratio") else
                                "[0, 1]" if name == "min_lr_ratio" else "[0, inf)"))
    if cfg.peak_tflops is not None and cfg.peak_tflops <= 0:
        raise UsageError(f"--peak-tflops {cfg.peak_tflops}: expected > 0")
    try:
        DV.canonical_dtype(cfg.dtype)
    except DV.DeviceError as e:
        raise UsageError(str(e)) from None
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {cfg.device!r}: expected auto, cpu or cuda")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu or auto")
    if cfg.preset is not None and cfg.preset not in PRESETS_TRAIN:
        raise UsageError(f"--preset {cfg.preset!r}: expected one of {', '.join(PRESETS_TRAIN)}")
    if cfg.fsdp and cfg.lora:
        raise UsageError("--fsdp shards full fine-tuning; it does not combine with --lora")
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
    return sum(1 for t in ex["labels"][1:] if t != D.IGNORE_INDEX)


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def status(out: Path) -> str:
    """'finished', 'unfinished' (a resumable state exists) or 'empty'."""
    cfg_file = out / "train_config.json"
    if cfg_file.is_file():
        try:
            run = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{cfg_file}: unreadable ({e}); remove it or pass another --out") from None
        if isinstance(run, dict) and run.get("status") == "finished":
            return "finished"
    return "unfinished" if (out / "resume" / "state.pt").is_file() else "empty"


def check_out(cfg: TrainConfig, out: Path) -> str:
    """What --out holds against what the flags allow: 'reuse' (return the finished run) or 'go'."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; expected a run folder (new or existing)")
    st = status(out)
    if st == "finished" and cfg.reuse and not cfg.overwrite:
        return "reuse"
    if st == "finished" and not cfg.overwrite:
        raise UsageError(f"--out {out}: holds a finished run; pass --overwrite to replace it")
    if st == "unfinished" and not (cfg.resume or cfg.overwrite):
        raise UsageError(f"--out {out}: holds an unfinished run; pass --resume to continue or --overwrite")
    if cfg.resume and st != "unfinished":
        raise UsageError(f"--resume: no resumable state at {out / 'resume' / 'state.pt'}")
    if st == "empty" and out.is_dir() and any(out.iterdir()) and not (out / "train_config.json").is_file():
        raise UsageError(f"--out {out}: a folder that holds something other than a train.py run; "
                         "choose another --out")
    return "go"


def trim_metrics(path: Path, step: int) -> None:
    """--resume: rows logged after the last resumable state are redone, so drop them."""
    rows = path.read_text().splitlines() if path.is_file() else []
    D.write_atomic(path, "".join(r + "\n" for r in rows if r.strip() and json.loads(r).get("step", 0) <= step))


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
    corpus = out_path.with_name(out_path.stem + "_corpus.txt")
    lines = []  # the text the model sees: Alpaca examples inside the prompt template (so it is cheap)
    for f in sorted((data_dir / "alpaca").glob("alpaca_*.json")):
        lines += [D.format_prompt(ex["instruction"], ex["input"]) + " " + ex["output"] for ex in D.read_alpaca(f)]
    D.write_atomic(corpus, "\n".join(x.replace("\n", " ") for x in lines) + "\n")
    files = sorted(str(p) for p in (data_dir / "pretrain").glob("*.txt")) + [str(corpus)]
    try:
        return D.Tokenizer.train(files, out_path, vocab_size, seed)
    finally:
        corpus.unlink(missing_ok=True)


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


# ----------------------------------------------------------------------------- model
def model_config(cfg: TrainConfig, tok: D.Tokenizer, base: Path | None) -> LlamaConfig:
    """The architecture to train: the base's config.json, else --arch with the tokenizer's vocabulary.
    A tokenizer with more pieces than the model has embeddings is refused here, not at the first lookup."""
    if base is not None:
        try:
            mc = LlamaConfig.from_json(base / "config.json")
        except (ValueError, TypeError) as e:
            raise UsageError(f"--base {base}: {e}") from None
    elif cfg.arch in PRESETS:
        mc = dataclasses.replace(PRESETS[cfg.arch], vocab_size=tok.vocab_size)
    else:
        try:
            mc = LlamaConfig.from_json(cfg.arch)
        except (ValueError, TypeError) as e:
            raise UsageError(f"--arch {cfg.arch}: {e}") from None
        mc = dataclasses.replace(mc, vocab_size=tok.vocab_size)
    tok.check_fits(mc.vocab_size)
    return mc


def build_model(cfg: TrainConfig, mc: LlamaConfig, base: Path | None, frozen_dtype=None) -> Llama:
    if base is None:
        return Llama(mc)
    try:  # fp32 master weights; a frozen LoRA base may stay in the autocast dtype
        return Llama.from_pretrained(base, dtype=frozen_dtype if cfg.lora else torch.float32).train()
    except (ValueError, OSError) as e:
        raise UsageError(f"--base {base}: {e}") from None


def wrap(raw: Llama, cfg: TrainConfig, device: torch.device, local: int, world: int) -> torch.nn.Module:
    """FSDP2 (fully_shard: each block's parameters sharded across ranks, gathered for its forward and
    backward) or DDP (whole replicas, gradients all-reduced) under torchrun; the plain model alone."""
    if cfg.fsdp:
        for block in raw.model.layers:
            fully_shard(block)
        return fully_shard(raw)
    if world > 1:
        return torch.nn.parallel.DistributedDataParallel(raw, device_ids=[local] if device.type == "cuda" else None)
    return raw


def lora_config(cfg: TrainConfig) -> lora.LoraConfig:
    targets = tuple(lora.ALL_LINEAR) if cfg.lora_targets == "all" else tuple(cfg.lora_targets.split(","))
    return lora.LoraConfig(r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, target_modules=targets)


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


def save_state(path: Path, model: torch.nn.Module, opt, scaler, step: int, consumed: int, loss: float,
               cfg: TrainConfig, world: int, master: bool) -> None:
    """Everything --resume needs; only trainable weights (all of them unless --lora). Under FSDP the
    shards are gathered into full tensors first, so a state loads whatever the number of processes."""
    rngs = [None] * world
    if world > 1:
        dist.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_sd = get_model_state_dict(model, options=full)
    opt_sd = get_optimizer_state_dict(model, opt, options=full)
    if master:
        model_sd = {k: v for k, v in model_sd.items() if not cfg.lora or "lora_" in k}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(dict(model=model_sd, optimizer=opt_sd, scaler=scaler.state_dict() if scaler else None,
                         step=step, micro_batches_consumed=consumed, loss=loss, rng=rngs,
                         config=dataclasses.asdict(cfg)), path)
    if world > 1:
        dist.barrier()


def load_state(path: Path, model: torch.nn.Module, opt, scaler, cfg: TrainConfig,
               rank: int) -> tuple[int, int, float]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: pickle, zip and EOF errors all end here
        raise UsageError(f"{path}: unreadable resumable state ({type(e).__name__}: {e}); "
                         "pass --overwrite to start again") from None
    old, new = state["config"], dataclasses.asdict(cfg)
    diff = [k for k in new if k not in RESUME_FREE and old.get(k) != new[k]]
    if diff:
        raise UsageError(f"--resume: flags differ from the killed run in {path}: "
                         + ", ".join(f"--{k.replace('_', '-')} {old.get(k)} -> {new[k]}" for k in diff))
    opts = StateDictOptions(full_state_dict=True, strict=not cfg.lora)
    set_model_state_dict(model, state["model"], options=opts)
    set_optimizer_state_dict(model, opt, state["optimizer"], options=opts)
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"][rank])
    return state["step"], state["micro_batches_consumed"], state.get("loss", float("nan"))


def clear_run(out: Path) -> None:
    """--overwrite: remove what a previous run wrote."""
    for name in ("resume", "adapter"):
        shutil.rmtree(out / name, ignore_errors=True)
    for f in out.glob("*"):
        if f.is_file():
            f.unlink()


def export(raw: torch.nn.Module, cfg: TrainConfig, tok_path: Path, out: Path, base: Path | None) -> None:
    """HF folder: each file written into a temp folder first, then renamed into `out` (the temp folder
    is removed if anything fails, so a full disk does not stay full)."""
    tmp = out / f".export.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if cfg.lora:
            lora.save_adapter(raw, tmp / "adapter", lora_config(cfg), str(base))
            lora.unload_lora(raw)  # merged into plain nn.Linear weights: a standard HF folder
        raw.save_pretrained(tmp)
        if tok_path.resolve() != (out / "tokenizer.model").resolve():
            shutil.copyfile(tok_path, tmp / "tokenizer.model")
        for f in tmp.iterdir():
            if f.is_dir():
                shutil.rmtree(out / f.name, ignore_errors=True)
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if tok_path.name.startswith(f".{out.name}."):  # a pretraining run's tokenizer, trained aside
        tok_path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the loop
def source_key(ex: dict) -> str:
    return f"{ex['source']}/{ex['lang']}"


def forward_backward(model, raw: Llama, batches: list[list[dict]], pad_id: int, device, autocast, scaler,
                     rank: int, world: int) -> tuple[dict[str, list[float]], int, float]:
    """One optimizer step's gradients: forward and backward over its micro-batches (each split across
    ranks), gradients accumulating in the model. The loss is summed over target tokens and divided by
    the target tokens of the whole step, not averaged per micro-batch. Returns ({source/lang: [loss sum,
    target tokens]} over all ranks, input tokens of the step, FLOPs per token at this sequence length)."""
    n_tok = sum(n_targets(ex) for b in batches for ex in b)  # target tokens of the whole step
    n_in = sum(len(ex["input_ids"]) - 1 for b in batches for ex in b)
    keys = sorted({source_key(ex) for b in batches for ex in b})  # the same on every rank
    sums = torch.zeros(2, len(keys), device=device)               # loss sum and target tokens per source
    flops_tok = 0.0
    for i, b in enumerate(batches):
        shard, weight = b[rank::world], 1.0
        if not shard:  # fewer examples than ranks: join the all-reduce with a zero-weight example
            shard, weight = b[:1], 0.0
        mb = D.make_batch(shard, pad_id)
        idx, targets = mb["idx"].to(device), mb["targets"].to(device)
        # no attention mask: padding is on the right, so causal attention never lets a real
        # token see a pad, and pad positions carry target -100
        last = i == len(batches) - 1
        sync = contextlib.nullcontext()
        if hasattr(model, "set_requires_gradient_sync"):  # FSDP2: reduce-scatter only after the last
            model.set_requires_gradient_sync(last)
        elif world > 1 and not last:                       # DDP: all-reduce only after the last
            sync = model.no_sync()
        with sync:
            with autocast():
                _, token_loss = model(idx, targets, reduction="none", only_targets=True)   # (N,)
            # DDP averages gradients over ranks, hence * world; / target tokens of the whole step
            scaled = token_loss.sum() * (weight * world / n_tok)
            (scaler.scale(scaled) if scaler else scaled).backward()
        row = (targets != D.IGNORE_INDEX).nonzero()[:, 0]                 # the example of each target token
        col = torch.tensor([keys.index(source_key(ex)) for ex in shard], device=device)[row]
        sums[0].index_add_(0, col, token_loss.detach().float() * weight)
        sums[1].index_add_(0, col, torch.full_like(token_loss, weight, dtype=torch.float))
        flops_tok = raw.flops_per_token(idx.shape[1], head_fraction=n_tok / max(n_in, 1))
    if world > 1:
        dist.all_reduce(sums)
    return {k: [s, c] for k, s, c in zip(keys, *sums.tolist())}, n_in, flops_tok


def prepare(cfg: TrainConfig, rank: int, world: int) -> tuple[Path | None, Path, D.Tokenizer, list[dict]]:
    """Everything the run reads, checked before anything in --out is touched: the world (written when
    missing), the base (pretrained when missing), the tokenizer and the tokenized examples."""
    def once(fn):  # rank 0 does the cached work first, the others then find it done
        r = fn() if rank == 0 else None
        if world > 1:
            dist.barrier()
        return r if rank == 0 else fn()

    if cfg.data == TrainConfig.data:
        once(lambda: ensure_world(cfg.data))
    check_data(cfg)
    out = Path(cfg.out)
    if cfg.recipe == "pretrain":  # the tokenizer is part of the run: trained aside, renamed in at export
        base, tok_path = None, out / "tokenizer.model"
        if not tok_path.is_file() or cfg.overwrite:
            tok_path = out.with_name(f".{out.name}.tokenizer.model")
            if cfg.overwrite and rank == 0:
                tok_path.unlink(missing_ok=True)
            once(lambda: ensure_tokenizer(Path(cfg.data), tok_path, cfg.vocab_size, cfg.seed))
    else:
        inherit = {k: getattr(cfg, k) for k in ("seed", "device", "dtype", "threads", "progress", "log_every")}
        base = Path(cfg.base) if cfg.base else once(lambda: ensure_base(cfg.data, cfg.base_out, **inherit))
        tok_path = base / "tokenizer.model"
        if not tok_path.is_file():
            raise UsageError(f"--base {base}: no tokenizer.model there")
    tok = D.Tokenizer(tok_path)
    encoded = pretrain_examples(Path(cfg.data), tok, cfg.max_len) if cfg.recipe == "pretrain" \
        else sft_examples(cfg, tok)
    return base, tok_path, tok, encoded


def decide_runtime(cfg: TrainConfig, mc: LlamaConfig, local: int, world: int) -> DV.Runtime:
    """device.decide at this model's matmul shapes; under torchrun every rank takes rank 0's choice."""
    try:
        rt = DV.decide(cfg.device, cfg.dtype, cfg.threads, (mc.hidden_size, mc.intermediate_size), local,
                       cfg.peak_tflops)
        if world > 1 and rt.device.type == "cpu":
            choice = [(rt.dtype, rt.threads)]
            dist.broadcast_object_list(choice, src=0)
            if choice[0] != (rt.dtype, rt.threads):
                rt = DV.decide("cpu", choice[0][0], choice[0][1], (mc.hidden_size, mc.intermediate_size),
                               local, cfg.peak_tflops)
    except DV.DeviceError as e:
        raise UsageError(str(e)) from None
    return rt


def train(cfg: TrainConfig, distributed: bool = True) -> Path:
    """Train as configured; return the finished checkpoint folder (or `out` after --stop-after).
    Under torchrun every rank calls this; distributed=False trains in this process alone."""
    cfg = validate(cfg)
    out = Path(cfg.out)
    if check_out(cfg, out) == "reuse":
        return out
    rank, world, local, own_pg = setup_dist(cfg) if distributed else (0, 1, 0, False)
    master = rank == 0
    base, tok_path, tok, encoded = prepare(cfg, rank, world)
    mc = model_config(cfg, tok, base)
    rt = decide_runtime(cfg, mc, local, world)
    device, amp, peak = rt.device, rt.amp, rt.peak_flops * world  # MFU of the whole job: every process's peak
    torch.manual_seed(cfg.seed)  # the same init (scratch weights, LoRA A) on every rank and every run
    model = build_model(cfg, mc, base, amp if device.type == "cuda" else torch.float32)
    if master and cfg.overwrite:  # every input has been read and checked: only now is the old run removed
        clear_run(out)
    if master:
        out.mkdir(parents=True, exist_ok=True)
        D.write_atomic(out / "train_config.json", json.dumps({**dataclasses.asdict(cfg), "status": "running",
                                                            "base": str(base), "world_size": world}, indent=2))
    if cfg.lora:
        lora.inject_lora(model, lora_config(cfg))
        lora.freeze_base(model)
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
    model = wrap(raw, cfg, device, local, world)
    optimizer = make_optimizer(model, cfg, device)
    scaler = torch.amp.GradScaler(device.type) if amp is torch.float16 else None
    step, consumed, loss = 0, 0, float("nan")
    if cfg.resume:
        step, consumed, loss = load_state(out / "resume" / "state.pt", model, optimizer, scaler, cfg, rank)
    if cfg.compile:
        model = torch.compile(model)
    if master:
        what = {"muit": cfg.langs, "pretrain": "", "alpaca": "en"}.get(cfg.recipe, cfg.lang)
        print(f"train: {cfg.recipe} {what} -> {out} | {rt.why}")
        print(f"train: {len(encoded)} examples, {per_epoch} micro-batches/epoch of {gbs} x {ga} accumulation, "
              f"{total} steps (warmup {warmup}), {world} process(es){', FSDP' if cfg.fsdp else ''}, "
              f"{n_params / 1e6:.2f}M params, {n_train / 1e6:.2f}M trainable")
        if cfg.resume:
            print(f"train: resumed at step {step}")
            trim_metrics(out / "metrics.jsonl", step)
    loop = Loop(cfg, model, raw, optimizer, scaler, rt, tok.pad_id, rank, world, out, total, warmup, peak)
    try:
        step, summary = loop.run(step, micro_batches(encoded, gbs, cfg.seed, consumed), consumed, ga, loss)
    except torch.OutOfMemoryError as e:
        raise RuntimeError(oom_message(e)) from None
    if step < total:  # --stop-after: left as a killed run would be, resumable
        if own_pg:
            dist.destroy_process_group()
        return out
    if cfg.fsdp:  # gather the full weights (every rank takes part) into a plain model on rank 0
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if master:
            raw = Llama(raw.config)
            raw.load_state_dict(full)
            raw.to(device)
    if master:
        export(raw, cfg, tok_path, out, base)
        D.write_atomic(out / "train_config.json", json.dumps({**dataclasses.asdict(cfg), "status": "finished",
                                                            "base": str(base), "world_size": world,
                                                            "summary": summary}, indent=2, allow_nan=False))
        shutil.rmtree(out / "resume", ignore_errors=True)  # the export supersedes it (7B: ~84 GB of Adam state)
        print(f"train: done in {summary['wall_s']} s, {summary['tokens_per_s']:.0f} tok/s, "
              f"MFU {100 * summary['mfu']:.2f}%")
        try:
            print(f"train: loss per data source drawn in {plot.plot_run(out)}")
        except (OSError, ValueError) as e:  # a picture is not worth failing a finished run for
            print(f"train: no loss plot ({e})")
        if cfg.samples and cfg.recipe != "pretrain":
            report(raw, cfg, tok, encoded, rt, out)
    if world > 1:
        dist.barrier()
    if own_pg:
        dist.destroy_process_group()
    return out


class Loop:
    """The optimizer loop: schedule, gradients, clip, step, log, save. `run` returns (step, summary)."""

    def __init__(self, cfg, model, raw, optimizer, scaler, rt, pad_id, rank, world, out, total, warmup, peak):
        self.cfg, self.model, self.raw, self.opt, self.scaler, self.rt = cfg, model, raw, optimizer, scaler, rt
        self.pad_id, self.rank, self.world, self.out = pad_id, rank, world, out
        self.total, self.warmup, self.peak = total, warmup, peak

    def run(self, step: int, stream, consumed: int, ga: int, loss_val: float) -> tuple[int, dict]:
        cfg, model, optimizer, scaler, master = self.cfg, self.model, self.opt, self.scaler, self.rank == 0
        state_path = self.out / "resume" / "state.pt"
        metrics = open(self.out / "metrics.jsonl", "a") if master else None
        bar = tqdm(total=self.total, initial=step, disable=not (master and cfg.progress), desc=cfg.recipe, leave=False)
        last_saved, t_log, tok_log, wall0, tok_all, t_all = step, time.time(), 0, time.time(), 0, 0.0
        interval: dict[str, list[float]] = {}  # loss sum and target tokens per source since the last log line
        flops_tok = self.raw.flops_per_token(cfg.max_len)  # replaced by the real length after a step
        try:
            while step < self.total:
                lr = get_lr(step, self.total, cfg.lr, self.warmup, cfg.min_lr_ratio)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                batches = [next(stream)[1] for _ in range(ga)]
                consumed += ga
                by_source, n_in, flops_tok = forward_backward(model, self.raw, batches, self.pad_id, self.rt.device,
                                                              self.rt.autocast, scaler, self.rank, self.world)
                loss_val = sum(s for s, _ in by_source.values()) / sum(c for _, c in by_source.values())
                for k, (s, c) in by_source.items():  # per source over the log interval, for the loss plot
                    acc = interval.setdefault(k, [0.0, 0.0])
                    acc[0], acc[1] = acc[0] + s, acc[1] + c
                if scaler:
                    scaler.unscale_(optimizer)
                gnorm = clip_grad_norm(model, cfg.grad_clip)
                if not math.isfinite(loss_val) or (scaler is None and not math.isfinite(gnorm)):
                    raise NonFiniteLoss(f"non-finite loss {loss_val} / grad norm {gnorm} at step {step + 1}; stopped. "
                                        f"Last good resumable state: {state_path} (step {last_saved}). "
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
                if step % cfg.log_every == 0 or step == self.total:
                    dt = time.time() - t_log
                    tps = tok_log / dt
                    mean = sum(s for s, _ in interval.values()) / max(sum(c for _, c in interval.values()), 1)
                    row = dict(step=step, loss=round(mean, 5), lr=lr, grad_norm=round(gnorm, 4),
                               tokens_per_s=round(tps, 1), mfu=round(tps * flops_tok / self.peak, 5),
                               elapsed_s=round(time.time() - wall0, 2),
                               source_loss={k: round(s / c, 5) for k, (s, c) in sorted(interval.items()) if c})
                    interval = {}
                    tok_all, t_all = tok_all + tok_log, t_all + dt
                    t_log, tok_log = time.time(), 0
                    if master:
                        metrics.write(json.dumps(row) + "\n")
                        metrics.flush()
                        tqdm.write(f"step {step}/{self.total} loss {mean:.4f} lr {lr:.2e} gnorm {gnorm:.2f} "
                                   f"tok/s {tps:.0f} mfu {100 * row['mfu']:.2f}%")
                # the last step is saved too: if the export then fails (disk full), --resume redoes only the export
                if step % cfg.save_every == 0 or step == cfg.stop_after or step == self.total:
                    save_state(state_path, model, optimizer, scaler, step, consumed, loss_val, cfg, self.world, master)
                    last_saved = step
                    t_log = time.time()  # checkpoint time is not training time
                if step == cfg.stop_after:
                    break
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted at step {step}; the last resumable state is step {last_saved} "
                              f"({state_path}): continue with --resume") from None
        finally:
            bar.close()
            if metrics:
                metrics.close()
        tps_all = tok_all / max(t_all, 1e-9)
        return step, dict(final_loss=loss_val, steps=step, wall_s=round(time.time() - wall0, 1),
                          tokens_per_s=round(tps_all, 1), mfu=round(tps_all * flops_tok / self.peak, 5),
                          peak_flops=self.peak)


def clip_grad_norm(model, clip: float) -> float:
    """Clip the global gradient norm (clip 0: only measure it); FSDP2's DTensor norm made a plain float."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def oom_message(e: Exception) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else "out of memory"
    return (f"out of memory ({first}). Reduce memory with --batch-size (and raise --grad-accum), "
            "--max-len, --grad-ckpt, --lora, --fsdp (several GPUs) or --dtype bf16")


# ----------------------------------------------------------------------------- the end-of-run report
@torch.no_grad()
def source_losses(model: Llama, encoded: list[dict], pad_id: int, rt: DV.Runtime, n: int = 64, bs: int = 16) -> dict:
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
            with rt.autocast():
                _, loss = model(mb["idx"].to(rt.device), mb["targets"].to(rt.device), reduction="sum")
            tot, cnt = tot + loss.item(), cnt + int((mb["targets"] != D.IGNORE_INDEX).sum())
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


def report(model: Llama, cfg: TrainConfig, tok: D.Tokenizer, encoded: list[dict], rt: DV.Runtime, out: Path) -> None:
    print(f"model: {out}  (load with Llama.from_pretrained or transformers.AutoModelForCausalLM)")
    device = rt.device
    for key, v in source_losses(model, encoded, tok.pad_id, rt).items():
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
    ask = D.translation_example("", "", "en", lang)["instruction"]
    print(f'talk to it:  python generate.py --model {out} --input "The favorite color of Mira is blue." "{ask}"')


# ----------------------------------------------------------------------------- CLI
class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2
        self.exit(2, f"train.py: error: {message}\n")


def build_parser() -> Parser:
    p = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=__doc__.split("\n\n", 1)[1])
    types = {"int": int, "float": float, "str": str}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        h = f"{f.metadata['help']} (default: {f.default})".replace("%", "%%")  # argparse formats help with %
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
    except Interrupted as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before the loop started: nothing of this run is lost
        print("train.py: interrupted before training started", file=sys.stderr)
        return 130
    except (NonFiniteLoss, RuntimeError, OSError) as e:  # OSError: e.g. the disk filled up while saving
        print(f"train.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
