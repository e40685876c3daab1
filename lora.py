"""LoRA (Hu et al. 2021) for model.Llama, with adapters saved and loaded in peft's layout.

A frozen linear layer W gets a trainable low-rank detour; the full update is never formed:

        x ──► W (frozen, out×in) ──────────────┐
        └──► dropout ─► A (r×in) ─► B (out×r) ─► × alpha/r ─► (+) ─► y
                                               A random, B zero: y = Wx at step 0

    from lora import LoraConfig, ALL_LINEAR, inject_lora, freeze_base, trainable_report
    inject_lora(model, LoraConfig(r=8, alpha=16, target_modules=("q_proj", "v_proj")))
    freeze_base(model); print(trainable_report(model))
    ... train ...
    save_adapter(model, "runs/adapter", cfg, base_name="runs/base")     # peft layout
    load_adapter(checkpoint.load_model("runs/base"), "runs/adapter")    # injects if needed
    merge_lora(model) / unmerge_lora(model)                             # only when asked
    unload_lora(model)      # merge, back to plain nn.Linear, for checkpoint.save_model

The adapter folder (adapter_config.json + adapter_model.safetensors with keys
`base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r]) loads with
`peft.PeftModel.from_pretrained(transformers_llama, folder)`, because our module paths equal HF's.
LoRA weights stay fp32 whatever the base dtype. Tests: python -m pytest -q tests/test_lora.py
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

from cli import UsageError
from cli import atomic_path, read_json, read_safetensors, write_atomic
from model import check_keys

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraConfig:
    r: int = 8                         # rank of the update B @ A
    alpha: float = 16                  # scale = alpha / r (alpaca-lora: 8 / 16)
    dropout: float = 0.05              # on the LoRA path's input only
    # module names inside the blocks; ALL_LINEAR for all
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")

    @property
    def scale(self) -> float:
        return self.alpha / self.r


def config_of(flags) -> LoraConfig:
    """The LoraConfig of train.py's flags: --lora-r, --lora-alpha, --lora-dropout and
    --lora-targets ('all': ALL_LINEAR, else a comma list of module names)."""
    targets = ALL_LINEAR if flags.lora_targets == "all" else flags.lora_targets.split(",")
    return LoraConfig(flags.lora_r, flags.lora_alpha, flags.lora_dropout, tuple(targets))


class LoRALinear(nn.Linear):
    """An nn.Linear whose `weight` stays where it was (same state_dict key as before) plus
    lora_A, lora_B. forward = W x + scale * B(A(dropout(x))), or W x alone once merged."""

    def __init__(self, base: nn.Linear, cfg: LoraConfig):
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        dev = base.weight.device
        fp32 = {"bias": False, "device": dev, "dtype": torch.float32}
        self.lora_A = nn.Linear(self.in_features, cfg.r, **fp32)
        self.lora_B = nn.Linear(cfg.r, self.out_features, **fp32)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))   # as peft / loralib
        nn.init.zeros_(self.lora_B.weight)
        self.lora_dropout = nn.Dropout(cfg.dropout)
        self.scale = cfg.scale
        self.merged = False

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if self.merged:
            return y
        h = self.lora_A(self.lora_dropout(x.to(self.lora_A.weight.dtype)))   # (..., r)
        return y + (self.lora_B(h) * self.scale).to(y.dtype)

    def delta(self) -> torch.Tensor:
        """scale * B @ A (out, in) in fp32: formed only for merging."""
        return self.scale * (self.lora_B.weight @ self.lora_A.weight)

    def extra_repr(self):
        return (f"{self.in_features}, {self.out_features}, r={self.lora_A.out_features}, "
                f"scale={self.scale}, merged={self.merged}")


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def inject_lora(model: nn.Module, cfg: LoraConfig) -> nn.Module:
    """Replace every nn.Linear inside the transformer blocks whose name is in cfg.target_modules
    (never the output head) by a LoRALinear sharing its weight. Returns the model."""
    targets = set(cfg.target_modules)
    if cfg.r <= 0:
        raise ValueError(f"LoraConfig.r={cfg.r}: rank must be a positive integer")
    if not targets <= set(ALL_LINEAR):
        raise ValueError(f"LoraConfig.target_modules: {sorted(targets - set(ALL_LINEAR))} "
                         f"not among {', '.join(ALL_LINEAR)}")
    if lora_modules(model):
        raise ValueError("inject_lora: the model already has LoRA layers")
    found = []
    for name, module in list(model.named_modules()):
        parent, _, leaf = name.rpartition(".")
        if leaf in targets and ".layers." in f".{name}" and type(module) is nn.Linear:
            setattr(model.get_submodule(parent), leaf, LoRALinear(module, cfg))
            found.append(leaf)
    missing = targets - set(found)
    if missing:
        raise ValueError(f"LoraConfig.target_modules: {sorted(missing)} matched no linear "
                         "layer of the model")
    return model


def freeze_base(model: nn.Module) -> int:
    """Only LoRA tensors train. Returns the number of trainable parameters."""
    n = 0
    for name, p in model.named_parameters():
        p.requires_grad_(".lora_" in name)
        n += p.numel() if p.requires_grad else 0
    if n == 0:
        raise ValueError("freeze_base: the model has no LoRA parameters (call inject_lora first)")
    return n


def trainable_report(model: nn.Module) -> str:
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    mods = lora_modules(model)
    kinds = sorted({n.rsplit(".", 1)[-1] for n in mods})
    return (f"trainable params: {train:,} / {total:,} ({100 * train / max(total, 1):.3f}%); "
            f"LoRA on {len(mods)} layers ({', '.join(kinds) or 'none'})")


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """W += scale * B @ A in every LoRA layer (in place; exact in fp32, rounded in bf16/fp16)."""
    for m in lora_modules(model).values():
        if not m.merged:
            m.weight += m.delta().to(m.weight.dtype)
            m.merged = True
    return model


@torch.no_grad()
def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo merge_lora: W -= scale * B @ A."""
    for m in lora_modules(model).values():
        if m.merged:
            m.weight -= m.delta().to(m.weight.dtype)
            m.merged = False
    return model


def unload_lora(model: nn.Module, merge: bool = True) -> nn.Module:
    """Replace LoRA layers by plain nn.Linear (merged first unless merge=False), so that
    checkpoint.save_model writes a standard HF checkpoint."""
    if merge:
        merge_lora(model)
    for name, m in lora_modules(model).items():
        parent, _, leaf = name.rpartition(".")
        plain = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, device="meta")
        plain.weight, plain.bias = m.weight, m.bias
        if not merge and m.merged:
            unmerge_lora(m)
        setattr(model.get_submodule(parent), leaf, plain)
    return model


# ----------------------------------------------------------------------------- peft layout

PREFIX = "base_model.model."


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """peft's keys: base_model.model.<module path>.lora_{A,B}.weight."""
    return {PREFIX + k: v.detach().float().contiguous().cpu()
            for k, v in model.state_dict().items() if ".lora_" in k}


def save_adapter(model: nn.Module, folder, cfg: LoraConfig, base_name: str = "") -> Path:
    """adapter_config.json + adapter_model.safetensors, each written to a temp name and renamed."""
    state = adapter_state(model)
    if not state:
        raise ValueError("save_adapter: the model has no LoRA layers")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": cfg.r,
              "lora_alpha": cfg.alpha, "lora_dropout": cfg.dropout,
              "target_modules": sorted(cfg.target_modules), "bias": "none",
              "base_model_name_or_path": str(base_name), "fan_in_fan_out": False,
              "inference_mode": True, "init_lora_weights": True, "modules_to_save": None,
              "use_rslora": False, "use_dora": False}
    with atomic_path(folder / "adapter_model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    write_atomic(folder / "adapter_config.json", json.dumps(config, indent=2) + "\n")
    return folder


def read_adapter_config(folder) -> LoraConfig:
    """adapter_config.json as a LoraConfig; a broken or unsupported one is one UsageError."""
    path = Path(folder) / "adapter_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no adapter config (expected a peft LoRA folder)")
    d = read_json(path, "a peft adapter config (JSON object)", dict)
    for key, ok in (("peft_type", "LORA"), ("bias", "none"), ("use_rslora", False),
                    ("use_dora", False)):
        if d.get(key, ok) != ok:
            raise UsageError(f"{path}: {key}={d[key]!r} is not supported (expected {ok!r})")
    if d.get("layers_to_transform") or d.get("rank_pattern") or d.get("alpha_pattern"):
        raise UsageError(f"{path}: per-layer LoRA settings (layers_to_transform/rank_pattern/"
                         "alpha_pattern) are not supported")
    targets = d.get("target_modules")
    if isinstance(targets, str):
        targets = ALL_LINEAR if targets == "all-linear" else [targets]
    if not isinstance(targets, (list, tuple)) or not targets \
            or not all(isinstance(t, str) for t in targets):
        raise UsageError(f"{path}: target_modules = {targets!r}: expected a list of module names")
    number = (int, float)
    for key, kind, ok in (("r", int, lambda v: v >= 1), ("lora_alpha", number, math.isfinite),
                          ("lora_dropout", number, lambda v: 0 <= v < 1)):
        v = d.get(key, 0.0 if key == "lora_dropout" else None)
        if isinstance(v, bool) or not isinstance(v, kind) or not ok(v):
            raise UsageError(f"{path}: {key} = {v!r}: expected "
                             + {"r": "a positive whole number", "lora_alpha": "a finite number",
                                "lora_dropout": "a number in [0, 1)"}[key])
    return LoraConfig(r=d["r"], alpha=d["lora_alpha"], dropout=d.get("lora_dropout", 0.0),
                      target_modules=tuple(sorted(targets)))


def load_adapter(model: nn.Module, folder) -> LoraConfig:
    """Put the adapter in `folder` onto `model` (injecting LoRA layers if it has none); strict:
    missing/unexpected keys or wrong shapes raise one ValueError naming them."""
    folder = Path(folder)
    cfg = read_adapter_config(folder)
    if not lora_modules(model):
        inject_lora(model, cfg)
    if any(m.merged for m in lora_modules(model).values()):
        raise ValueError("load_adapter: the model's LoRA layers are merged; unmerge_lora first")
    st = folder / "adapter_model.safetensors"
    loaded = read_safetensors(st, "a peft adapter_model.safetensors")
    # tolerate adapter-named keys (peft's ...lora_A.default.weight)
    state = {k.replace(".default.", "."): v for k, v in loaded.items()}
    expected = {PREFIX + k: p for k, p in model.state_dict().items() if ".lora_" in k}
    check_keys(state, {k: p.shape for k, p in expected.items()},
               f"{st}: adapter does not fit the model", "model has")
    with torch.no_grad():
        for k, p in expected.items():
            p.copy_(state[k])
    for m in lora_modules(model).values():
        m.scale = cfg.scale
        m.lora_dropout.p = cfg.dropout
    return cfg
