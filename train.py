"""train.py — cross-lingual instruction tuning (x-LLaMA / m-LLaMA) on a miniature or real base.

    python train.py --lang de          # the main job: world, base, CoIT -> runs/x-llama-de
    python train.py --help             # every flag; recipes, resume, real checkpoints, torchrun:
                                       # docs/training.md

The main job writes the miniature world if missing (world.py), starts from the shipped base
(assets/base; --rebuild-base pretrains one), runs CoIT (English Alpaca + Alpaca in X + en->X
translation, and on the world 30 % ask documents: mixture.py), saves x-LLaMA as a Hugging Face
folder and ends with a first look at it (plot.first_look). Read top to bottom: the config, the
schedule, one optimizer step (the loss averaged over the step's target tokens), the loop, `fit`,
the base, `run` (the whole job) and `main`.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

import checkpoint
import data as D
import device as DV
import cli
import lora
import mixture
import plot
import tokenizer as T
from cli import (Interrupted, NonFiniteLoss, Parser, UsageError, add_config_flags, check_config,
                 guard, opt)
from model import IGNORE_INDEX, PRESETS, Llama

RECIPES = ("pretrain", "alpaca", "coit", "muit", "trans_only", "instr_only", "coit_x2en")


@dataclass
class TrainConfig:
    recipe: str = opt("coit", "what to train", choices=RECIPES)
    lang: str = opt("de", "target language X for coit and its ablations", choices=D.LANGS[1:])
    langs: str = opt("ar,el,hi,tr,vi,zh", "muit: comma-separated languages")
    budget: int | None = opt(None, "muit: total translation pairs, split by --allocation",
                             range="[0, inf)")
    allocation: str = opt("uniform", "muit: 'uniform' or a JSON file {lang: pairs} (scaling.py)")
    n_translation: int | None = opt(None, "use the first N translation pairs per language",
                                    range="[0, inf)")
    n_alpaca: int | None = opt(None, "use the first N Alpaca examples per language",
                               range="[1, inf)")
    replay: float | None = opt(None, "share of the examples that are ask documents (DATA/read/"
                                     "en.txt); default 0.3 where that file exists, else 0",
                               range="[0, 1)")
    data: str = opt("runs/world", "data folder; the default world is written when missing")
    base: str | None = opt(None, "HF LLaMA checkpoint folder; default: the miniature base")
    base_out: str = opt("runs/base", "where a base is pretrained (--rebuild-base, other worlds)")
    rebuild_base: bool = opt(False, "pretrain a base into --base-out (~45 min on 2 CPU cores) "
                                    "instead of using the shipped assets/base")
    out: str | None = opt(None, "output folder; default runs/x-llama-<lang>, runs/alpaca-en, ...")
    arch: str = opt("micro", "pretrain only: model.PRESETS name or a config.json path")
    vocab_size: int = opt(3000, "pretrain only: sentencepiece vocabulary", range="[300, inf)")
    preset: str | None = opt(None, "hyper-parameters: paper-7b (lr 2e-5, 3 epochs, batch 128)",
                             choices=("paper-7b",))
    epochs: float = opt(2.0, "passes over the training mixture (fractions allowed)",
                        range="(0, inf)")
    max_steps: int | None = opt(None, "optimizer steps; overrides --epochs", range="[1, inf)")
    batch_size: int = opt(16, "examples per micro-batch per process", range="[1, inf)")
    grad_accum: int = opt(1, "micro-batches per optimizer step", range="[1, inf)")
    effective_batch: int | None = opt(None, "if set, grad_accum = this / (batch_size * processes)",
                                      range="[1, inf)")
    max_len: int = opt(256, "max tokens per example (prompt + response); pretrain block length",
                       range="[2, inf)")
    lr: float = opt(1e-3, "peak learning rate", range="(0, inf)")
    min_lr_ratio: float = opt(0.0, "cosine ends at lr * this (0 as Hugging Face's cosine)",
                              range="[0, 1]")
    warmup_ratio: float = opt(0.03, "linear warmup over this fraction of the steps", range="[0, 1)")
    weight_decay: float = opt(0.0, "AdamW weight decay on matrices (not norms)", range="[0, inf)")
    beta1: float = opt(0.9, "AdamW beta1", range="[0, 1)")
    beta2: float = opt(0.999, "AdamW beta2", range="[0, 1)")
    grad_clip: float = opt(1.0, "clip the global gradient norm (0 = off)", range="[0, inf)")
    seed: int = opt(0, "one seed for init, data order and dropout", range="[0, inf)")
    lora: bool = opt(False, "train LoRA adapters, not all weights (exported merged + adapter/)")
    lora_r: int = opt(8, "LoRA rank", range="[1, inf)")
    lora_alpha: float = opt(16.0, "LoRA alpha (scale = alpha / r)", range="(0, inf)")
    lora_dropout: float = opt(0.05, "LoRA dropout", range="[0, 1)")
    lora_targets: str = opt("q_proj,v_proj", "comma-separated module names, or 'all'")
    device: str = opt("auto", "where to train", choices=("auto", "cpu", "cuda"))
    dtype: str = opt("auto", "auto (CPU: bf16 only where measured clearly faster) | fp32 | bf16 | "
                             "fp16 (autocast; weights stay fp32)")
    compile: bool = opt(False, "torch.compile the model")
    grad_ckpt: bool = opt(False, "activation checkpointing (less memory, about a third slower)")
    fsdp: bool = opt(False, "shard full fine-tuning with FSDP2 (fully_shard) under torchrun")
    threads: int = opt(0, "CPU threads; 0 = all cores unless one is measured faster now",
                       range="[0, inf)")
    peak_tflops: float | None = opt(None, "peak TFLOP/s for MFU; default: measured or stated",
                                    range="(0, inf)")
    log_every: int = opt(10, "optimizer steps between log lines", range="[1, inf)")
    save_every: int = opt(200, "optimizer steps between resumable states", range="[1, inf)")
    resume: bool = opt(False, "continue the unfinished run in --out")
    overwrite: bool = opt(False, "replace a finished or unfinished run in --out")
    reuse: bool = opt(False, "return a finished run in --out instead of refusing")
    stop_after: int | None = opt(None, "stop as if killed after this step", range="[1, inf)")
    progress: bool = opt(True, "tqdm bar")
    samples: bool = opt(True, "print per-source loss and sample generations at the end")


PRESETS_TRAIN = {  # the paper's official 7B fine-tuning (NJUNLP/x-LLM): HF Trainer, FSDP, 8 A100s
    "paper-7b": dict(lr=2e-5, epochs=3.0, effective_batch=128, batch_size=4, max_len=512,
                     warmup_ratio=0.03, weight_decay=0.0, min_lr_ratio=0.0, grad_clip=1.0,
                     dtype="bf16", log_every=1, save_every=200),
}
# The base (docs/training.md): 12M tokens of text (copying), then ask documents (binding, 30 %).
BASE_PRETRAIN = dict(recipe="pretrain", max_steps=6000, batch_size=16, max_len=128, lr=3e-3,
                     min_lr_ratio=0.1, warmup_ratio=0.05, weight_decay=0.1, beta2=0.95,
                     samples=False)
BASE_READ = dict(max_steps=1000, lr=1e-3, replay=0.3)


def default_out(cfg: TrainConfig) -> str:
    return {"coit": f"runs/x-llama-{cfg.lang}", "muit": "runs/m-llama", "alpaca": "runs/alpaca-en",
            "pretrain": cfg.base_out}.get(cfg.recipe, f"runs/{cfg.recipe}-{cfg.lang}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Every flag checked before anything is read or written (UsageError naming it); --out set."""
    check_config(cfg)
    D.check_langs(cfg.langs)
    if cfg.base is not None and not (Path(cfg.base) / "config.json").is_file():
        raise UsageError(f"--base {cfg.base}: no config.json there (expected an HF LLaMA folder)")
    if cfg.allocation != "uniform" and not Path(cfg.allocation).is_file():
        raise UsageError(f"--allocation {cfg.allocation}: expected 'uniform' or a JSON file")
    if cfg.recipe == "pretrain" and cfg.arch not in PRESETS and not Path(cfg.arch).is_file():
        raise UsageError(f"--arch {cfg.arch!r}: expected one of {', '.join(PRESETS)} "
                         "or a config.json file")
    DV.check_flags(cfg.device, cfg.dtype)
    if cfg.fsdp and cfg.lora:
        raise UsageError("--fsdp shards full fine-tuning; it does not combine with --lora")
    return dataclasses.replace(cfg, out=cfg.out or default_out(cfg))


# ------------------------------------------------------------------- the schedule, the optimizer
def get_lr(step: int, total: int, lr: float, warmup: int, min_ratio: float = 0.0) -> float:
    """Linear warmup over `warmup` steps, then cosine from lr down to lr * min_ratio at `total`."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW; weight decay only on matrices (embeddings and linears), never on norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8,
                             fused=device.type == "cuda")


# ----------------------------------------------------------------------------- one optimizer step
def forward_backward(model, raw: Llama, batches: list[list[dict]], pad_id: int, device, autocast,
                     scaler, rank: int, world: int) -> tuple[dict[str, list[float]], int, float]:
    """One optimizer step's gradients over its micro-batches (each split across ranks). The loss is
    summed over target tokens and divided by the target tokens of the whole step, not averaged per
    micro-batch. Returns ({source/lang: [loss sum, target tokens]} over all ranks, input tokens of
    the step, FLOPs per token at this sequence length)."""
    n_tok = sum(T.n_targets(ex) for b in batches for ex in b)  # target tokens of the whole step
    n_in = sum(len(ex["input_ids"]) - 1 for b in batches for ex in b)
    key = lambda ex: f"{ex['source']}/{ex['lang']}"  # noqa: E731  the data source of an example
    keys = sorted({key(ex) for b in batches for ex in b})      # the same on every rank
    sums = torch.zeros(2, len(keys), device=device)               # loss sum, target tokens per key
    flops_tok = 0.0
    for i, b in enumerate(batches):
        shard, weight = b[rank::world], 1.0
        if not shard:  # fewer examples than ranks: join the all-reduce with a zero-weight example
            shard, weight = b[:1], 0.0
        mb = T.make_batch(shard, pad_id)
        idx, targets = mb["idx"].to(device), mb["targets"].to(device)
        # no attention mask: right padding, so no real token sees a pad (pads carry target -100)
        last = i == len(batches) - 1
        sync = contextlib.nullcontext()
        if hasattr(model, "set_requires_gradient_sync"):  # FSDP2: reduce-scatter after the last
            model.set_requires_gradient_sync(last)
        elif world > 1 and not last:                       # DDP: all-reduce after the last only
            sync = model.no_sync()
        with sync:
            with autocast():
                _, token_loss = model(idx, targets, reduction="none", only_targets=True)   # (N,)
            # DDP averages gradients over ranks, hence * world; / target tokens of the whole step
            scaled = token_loss.sum() * (weight * world / n_tok)
            (scaler.scale(scaled) if scaler else scaled).backward()
        row = (targets != IGNORE_INDEX).nonzero()[:, 0]           # the example of each target
        col = torch.tensor([keys.index(key(ex)) for ex in shard], device=device)[row]
        sums[0].index_add_(0, col, token_loss.detach().float() * weight)
        sums[1].index_add_(0, col, torch.full_like(token_loss, weight, dtype=torch.float))
        flops_tok = raw.flops_per_token(idx.shape[1], head_fraction=n_tok / max(n_in, 1))
    if world > 1:
        dist.all_reduce(sums)
    return {k: [s, c] for k, s, c in zip(keys, *sums.tolist())}, n_in, flops_tok


def apply_gradients(model, optimizer, scaler, clip: float) -> float:
    """Clip, step (the GradScaler skips a step whose fp16 gradients overflowed), zero; the norm."""
    if scaler:
        scaler.unscale_(optimizer)
    gnorm = DV.clip_grad_norm(model, clip)
    if scaler is None and not math.isfinite(gnorm):
        return gnorm  # the caller stops: nothing is stepped with inf/nan gradients
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return gnorm


# ----------------------------------------------------------------------------- the loop
@dataclass
class Job:
    """What the loop works with, made once by `fit`."""
    model: torch.nn.Module     # what the step calls: the plain model, or DDP / FSDP around it
    raw: Llama                 # the plain model (FLOPs, export)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None   # fp16 only
    rt: DV.Runtime
    out: Path
    total: int                 # optimizer steps of the whole run
    warmup: int
    accum: int                 # micro-batches per optimizer step
    rank: int = 0
    world: int = 1


def loop(cfg: TrainConfig, job: Job, step: int, consumed: int, examples: list[dict], pad_id: int,
         loss: float) -> tuple[int, dict]:
    """Schedule, gradients, step, log, save until --max-steps (or --stop-after): (step, summary)."""
    master, state_path = job.rank == 0, job.out / "resume" / "state.pt"
    stream = T.micro_batches(examples, cfg.batch_size * job.world, cfg.seed, consumed)
    metrics = open(job.out / "metrics.jsonl", "a") if master else None
    bar = tqdm(total=job.total, initial=step, disable=not (master and cfg.progress),
               desc=cfg.recipe, leave=False)
    meter = plot.Meter(job.rt.peak_flops * job.world)  # MFU of the whole job: every process's peak
    last_saved, flops_tok = step, job.raw.flops_per_token(cfg.max_len)
    try:
        while step < job.total:
            lr = get_lr(step, job.total, cfg.lr, job.warmup, cfg.min_lr_ratio)
            for g in job.optimizer.param_groups:
                g["lr"] = lr
            batches = [next(stream)[1] for _ in range(job.accum)]
            consumed += job.accum
            by_source, n_in, flops_tok = forward_backward(
                job.model, job.raw, batches, pad_id, job.rt.device, job.rt.autocast, job.scaler,
                job.rank, job.world)
            loss = sum(s for s, _ in by_source.values()) / sum(c for _, c in by_source.values())
            meter.add(by_source, n_in)
            gnorm = apply_gradients(job.model, job.optimizer, job.scaler, cfg.grad_clip)
            if not math.isfinite(loss) or (job.scaler is None and not math.isfinite(gnorm)):
                raise NonFiniteLoss(
                    f"non-finite loss {loss} / grad norm {gnorm} at step {step + 1}; stopped. "
                    f"Last good resumable state: {state_path} (step {last_saved}). "
                    "Try a lower --lr, --dtype fp32 or --grad-clip 1.")
            step += 1
            bar.update(1)
            if (step % cfg.log_every == 0 or step == job.total) and master:
                metrics.write(json.dumps(meter.log(step, job.total, lr, gnorm, flops_tok)) + "\n")
                metrics.flush()
            # the last step is saved too: if the export then fails (disk full), --resume redoes it
            if step % cfg.save_every == 0 or step in (cfg.stop_after, job.total):
                checkpoint.save_state(state_path, job.model, job.optimizer, job.scaler, step,
                                      consumed, loss, cfg, job.world, master)
                last_saved, meter.t = step, time.time()  # checkpoint time is not training time
            if step == cfg.stop_after:
                break
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted at step {step}; the last resumable state is step "
                          f"{last_saved} ({state_path})") from None
    finally:
        bar.close()
        if metrics:
            metrics.close()
    return step, meter.summary(loss, step, flops_tok)


# ----------------------------------------------------------------------------- fit
def prepare_job(cfg: TrainConfig, inputs: mixture.Inputs, rank: int, world: int, local: int,
                before_write) -> Job:
    """The model (the base's or new), the device decision, LoRA, DDP/FSDP, AdamW, the schedule.
    `before_write()` runs on rank 0 once the model is built, before --out is written to."""
    out = Path(cfg.out)
    mc = checkpoint.config_to_train(inputs.base, cfg.arch, inputs.tokenizer)
    rt = DV.decide_for_training(cfg.device, cfg.dtype, cfg.threads, mc, local, world,
                                cfg.peak_tflops)
    torch.manual_seed(cfg.seed)  # the same init (scratch weights, LoRA A) on every rank and run
    # fp32 master weights; a frozen LoRA base may stay in the autocast dtype on a GPU
    frozen = rt.amp if cfg.lora and rt.device.type == "cuda" else None
    raw = checkpoint.model_to_train(mc, inputs.base, frozen or torch.float32)
    if rank == 0:
        if before_write is not None:
            before_write()
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.write_status(cfg, "running", started_from=str(inputs.base), world_size=world)
    if cfg.lora:
        lora.inject_lora(raw, lora.config_of(cfg))
        lora.freeze_base(raw)
    raw.gradient_checkpointing = cfg.grad_ckpt
    raw = raw.to(rt.device)
    DV.seed_all(cfg.seed + rank)  # dropout differs per rank; init above did not
    gbs = cfg.batch_size * world  # one global micro-batch, split across ranks
    accum = max(1, cfg.effective_batch // gbs) if cfg.effective_batch else cfg.grad_accum
    per_epoch = sum(1 for _ in T.iterate_batches(inputs.examples, batch_size=gbs, seed=cfg.seed))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch / accum))
    model = DV.wrap(raw, cfg.fsdp, rt.device, local, world)
    optimizer = make_optimizer(model, cfg, rt.device)
    scaler = torch.amp.GradScaler(rt.device.type) if rt.amp is torch.float16 else None
    job = Job(model, raw, optimizer, scaler, rt, out, total, math.ceil(cfg.warmup_ratio * total),
              accum, rank, world)
    if rank == 0:
        plot.plan(cfg, job, len(inputs.examples), per_epoch)
    return job


def fit(cfg: TrainConfig, inputs: mixture.Inputs, rank: int = 0, world: int = 1, local: int = 0,
        before_write=None) -> tuple[Path, Llama | None]:
    """Train as configured on checked inputs; (--out, the trained model on rank 0, else None).
    Under torchrun every rank calls this. A run stopped by --stop-after returns (out, None)."""
    job = prepare_job(cfg, inputs, rank, world, local, before_write)
    step, consumed, loss = 0, 0, float("nan")
    if cfg.resume:
        step, consumed, loss = checkpoint.load_state(job.out / "resume" / "state.pt", job.model,
                                                     job.optimizer, job.scaler, cfg, rank)
        if rank == 0:
            print(f"train: resumed at step {step}")
            checkpoint.trim_metrics(job.out / "metrics.jsonl", step)
    if cfg.compile:
        job.model = torch.compile(job.model)
    try:
        step, summary = loop(cfg, job, step, consumed, inputs.examples, inputs.tokenizer.pad_id,
                             loss)
    except torch.OutOfMemoryError as e:
        raise RuntimeError(DV.oom_message(e)) from None
    if step < job.total:  # --stop-after: left as a killed run would be, resumable
        return job.out, None
    raw = DV.gather_full(job.model, job.raw, job.rt.device, rank == 0) if cfg.fsdp else job.raw
    if rank == 0:
        checkpoint.export(raw, lora.config_of(cfg) if cfg.lora else None, inputs.tokenizer, job.out,
                          inputs.base)
        checkpoint.write_status(cfg, "finished", started_from=str(inputs.base), world_size=world,
                                summary=summary)
        shutil.rmtree(job.out / "resume", ignore_errors=True)  # the export supersedes it
        plot.finished(job.out, summary)
    if world > 1:
        dist.barrier()
    return job.out, raw if rank == 0 else None


# --------------------------------------- the miniature base, made on first use (mixture.prepare)
def base_phases(data_dir="runs/world", out="runs/base", **overrides) -> list[TrainConfig]:
    """The base's runs: the text into OUT-text, then the read phase from it into OUT (the text
    alone into OUT without DATA/read/en.txt). `overrides` change fields of both."""
    text = dict(BASE_PRETRAIN, **overrides, data=str(data_dir))
    if not (Path(data_dir) / "read" / "en.txt").is_file():
        return [TrainConfig(**text, out=str(out))]
    first = str(Path(out).with_name(Path(out).name + "-text"))
    read = dict(text, **{k: v for k, v in BASE_READ.items() if k not in overrides})
    return [TrainConfig(**text, out=first), TrainConfig(**read, base=first, out=str(out))]


def ensure_base(data_dir="runs/world", out="runs/base", distributed=False, **overrides) -> Path:
    """The miniature English-dominant base, trained once and reused; a killed phase resumes."""
    for cfg in base_phases(data_dir, out, **overrides):
        resume = checkpoint.run_status(cfg.out) == "unfinished"
        done = run(dataclasses.replace(cfg, reuse=True, resume=resume), distributed)
    return done


# ----------------------------------------------------------------------------- the whole run
def run(cfg: TrainConfig, distributed: bool = True) -> Path:
    """The whole run as `python train.py` does it: check the flags and --out, make or check every
    input, then fit; return the finished folder (or --out after --stop-after). Under torchrun every
    rank calls this; distributed=False trains in this process alone. Two runs cannot share an
    --out: the first holds a lock beside it (cli.locked), the second is refused at once."""
    cfg = validate(cfg)
    out = Path(cfg.out)
    lead = not distributed or os.environ.get("RANK", "0") == "0"
    lock = cli.locked(out, lock=out.parent / f".{out.name}.lock") if lead \
        else contextlib.nullcontext()
    with lock:
        if checkpoint.check_out(out, cfg.overwrite, cfg.resume, cfg.reuse) == "reuse":
            checkpoint.check_same_run(out, cfg)  # a cached base or model made otherwise: refused
            return out
        rank, world, local, own_pg = DV.setup_processes(cfg.device) if distributed \
            else (0, 1, 0, False)
        try:
            inputs = mixture.prepare(cfg, rank, world, ensure_base)
            # every input has been read and checked: only now is an --overwrite'd run removed
            before_write = (lambda: checkpoint.clear_run(out)) if cfg.overwrite else None
            out, model = fit(cfg, inputs, rank, world, local, before_write)
            if model is not None and cfg.samples and cfg.recipe != "pretrain":
                lang = cfg.langs.split(",")[0] if cfg.recipe == "muit" else cfg.lang
                plot.first_look(model, inputs.tokenizer, inputs.examples, cfg.data, lang, out,
                                    inputs.base, cfg.progress)
        finally:
            if own_pg:
                dist.destroy_process_group()
    return out


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Defaults, then the --preset's values (or the base's for --recipe pretrain), then the flags
    given explicitly."""
    parser = add_config_flags(Parser(prog="train.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1]), TrainConfig)
    args = vars(parser.parse_args(argv))
    kw = dataclasses.asdict(TrainConfig())
    if args.get("recipe") == "pretrain":  # the same runs as ensure_base()
        kw.update(BASE_PRETRAIN, **(BASE_READ if args.get("base") else {}))
    kw.update(PRESETS_TRAIN.get(args.get("preset"), {}))
    kw.update(args)
    return TrainConfig(**kw)


def main(argv: list[str] | None = None) -> int:
    """The command line; exit 0, 2 (a bad flag or input), 130 (Ctrl-C: how to continue) or 1."""
    argv, outs = list(sys.argv[1:] if argv is None else argv), []

    def body():
        cfg = validate(config_from_args(argv))
        outs.append(Path(cfg.out))
        run(cfg)

    def resume() -> str:  # after Ctrl-C: --resume once a resumable state exists, else the same
        args = argv
        if outs and checkpoint.run_status(outs[0]) == "unfinished":
            args = [a for a in argv if a not in ("--overwrite", "--resume")] + ["--resume"]
        return shlex.join(["python", "train.py", *args])
    return guard("train.py", body, resume)


if __name__ == "__main__":
    sys.exit(main())
