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
plus the tokenizer (tokenizer.model, or the base's tokenizer.json), train_config.json (resolved config + status), metrics.jsonl (one row per log interval,
with the loss per data source; --resume drops the rows logged after the resumable state, so each step
appears once) and loss.png (plot.py); resume/state.pt is the resumable state (model, optimizer, step, RNG
states, data position), kept apart from the exported model. A finished run is never overwritten without
--overwrite, and --overwrite deletes nothing before every input has been checked.

Device, dtype and CPU threads come from device.decide (printed with the measurement behind them).

This file is the training itself: the config, the schedule, the step, the loop, and `train`, which
runs on inputs that exist and have been checked. `python train.py` runs runs.py's command line, the
harness that checks the flags and --out, and makes a missing world, tokenizer or base first.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

import checkpoint
import data as D
import device as DV
import lora
import mixture
import parallel
import plot
from cli import UsageError, opt
from files import write_atomic
from model import PRESETS, Llama, LlamaConfig
from tokenizer import Tokenizer

RECIPES = ("pretrain", "alpaca", "coit", "muit", "trans_only", "instr_only", "coit_x2en")


class NonFiniteLoss(RuntimeError):
    """The loss or gradient norm became inf/nan; the last good resumable state is kept."""


class Interrupted(RuntimeError):
    """Ctrl-C during training: the last resumable state is kept (exit 130)."""


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


@dataclass
class Inputs:
    """What a run reads, all checked before anything in --out is touched (runs.prepare makes them)."""
    base: Path | None          # the checkpoint fine-tuned; None when pretraining from scratch
    tokenizer: Tokenizer
    examples: list[dict]       # tokenized: input_ids, labels, source, lang


# ----------------------------------------------------------------------------- small pure helpers
def get_lr(step: int, total: int, lr: float, warmup: int, min_ratio: float = 0.0) -> float:
    """Linear warmup over `warmup` steps, then cosine from lr down to lr * min_ratio at `total`."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def n_targets(ex: dict) -> int:
    return sum(1 for t in ex["labels"][1:] if t != D.IGNORE_INDEX)


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

# ----------------------------------------------------------------------------- examples
def pretrain_examples(data_dir: Path, tok: Tokenizer, block: int) -> list[dict]:
    """Documents as [bos] doc [eos], concatenated and cut into blocks of `block` + 1 tokens."""
    stream: list[int] = []
    for f in sorted((data_dir / "pretrain").glob("*.txt")):
        for doc in f.read_text(encoding="utf-8").splitlines():
            if doc.strip():
                stream += [tok.bos_id] + tok.encode(doc) + [tok.eos_id]
    n = (len(stream) - 1) // block
    chunks = [stream[i * block: i * block + block + 1] for i in range(n)]
    return [dict(input_ids=c, labels=c, source="pretrain", lang="mix") for c in chunks]


def sft_examples(cfg: TrainConfig, tok: Tokenizer) -> list[dict]:
    """The recipe's mixture (mixture.build_mixture), tokenized; examples truncated away are dropped."""
    langs = cfg.langs.split(",") if cfg.recipe == "muit" else [cfg.lang]
    budget, allocation = cfg.budget, None  # uniform: mixture.py splits the budget evenly
    if cfg.allocation != "uniform":
        budget, allocation = None, cfg.allocation
    mix = mixture.build_mixture(cfg.recipe, cfg.data, langs, n_translation=cfg.n_translation,
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
def model_config(cfg: TrainConfig, tok: Tokenizer, base: Path | None) -> LlamaConfig:
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
                gnorm = parallel.clip_grad_norm(model, cfg.grad_clip)
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
                               elapsed_s=round(time.time() - wall0, 2), tokens=tok_log,
                               targets=int(sum(c for _, c in interval.values())),
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
                    checkpoint.save_state(state_path, model, optimizer, scaler, step, consumed, loss_val, cfg, self.world, master)
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


def oom_message(e: Exception) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else "out of memory"
    return (f"out of memory ({first}). Reduce memory with --batch-size (and raise --grad-accum), "
            "--max-len, --grad-ckpt, --lora, --fsdp (several GPUs) or --dtype bf16")


# ----------------------------------------------------------------------------- the run
def train(cfg: TrainConfig, inputs: Inputs, rank: int = 0, world: int = 1, local: int = 0,
          before_write=None) -> tuple[Path, Llama | None]:
    """Train as configured on checked inputs; return (--out, the trained model on rank 0, else None).
    Under torchrun every rank calls this. `before_write()` runs on rank 0 once the model is built and
    before anything is written to --out (runs.py removes an --overwrite'd run there). A run stopped by
    --stop-after returns (out, None), resumable."""
    out, master = Path(cfg.out), rank == 0
    base, tok, encoded = inputs.base, inputs.tokenizer, inputs.examples
    mc = model_config(cfg, tok, base)
    rt = decide_runtime(cfg, mc, local, world)
    device, amp, peak = rt.device, rt.amp, rt.peak_flops * world  # MFU of the whole job: every process's peak
    torch.manual_seed(cfg.seed)  # the same init (scratch weights, LoRA A) on every rank and every run
    model = build_model(cfg, mc, base, amp if device.type == "cuda" else torch.float32)
    if master and before_write is not None:
        before_write()
    run_info = {"base": str(base), "world_size": world}
    if master:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "train_config.json", json.dumps({**dataclasses.asdict(cfg), "status": "running",
                                                            **run_info}, indent=2))
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
    model = parallel.wrap(raw, cfg.fsdp, device, local, world)
    optimizer = make_optimizer(model, cfg, device)
    scaler = torch.amp.GradScaler(device.type) if amp is torch.float16 else None
    step, consumed, loss = 0, 0, float("nan")
    if cfg.resume:
        step, consumed, loss = checkpoint.load_state(out / "resume" / "state.pt", model, optimizer, scaler, cfg, rank)
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
            checkpoint.trim_metrics(out / "metrics.jsonl", step)
    loop = Loop(cfg, model, raw, optimizer, scaler, rt, tok.pad_id, rank, world, out, total, warmup, peak)
    try:
        step, summary = loop.run(step, micro_batches(encoded, gbs, cfg.seed, consumed), consumed, ga, loss)
    except torch.OutOfMemoryError as e:
        raise RuntimeError(oom_message(e)) from None
    if step < total:  # --stop-after: left as a killed run would be, resumable
        return out, None
    if cfg.fsdp:
        raw = parallel.gather_full(model, raw, device, master)
    if master:
        checkpoint.export(raw, lora_config(cfg) if cfg.lora else None, tok, out, base)
        write_atomic(out / "train_config.json", json.dumps({**dataclasses.asdict(cfg), "status": "finished",
                                                            **run_info, "summary": summary}, indent=2,
                                                           allow_nan=False))
        shutil.rmtree(out / "resume", ignore_errors=True)  # the export supersedes it (7B: ~84 GB of Adam state)
        print(f"train: done in {summary['wall_s']} s, {summary['tokens_per_s']:.0f} tok/s, "
              f"MFU {100 * summary['mfu']:.2f}%")
        try:
            print(f"train: loss per data source drawn in {plot.plot_run(out)}")
        except (OSError, ValueError) as e:  # a picture is not worth failing a finished run for
            print(f"train: no loss plot ({e})")
    if world > 1:
        dist.barrier()
    return out, raw if master else None


if __name__ == "__main__":  # the command line is the harness's (runs.py): it also makes a missing world and base
    import sys

    from study import runs
    sys.exit(runs.main())
