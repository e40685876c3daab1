"""checkpoint.py — a model on disk: Hugging Face checkpoint folders, and a training run's state.

    from checkpoint import load_model, save_model, read_config
    model = load_model("path/to/hf_folder", dtype="bfloat16", device="cuda")  # strict, named load
    save_model(model, "runs/ckpt")                  # config.json + safetensors (+ shards, index)
    cfg = read_config("path/to/hf_folder/config.json")          # a model.LlamaConfig
    python -m pytest -q tests/test_model.py         # our folders <-> transformers, both ways

A Hugging Face LlamaForCausalLM folder: config.json in either spelling (transformers 4
`rope_theta`/`rope_scaling`/`torch_dtype`, transformers 5 `rope_parameters`/`dtype`; we write
both), then model.safetensors, sharded safetensors with an index, or pytorch_model.bin. model.py's
parameter names are HF's, so loading is a strict load: missing or unexpected keys and wrong shapes
raise one ValueError naming them. The model is built on the meta device and filled in place, so a
7B model never exists twice in memory. Saving writes safetensors with metadata {"format": "pt"},
a tied head once, shards above 5 GiB, each file renamed into place.

What a training run leaves on disk (train.py):

    resume/state.pt     everything `train.py --resume` needs to continue bit-identically: the
                        trainable weights, AdamW's moments, the GradScaler, the step, how many
                        micro-batches of the data stream were consumed, and every process's RNG
                        states (torch, Python, numpy, CUDA). Under FSDP the shards are gathered
                        into full tensors, so a state saved by N processes loads into M.
    metrics.jsonl       one row per log interval; on resume the rows after the saved step are
                        dropped, since those steps are redone.
    <out>/              the export: a Hugging Face LlamaForCausalLM folder (+ adapter/ for LoRA
                        runs) and the tokenizer, each file renamed into place from a temp folder.

A resumption must use the same flags as the killed run, except those in RESUME_FREE (how often to
log or save, threads, the progress bar ...); any other difference is refused, naming each flag.
The run folder's status (`run_status`, `check_out`, `check_same_run`, `clear_run`) decides what a
new run may do with --out; `shipped_base`, `config_to_train` and `model_to_train` choose the model
a run starts from (assets/base when the world's pretraining text matches it).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict,
                                                     set_model_state_dict,
                                                     set_optimizer_state_dict)

import lora
from cli import UsageError
from cli import atomic_path, read_json, write_atomic
from model import PRESETS, Llama, LlamaConfig, check_keys


# ----------------------------------------------------------------------------- Hugging Face folders
def load_model(path, dtype=None, device=None) -> Llama:
    """Load a HF LlamaForCausalLM folder (model.safetensors, sharded safetensors with an index,
    or pytorch_model.bin). Strict: missing/unexpected keys and wrong shapes raise one ValueError
    naming them. Built on the meta device and filled with assign=True, so a 7B model never
    exists twice in memory; tensors keep the checkpoint's dtype unless dtype is given."""
    path = Path(path)
    config = read_config(path / "config.json")
    state = _read_state(path, device)
    with torch.device("meta"):
        model = Llama(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight")
        state.pop("lm_head.weight", None)                  # some tied checkpoints store it anyway
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    check_keys(state, expected, f"{path}: checkpoint does not fit config.json", "config expects")
    dtype = _as_dtype(dtype)
    for k, v in state.items():            # one tensor at a time, so peak memory stays ~one copy
        if dtype is not None and v.is_floating_point():
            state[k] = v.to(dtype)
    model.load_state_dict(state, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    dtype_name = str(model.lm_head.weight.dtype).removeprefix("torch.")
    model.config = replace(config, torch_dtype=dtype_name)
    return model.eval()


def save_model(model: Llama, path, max_shard_bytes: int = 5 * 2**30) -> Path:
    """Write config.json, generation_config.json and model.safetensors (shards + index above
    max_shard_bytes). A new folder is built beside `path` and renamed into place; into an
    existing folder (tokenizer, logs) each file is written to a temp name and renamed."""
    path, cfg = Path(path), model.config
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight")                        # safetensors cannot store aliases
    shards, size = [{}], 0
    for k, v in state.items():
        nbytes = v.numel() * v.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += nbytes
    dtype = str(model.lm_head.weight.dtype).removeprefix("torch.")
    files = {"config.json": config_to_hf(replace(cfg, torch_dtype=dtype)),
             "generation_config.json": {"bos_token_id": cfg.bos_token_id,
                                        "eos_token_id": cfg.eos_token_id}}
    if len(shards) == 1:
        names = ["model.safetensors"]
    else:
        names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
        files["model.safetensors.index.json"] = {
            "metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())},
            "weight_map": {k: n for n, shard in zip(names, shards) for k in shard}}
    final = path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp", dir=path.parent))
    for old in [*path.glob("model*.safetensors"), *path.glob("model.safetensors.index.json")]:
        if old.name not in names and old.name not in files:
            old.unlink()                                   # stale shards of an earlier save
    for name, shard in zip(names, shards):
        with atomic_path(path / name) as tmp:
            save_file(shard, str(tmp), metadata={"format": "pt"})
    for name, obj in files.items():
        write_atomic(path / name, json.dumps(obj, indent=2) + "\n")
    if path != final:
        os.rename(path, final)
    return final


def read_config(path) -> LlamaConfig:
    """A config.json file's LlamaConfig; one error naming the file (and field) on bad input."""
    return config_from_hf(read_json(path, "a Hugging Face config.json", dict), source=str(path))


_NEEDED = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
           "num_attention_heads")


def config_from_hf(d: dict, source: str = "config") -> LlamaConfig:
    """LlamaConfig from a HF config dict; accepts transformers-4 (`rope_theta`, `rope_scaling`,
    `torch_dtype`) and transformers-5 (`rope_parameters`, `dtype`) spellings."""
    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a JSON object of config fields")
    if d.get("model_type", "llama") != "llama":
        raise ValueError(f"{source}: model_type={d['model_type']!r}, expected 'llama'")
    for name in _NEEDED:
        if name not in d:
            raise ValueError(f"{source}: missing field {name!r}")
    for name, ok in (("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False)):
        if d.get(name, ok) != ok:
            raise ValueError(f"{source}: {name}={d[name]!r} is not supported (LLaMA uses {ok!r})")
    for name in _NEEDED + ("num_key_value_heads", "head_dim", "max_position_embeddings"):
        v = d.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ValueError(f"{source}: {name}={v!r}, expected a positive whole number")
    known = {f.name for f in fields(LlamaConfig)} - {"rope_theta", "rope_scaling", "torch_dtype"}
    kw = {k: v for k, v in d.items() if k in known}
    rope = dict(d.get("rope_parameters") or {})
    scaling = dict(d.get("rope_scaling") or rope)
    if "type" in scaling and "rope_type" not in scaling:
        scaling["rope_type"] = scaling.pop("type")       # old spelling
    scaling.pop("rope_theta", None)
    kw["rope_theta"] = float(d.get("rope_theta", rope.get("rope_theta", 10000.0)))
    kw["rope_scaling"] = scaling if scaling.get("rope_type", "default") != "default" else None
    kw["torch_dtype"] = d.get("dtype") or d.get("torch_dtype")
    if isinstance(kw.get("eos_token_id"), list):
        kw["eos_token_id"] = kw["eos_token_id"][0]
    return LlamaConfig(**kw)


def config_to_hf(cfg: LlamaConfig) -> dict:
    """config.json for transformers 4 and 5 (both RoPE spellings, both dtype spellings)."""
    d = {k: v for k, v in asdict(cfg).items() if k not in ("rope_scaling", "torch_dtype")}
    dtype = cfg.torch_dtype or "float32"
    rope = {"rope_type": "default", **(cfg.rope_scaling or {}), "rope_theta": cfg.rope_theta}
    d.update(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
             attention_bias=False, mlp_bias=False, rope_scaling=cfg.rope_scaling,
             rope_parameters=rope, dtype=dtype, torch_dtype=dtype)
    return d


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
           "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def _as_dtype(dtype):
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def _load_weights(f: Path, device: str) -> dict[str, torch.Tensor]:
    try:
        if f.suffix == ".safetensors":
            return load_file(f, device=device)
        return torch.load(f, map_location=device, weights_only=True, mmap=True)
    except Exception as e:  # truncated or foreign files fail in the reader's words: name the file
        first = str(e).strip().splitlines()[0]
        raise ValueError(f"{f}: unreadable weights ({type(e).__name__}: {first})") from None


def _read_state(path: Path, device=None) -> dict[str, torch.Tensor]:
    """All tensors of a HF checkpoint folder, in whichever of the usual layouts it uses."""
    device = str(device or "cpu")
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint folder")
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / index_name
        if index.is_file():
            what = "a shard index with a 'weight_map'"
            weight_map = read_json(index, what, dict).get("weight_map")
            if not isinstance(weight_map, dict):
                raise ValueError(f"{index}: expected JSON with a 'weight_map' object")
            state = {}
            for shard in sorted(set(weight_map.values())):
                if not (path / shard).is_file():
                    raise FileNotFoundError(f"{index}: lists shard {shard}, which is missing")
                state.update(_load_weights(path / shard, device))
            return state
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return _load_weights(path / name, device)
    raise FileNotFoundError(f"{path}: no model.safetensors, sharded index or pytorch_model.bin")


# ----------------------------------------------------------------------------- a training run
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


def save_state(path: Path, model: torch.nn.Module, opt, scaler, step: int, consumed: int,
               loss: float, cfg, world: int, master: bool) -> None:
    """Everything --resume needs; only trainable weights (all of them unless --lora). Under FSDP
    the shards are gathered into full tensors first, so a state loads whatever the number of
    processes."""
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
        state = dict(model=model_sd, optimizer=opt_sd,
                     scaler=scaler.state_dict() if scaler else None, step=step,
                     micro_batches_consumed=consumed, loss=loss, rng=rngs,
                     config=dataclasses.asdict(cfg))
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
                         + ", ".join(f"--{k.replace('_', '-')} {old.get(k)} -> {new[k]}"
                                     for k in diff))
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
    kept = [r for r in rows if r.strip() and json.loads(r).get("step", 0) <= step]
    write_atomic(path, "".join(r + "\n" for r in kept))


def export(raw: torch.nn.Module, lora_cfg, tokenizer, out: Path, base: Path | None) -> None:
    """HF folder + the tokenizer (tokenizer.model, or tokenizer.json with its config): each file
    written into a temp folder first, then renamed into `out` (the temp folder is removed if
    anything fails, so a full disk does not stay full). A LoRA run (lora_cfg given) also writes
    adapter/ and exports the merged weights."""
    tmp = out / f".export.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if lora_cfg is not None:
            lora.save_adapter(raw, tmp / "adapter", lora_cfg, str(base))
            lora.unload_lora(raw)  # merged into plain nn.Linear weights: a standard HF folder
        save_model(raw, tmp)
        tokenizer.save(tmp)
        for f in tmp.iterdir():
            if f.is_dir():
                shutil.rmtree(out / f.name, ignore_errors=True)
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if tokenizer.path.name.startswith(f".{out.name}."):  # a pretraining run's, trained aside
        tokenizer.path.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- the run folder
def run_status(out: Path) -> str:
    """'finished', 'unfinished' (a resumable state exists) or 'empty'."""
    cfg_file = Path(out) / "train_config.json"
    if cfg_file.is_file():
        try:
            run = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{cfg_file}: unreadable ({e}); remove it or pass another "
                             "--out") from None
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


def check_same_run(out: Path, cfg) -> None:
    """A finished run about to be reused must have been made with these flags (all but those in
    RESUME_FREE); a base or model made with other settings is refused, naming each flag."""
    made = json.loads((Path(out) / "train_config.json").read_text(encoding="utf-8"))
    new = dataclasses.asdict(cfg)
    diff = [k for k in new if k not in RESUME_FREE and made.get(k) != new[k]]
    if diff:
        raise UsageError(f"{out}: a finished run made with other settings ("
                         + ", ".join(f"--{k.replace('_', '-')} {made.get(k)} -> {new[k]}"
                                     for k in diff[:4])
                         + "); remove it, pass --overwrite, or choose another --out")


def clear_run(out: Path) -> None:
    """--overwrite, once every input has been checked: remove what a previous run wrote."""
    for name in ("resume", "adapter"):
        shutil.rmtree(out / name, ignore_errors=True)
    for f in out.glob("*"):
        if f.is_file():
            f.unlink()


# ----------------------------------------------------------------------------- the model to train
# The base pretrained once on the default world, as the paper starts from a downloaded LLaMA
# (assets/base/README.md: the command that rebuilds it and its checksums).
SHIPPED_BASE = Path(__file__).resolve().parent / "assets" / "base"


def world_digest(data_dir) -> str:
    """sha256 over what a base is pretrained on: DATA/pretrain/*.txt and DATA/read/en.txt (its
    tokenizer is shipped with it), so a change elsewhere in the world keeps the base valid."""
    root, h = Path(data_dir), hashlib.sha256()
    for f in sorted(root.glob("pretrain/*.txt")) + sorted(root.glob("read/en.txt")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def shipped_base(data_dir) -> Path | None:
    """assets/base when data_dir holds the pretraining text it was trained on, else None."""
    want = SHIPPED_BASE / "PRETRAIN.sha256"
    if not (want.is_file() and (Path(data_dir) / "pretrain").is_dir()):
        return None
    return SHIPPED_BASE if world_digest(data_dir) == want.read_text().strip() else None


def config_to_train(base: Path | None, arch: str, tok) -> LlamaConfig:
    """The architecture: the base's config.json, else --arch (a model.PRESETS name or a config.json)
    with the tokenizer's vocabulary. A tokenizer with more pieces than the model has embeddings is
    refused here, not at a lookup."""
    source, path = ("--base", base / "config.json") if base is not None else ("--arch", arch)
    if base is None and arch in PRESETS:
        mc = dataclasses.replace(PRESETS[arch], vocab_size=tok.vocab_size)
    else:
        try:
            mc = read_config(path)
        except (ValueError, TypeError) as e:
            raise UsageError(f"{source} {path}: {e}") from None
        if base is None:
            mc = dataclasses.replace(mc, vocab_size=tok.vocab_size)
    tok.check_fits(mc.vocab_size)
    return mc


def model_to_train(mc: LlamaConfig, base: Path | None, dtype) -> Llama:
    """A new model (pretraining), or the base's weights in `dtype` (a bad folder: one line)."""
    if base is None:
        return Llama(mc)
    try:
        return load_model(base, dtype=dtype).train()
    except (ValueError, OSError) as e:
        raise UsageError(f"--base {base}: {e}") from None


def write_status(cfg, status: str, **info) -> None:
    """OUT/train_config.json: the resolved config, the run's status and what it ran on."""
    write_atomic(Path(cfg.out) / "train_config.json",
                 json.dumps({**dataclasses.asdict(cfg), "status": status, **info}, indent=2,
                            allow_nan=False))
