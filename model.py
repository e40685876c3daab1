"""LLaMA in one file: RMSNorm, RoPE, grouped-query attention, SwiGLU, KV-cache generation.

    python model.py                               # every preset's params and FLOPs per token
    python -m pytest -q tests/test_model.py       # parity with transformers' LlamaForCausalLM

    from model import Llama, PRESETS
    model = Llama(PRESETS["mini"])                # random init, std 0.02
    logits, loss = model(idx, targets)            # targets already shifted; IGNORE_INDEX ignored
    out = model.generate(idx, 64, eos_id=2, attention_mask=mask)   # left-padded prompts allowed

Top to bottom: config and named sizes, layers, `Transformer` (the whole architecture), KV cache,
sampling, `Llama` (plus generation). Parameter names and RoPE's half-rotation layout are Hugging
Face's, so checkpoint.py loads a HF folder with no rename table, strictly (`check_keys`, last).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100  # a target with this value does not count in the loss (prompt, padding)


@dataclass
class LlamaConfig:
    """The fields of HF's config.json that the architecture needs (checkpoint.read_config)."""
    vocab_size: int = 32000             # LLaMA-1/2 sentencepiece
    hidden_size: int = 4096             # model width C
    intermediate_size: int = 11008      # SwiGLU hidden width
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None   # None -> = num_attention_heads (plain multi-head)
    max_position_embeddings: int = 2048  # informational; RoPE itself has no length limit
    rms_norm_eps: float = 1e-6          # 1e-6 LLaMA-1, 1e-5 Llama-2: always read it
    rope_theta: float = 10000.0         # RoPE base; 5e5 for Llama-3
    rope_scaling: dict | None = None    # {"rope_type": "linear"|"llama3", "factor": ...}
    tie_word_embeddings: bool = False   # lm_head shares embed_tokens' weight
    bos_token_id: int = 1
    eos_token_id: int = 2
    head_dim: int | None = None         # None -> hidden_size // num_attention_heads
    torch_dtype: str | None = None      # the dtype config.json declares (informational)

    def __post_init__(self):
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads={self.num_attention_heads} is not a multiple "
                             f"of num_key_value_heads={self.num_key_value_heads}")


_LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
# real checkpoints: the values of their config.json that differ from LlamaConfig's (LLaMA-7B's)
REAL = {"llama-7b": {}, "llama-13b": dict(hidden_size=5120, intermediate_size=13824,
                                          num_hidden_layers=40, num_attention_heads=40),
        "llama2-7b": dict(max_position_embeddings=4096, rms_norm_eps=1e-5),
        "tinyllama-1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                               num_key_value_heads=4, rms_norm_eps=1e-5),
        "llama3.1-8b": dict(vocab_size=128256, intermediate_size=14336, num_key_value_heads=8,
                            max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=5e5,
                            rope_scaling=_LLAMA3_ROPE, bos_token_id=128000, eos_token_id=128001)}
# miniature sizes for the CPU study: (width, layers, heads, kv heads, SwiGLU width), vocab 4096
MINI = {"nano": (128, 2, 4, 2, 344),        # ~1.4M params; tests and smoke runs
        "micro": (192, 3, 4, 2, 512),       # ~2.8M
        "mini": (256, 4, 4, 2, 688),        # ~5.0M; the default miniature base
        "small": (384, 6, 6, 6, 1024)}      # ~13.8M; = bench.py's 14M config, "bench-14m"
PRESETS: dict[str, LlamaConfig] = {name: LlamaConfig(**kw) for name, kw in REAL.items()} | {
    name: LlamaConfig(vocab_size=4096, hidden_size=d, intermediate_size=ffn, num_hidden_layers=n,
                      num_attention_heads=h, num_key_value_heads=kv, max_position_embeddings=1024,
                      rms_norm_eps=1e-5) for name, (d, n, h, kv, ffn) in MINI.items()}
PRESETS["bench-14m"] = PRESETS["small"]


# ----------------------------------------------------------------------------- layers

class RMSNorm(nn.Module):
    """x / rms(x) * weight, computed in fp32 like HF (matters under bf16)."""
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * F.rms_norm(x.float(), (x.size(-1),), eps=self.eps).to(x.dtype)


def rope_inv_freq(cfg: LlamaConfig) -> torch.Tensor:
    """theta^(-2i/d) for i < d/2, with Llama-3 / linear frequency scaling when configured."""
    d, s = cfg.head_dim, cfg.rope_scaling
    i = torch.arange(0, d, 2, dtype=torch.int64, device="cpu").float()   # real even on meta
    inv_freq = 1.0 / (cfg.rope_theta ** (i / d))
    kind = (s or {}).get("rope_type", "default")
    if kind == "linear":
        inv_freq = inv_freq / s["factor"]
    elif kind == "llama3":      # long wavelengths slowed by `factor`, short kept, a ramp between
        factor, lo, hi = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
        old = s["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > old / lo, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / hi) & (wavelen <= old / lo)
        inv_freq = torch.where(medium, smoothed, scaled)
    elif kind != "default":
        raise ValueError(f"rope_scaling: rope_type {kind!r} not supported "
                         "(default, linear, llama3)")
    return inv_freq


def rope_cos_sin(inv_freq, pos, dtype):
    """pos (B|1, T) -> cos, sin (B|1, 1, T, hs) in HF's layout: the two halves share frequencies."""
    freqs = pos[..., None].float() * inv_freq                 # (B, T, hs/2), fp32 like HF
    emb = torch.cat((freqs, freqs), dim=-1)[:, None]          # (B, 1, T, hs)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x*cos + rotate_half(x)*sin on the (x1, x2) halves of each head (HF's layout, not Meta's)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer: int):
        super().__init__()
        self.layer, self.hs = layer, cfg.head_dim
        self.nh, self.nkv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.q_proj = nn.Linear(cfg.hidden_size, self.nh * self.hs, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.nkv * self.hs, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.nkv * self.hs, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hs, cfg.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask=None, cache=None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hs).transpose(1, 2)     # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)    # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)                           # (B, nkv, S, hs)
        if self.nkv != self.nh:
            # GQA: each group of nh/nkv query heads reads the same key/value head
            k = k.repeat_interleave(self.nh // self.nkv, dim=1)             # (B, nh, S, hs)
            v = v.repeat_interleave(self.nh // self.nkv, dim=1)
        # mask None: causal when T == S (training, prefill), everything when T == 1 (decoding)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           is_causal=mask is None and T > 1)   # (B, nh, T, hs)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.nh * self.hs))


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))    # SwiGLU


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask=None, cache=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


def _padding(attention_mask, T: int, device):
    """Per-row positions (B|1, T) and a bool mask (B, 1, T, T), None for right padding (real tokens
    never look ahead). Left padding: position = real tokens before it; pad keys hidden, except each
    from itself, so that no softmax row is empty."""
    arange = torch.arange(T, device=device)
    am = None if attention_mask is None else attention_mask.to(device=device, dtype=torch.bool)
    if am is None or bool((am[:, 1:] <= am[:, :-1]).all()):  # none, or rows of ones then zeros
        return arange[None], None
    pos = (am.long().cumsum(-1) - 1).clamp(min=0)
    causal = arange[:, None] >= arange[None, :]               # (T, T)
    mask = (causal & am[:, None, :]) | torch.eye(T, dtype=torch.bool, device=device)
    return pos, mask[:, None]


class Transformer(nn.Module):
    """Embedding, n blocks (RMSNorm, RoPE attention, RMSNorm, SwiGLU) + residuals, norm, LM head."""
    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = cfg = config
        self.model = nn.ModuleDict(dict(
            embed_tokens=nn.Embedding(cfg.vocab_size, cfg.hidden_size),
            layers=nn.ModuleList(Block(cfg, i) for i in range(cfg.num_hidden_layers)),
            norm=RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)))
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.inv_freq = rope_inv_freq(cfg)   # fp32, not a buffer: .to(bfloat16) cannot round it
        self.gradient_checkpointing = False      # recompute each block in backward to save memory
        if not self.lm_head.weight.is_meta:
            self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)    # HF initializer_range

    def _blocks(self, x, pos, mask, cache=None, collect=None):
        if self.inv_freq.device != x.device:
            self.inv_freq = self.inv_freq.to(x.device)
        cos, sin = rope_cos_sin(self.inv_freq, pos, x.dtype)
        for block in self.model.layers:
            if collect is not None:
                collect.append(x)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, cos, sin, mask, cache, use_reentrant=False)
            else:
                x = block(x, cos, sin, mask, cache)
        x = self.model.norm(x)
        if collect is not None:
            collect.append(x)
        return x

    def forward(self, idx, targets=None, attention_mask=None, reduction: str = "mean",
                only_targets: bool = False):
        """idx (B, T) -> logits (B, T, V) fp32 and the loss against targets (B, T), already shifted,
        IGNORE_INDEX ignored; reduction "sum" for train.py; only_targets: head on targets (N, V)."""
        pos, mask = _padding(attention_mask, idx.size(1), idx.device)
        x = self._blocks(self.model.embed_tokens(idx), pos, mask)
        if only_targets and targets is not None:
            keep = targets != IGNORE_INDEX
            x, targets = x[keep], targets[keep]                                 # (N, C), (N,)
        logits = self.lm_head(x).float()
        loss = None if targets is None else F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX,
            reduction=reduction)
        return logits, loss

    @torch.no_grad()
    def hidden_states(self, idx, attention_mask=None) -> list[torch.Tensor]:
        """n_layers + 1 tensors (B, T, C) as HF's output_hidden_states (the last after the norm)."""
        pos, mask = _padding(attention_mask, idx.size(1), idx.device)
        out: list[torch.Tensor] = []
        self._blocks(self.model.embed_tokens(idx), pos, mask, collect=out)
        return out

    def num_params(self, non_embedding: bool = False) -> int:
        """Unique parameters (a tied head counts once); non_embedding drops the input embedding."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.model.embed_tokens.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int, head_fraction: float = 1.0) -> float:
        """Training FLOPs per token: 6 x matmul weights (head included) + 12 x layers x width x T
        (Kaplan et al. 2020; PaLM app. B); head_fraction: share of tokens the head runs on."""
        cfg, head = self.config, self.lm_head.weight.numel()
        matmul = self.num_params(non_embedding=True) + (head if cfg.tie_word_embeddings else 0)
        return 6 * (matmul - head * (1 - head_fraction)) + \
            12 * cfg.num_hidden_layers * cfg.num_attention_heads * cfg.head_dim * seq_len


# ----------------------------------------------------------------------------- generation
class KVCache:
    """Keys/values of every layer for a batch, preallocated to the full generation length."""
    def __init__(self, cfg: LlamaConfig, batch: int, max_len: int, dtype, device):
        shape = (cfg.num_hidden_layers, batch, cfg.num_key_value_heads, max_len, cfg.head_dim)
        self.k, self.v = (torch.zeros(shape, dtype=dtype, device=device) for _ in range(2))
        self.pos = 0            # number of cached positions
        self.slot = None        # static mode: LongTensor (1,), where the next token's k/v go

    def update(self, layer: int, k, v):
        """Append k, v (B, nkv, T, hs); return the cached (B, nkv, pos+T, hs). Static mode: write at
        self.slot, return the whole buffer (fixed shapes and addresses, for a CUDA graph)."""
        if self.slot is not None:
            self.k[layer].index_copy_(2, self.slot, k)
            self.v[layer].index_copy_(2, self.slot, v)
            return self.k[layer], self.v[layer]
        end = self.pos + k.size(2)
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


def sample(logits, temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None):
    """logits (B, V) -> token ids (B,): argmax at temperature 0, else top-k / nucleus sampling."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = logits.sort(-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p        # keep the smallest set with mass >= top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(logits.softmax(-1), 1)[:, 0]


class Llama(Transformer):
    """The model every script uses: the Transformer plus generation with a KV cache."""
    def generate(self, idx, max_new_tokens: int, **kw):
        """idx and stream()'s tokens: (B, T + n_new), rows padded with eos_id after they end."""
        return torch.cat([idx, *(t[:, None] for t in self.stream(idx, max_new_tokens, **kw))], 1)

    @torch.no_grad()  # torch keeps it off across the generator's steps too
    def stream(self, idx, max_new_tokens: int, temperature: float = 0.0,
               top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
               attention_mask=None, decode: str = "auto", capture=None):
        """Continue prompts idx (B, T), left-padded where attention_mask has zeros: yield each
        step's new tokens (B,) until max_new_tokens or every row has emitted eos_id. decode:
        "dynamic" (= "auto"; the cache grows) or "static" (whole cache under a mask; capture(body,
        device) -> a replay of body). generate.py adds "graph" (docs/model.md)."""
        decode = "dynamic" if decode == "auto" else decode
        if decode not in ("dynamic", "static"):
            raise ValueError(f"generate: decode={decode!r}; expected auto, dynamic or static "
                             "(graph needs CUDA, in generate.py: generate.generate(model, ...))")
        assert capture is None or decode == "static", "capture replays the static decoder"
        B, T = idx.shape
        if attention_mask is not None and not bool(attention_mask[:, -1].all()):
            raise ValueError("generate: attention_mask ends in 0 for some row; "
                             "pad prompts on the left")
        pos, mask = _padding(attention_mask, T, idx.device)
        keys = torch.zeros(B, T + max_new_tokens, dtype=torch.bool, device=idx.device)  # in use
        keys[:, :T] = True if attention_mask is None else attention_mask.to(keys)
        cache = KVCache(self.config, B, T + max_new_tokens, self.lm_head.weight.dtype, idx.device)
        h = self._blocks(self.model.embed_tokens(idx), pos, mask, cache)    # prefill the prompt
        cache.pos = T
        logits = self.lm_head(h[:, -1]).float()
        step, finished = None, torch.zeros(B, dtype=torch.bool, device=idx.device)
        for i in range(max_new_tokens):
            nxt = sample(logits, temperature, top_k, top_p)                   # (B,)
            if eos_id is not None:
                nxt = torch.where(finished, torch.full_like(nxt, eos_id), nxt)
                finished |= nxt == eos_id
            yield nxt
            if i == max_new_tokens - 1 or (eos_id is not None and bool(finished.all())):
                return
            pos = pos[:, -1:] + 1
            if step is None:
                make = self._static_step if decode == "static" else self._dynamic_step
                step = make(cache, keys, mask is not None, capture)
            logits = step(nxt[:, None], pos)

    # A step: (token, position) (B, 1) -> logits (B, V); its mask (B, 1, 1, S) has no causal part
    def _dynamic_step(self, cache: KVCache, keys, padded: bool, capture=None):
        def step(tok, pos):
            keys[:, cache.pos] = True
            mask = keys[:, None, None, :cache.pos + 1] if padded else None
            h = self._blocks(self.model.embed_tokens(tok), pos, mask, cache)
            cache.pos += 1
            return self.lm_head(h[:, -1]).float()
        return step

    def _static_step(self, cache: KVCache, keys, padded: bool, capture=None):
        """Every step reads and writes the same buffers: the whole cache under the key mask."""
        cache.slot = torch.full((1,), cache.pos, dtype=torch.long, device=keys.device)
        tok_in = torch.zeros(keys.size(0), 1, dtype=torch.long, device=keys.device)
        pos_in = torch.zeros_like(tok_in)
        def body():
            h = self._blocks(self.model.embed_tokens(tok_in), pos_in, keys[:, None, None, :], cache)
            return self.lm_head(h[:, -1]).float()
        keys[:, cache.pos] = True   # a capture runs body first; the first step redoes this slot
        run = body if capture is None else capture(body, keys.device)
        def step(tok, pos):
            tok_in.copy_(tok)
            pos_in.copy_(pos)
            cache.slot.fill_(cache.pos)
            keys[:, cache.pos] = True
            cache.pos += 1
            return run()
        return step


def check_keys(state: dict, expected: dict, what: str, other: str = "expected") -> None:
    """A strict load (checkpoint.py, lora.py): one ValueError naming the missing keys, unexpected
    keys or wrong shapes (up to five, of the first kind found) of `state` against {name: shape}."""
    wrong = [f"{k} {tuple(state[k].shape)} ({other} {tuple(s)})"
             for k, s in expected.items() if k in state and tuple(state[k].shape) != tuple(s)]
    for kind, items in (("missing keys", sorted(set(expected) - set(state))),
                        ("unexpected keys", sorted(set(state) - set(expected))),
                        ("shape mismatch", wrong)):
        if items:
            more = f" ... ({len(items)} in all)" if len(items) > 5 else ""
            raise ValueError(f"{what}: {kind}: {', '.join(items[:5])}{more}")


if __name__ == "__main__":
    for name, cfg in PRESETS.items():
        with torch.device("meta"):
            m = Llama(cfg)
        print(f"{name:15s} {m.num_params() / 1e6:9.1f}M params  "
              f"{m.flops_per_token(2048) / 1e9:8.2f} GFLOP/token at T=2048")
