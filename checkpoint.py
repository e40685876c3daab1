"""checkpoint.py — what a training run leaves on disk: the resumable state and the exported model.

    resume/state.pt     everything `train.py --resume` needs to continue bit-identically: the trainable
                        weights, AdamW's moments, the GradScaler, the step, how many micro-batches of the
                        data stream were consumed, and every process's RNG states (torch, Python, numpy,
                        CUDA). Under FSDP the shards are gathered into full tensors, so a state saved by N
                        processes loads into M.
    metrics.jsonl       one row per log interval; on resume the rows after the saved step are dropped,
                        since those steps are redone.
    <out>/              the export: a Hugging Face LlamaForCausalLM folder (+ adapter/ for LoRA runs)
                        and the tokenizer, each file renamed into place from a temp folder.

A resumption must use the same flags as the killed run, except those in RESUME_FREE (how often to log
or save, threads, the progress bar ...); any other difference is refused, naming each flag.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_optimizer_state_dict,
                                                     set_model_state_dict, set_optimizer_state_dict)

import lora
from cli import UsageError
from files import atomic_path, write_atomic


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
               cfg, world: int, master: bool) -> None:
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
        state = dict(model=model_sd, optimizer=opt_sd, scaler=scaler.state_dict() if scaler else None,
                     step=step, micro_batches_consumed=consumed, loss=loss, rng=rngs, config=dataclasses.asdict(cfg))
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    if world > 1:
        dist.barrier()


def load_state(path: Path, model: torch.nn.Module, opt, scaler, cfg,
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

def trim_metrics(path: Path, step: int) -> None:
    """--resume: rows logged after the last resumable state are redone, so drop them."""
    rows = path.read_text().splitlines() if path.is_file() else []
    write_atomic(path, "".join(r + "\n" for r in rows if r.strip() and json.loads(r).get("step", 0) <= step))

def export(raw: torch.nn.Module, lora_cfg, tokenizer, out: Path, base: Path | None) -> None:
    """HF folder + the tokenizer (tokenizer.model, or tokenizer.json with its config): each file written
    into a temp folder first, then renamed into `out` (the temp folder is removed if anything fails, so
    a full disk does not stay full). A LoRA run (lora_cfg given) also writes adapter/ and exports the
    merged weights."""
    tmp = out / f".export.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if lora_cfg is not None:
            lora.save_adapter(raw, tmp / "adapter", lora_cfg, str(base))
            lora.unload_lora(raw)  # merged into plain nn.Linear weights: a standard HF folder
        raw.save_pretrained(tmp)
        tokenizer.save(tmp)
        for f in tmp.iterdir():
            if f.is_dir():
                shutil.rmtree(out / f.name, ignore_errors=True)
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if tokenizer.path.name.startswith(f".{out.name}."):  # a pretraining run's tokenizer, trained aside
        tokenizer.path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the run folder
def run_status(out: Path) -> str:
    """'finished', 'unfinished' (a resumable state exists) or 'empty'."""
    cfg_file = Path(out) / "train_config.json"
    if cfg_file.is_file():
        try:
            run = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{cfg_file}: unreadable ({e}); remove it or pass another --out") from None
        if isinstance(run, dict) and run.get("status") == "finished":
            return "finished"
    return "unfinished" if (Path(out) / "resume" / "state.pt").is_file() else "empty"


def check_out(out: Path, overwrite: bool, resume: bool, reuse: bool) -> str:
    """What --out holds against what the flags allow: 'reuse' (return the finished run) or 'go'.
    A finished run is never replaced without --overwrite, an unfinished one needs --resume or
    --overwrite, and a folder this project did not write is never touched."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; expected a run folder (new or existing)")
    st = run_status(out)
    if st == "finished" and reuse and not overwrite:
        return "reuse"
    if st == "finished" and not overwrite:
        raise UsageError(f"--out {out}: holds a finished run; pass --overwrite to replace it")
    if st == "unfinished" and not (resume or overwrite):
        raise UsageError(f"--out {out}: holds an unfinished run; pass --resume to continue "
                         "or --overwrite")
    if resume and st != "unfinished":
        raise UsageError(f"--resume: no resumable state at {out / 'resume' / 'state.pt'}")
    if st == "empty" and out.is_dir() and any(out.iterdir()) \
            and not (out / "train_config.json").is_file():
        raise UsageError(f"--out {out}: a folder that holds something other than a train.py run; "
                         "choose another --out")
    return "go"


def clear_run(out: Path) -> None:
    """--overwrite, once every input has been checked: remove what a previous run wrote."""
    for name in ("resume", "adapter"):
        shutil.rmtree(out / name, ignore_errors=True)
    for f in out.glob("*"):
        if f.is_file():
            f.unlink()
