"""Convert: a llama.cpp GGUF file into a Hugging Face LlamaForCausalLM folder, in Python + numpy.

A lesson in how quantized weights are stored. A GGUF (version 3, little-endian) is one file:

    offset 0   b"GGUF"                          magic
           4   version          u32             3 (v2 is the same layout; v1 had u32 counts)
           8   tensor_count     u64
          16   kv_count         u64
          24   kv_count metadata entries        key (string), value type (u32), value
               tensor_count tensor infos        name (string), n_dims (u32), dims (u64 each,
                                                the fastest-varying first), ggml type (u32),
                                                offset (u64)
               zero padding up to a multiple of `general.alignment` (default 32)
               data section                     each tensor's bytes at data start + its offset
                                                (each offset itself a multiple of the alignment)

    string = u64 byte length + UTF-8 bytes;  array = element type (u32) + count (u64) + elements

Metadata carries the architecture (`llama.block_count`, `llama.rope.freq_base`, ...) and the whole
tokenizer (`tokenizer.ggml.tokens`, `.merges`, `.token_type`, special ids,
`tokenizer.chat_template`). Dims are listed fastest first, so a weight of dims (in, out) is the
numpy/torch matrix (out, in), and quantized types cut each row into blocks of 32 values (see
dequantize). Written to OUT (config.json, model.safetensors in float32, tokenizer.json,
tokenizer_config.json, generation_config.json), which our model.Llama, tokenizer.Tokenizer and
transformers all load.

    python -m study.download --model smollm2-135m-instruct --out runs/smollm2 --gguf FILE.gguf
    python -m study.convert --gguf FILE.gguf         # print header, metadata, tensors
    from study.convert import convert_gguf;  convert_gguf("FILE.gguf", "runs/smollm2")

Anything this file cannot convert faithfully (another architecture, GGUF version, tensor type or
pre-tokenizer; a truncated or non-GGUF file) raises GGUFError (a ValueError) with one line naming
the file and what was expected. Tests: python -m pytest -q tests/test_convert.py
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cli import Parser, UsageError, add_config_flags, guard, opt


PROG = "python -m study.convert"


class GGUFError(ValueError):
    """A file this converter cannot read or convert faithfully (one line, naming the file)."""


# --------------------------------------------------------------------------------- reading a GGUF
STRING, ARRAY = 8, 9       # metadata value types; the others are little-endian numbers:
MAX_NESTING = 4           # arrays of arrays: none in real files; a crafted file nests thousands
SCALARS = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "<?", 10: "<u8",
           11: "<i8", 12: "<f8"}


class Cursor:
    """Reads GGUF values from a byte buffer, refusing to run past its end (a truncated file)."""

    def __init__(self, path: Path, buf: np.ndarray):
        self.path, self.buf, self.pos = path, buf, 0

    def take(self, n: int) -> np.ndarray:
        if self.pos + n > len(self.buf):
            raise GGUFError(f"{self.path}: truncated: needs {n} bytes at offset {self.pos}, "
                            f"file has {len(self.buf)}")
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def number(self, fmt: str):
        dt = np.dtype(fmt)
        return self.take(dt.itemsize).view(dt)[0].item()

    def count(self, what: str) -> int:
        """A u64 count of things that take at least one byte each: more than the bytes left is a
        crafted or truncated file, refused before a loop or an allocation of that size."""
        n, left = self.number("<u8"), len(self.buf) - self.pos
        if n > left:
            raise GGUFError(f"{self.path}: truncated: needs {n} bytes or more for the {what}s "
                            f"counted at offset {self.pos - 8}, {left} bytes left")
        return n

    def string(self) -> str:
        at = self.pos
        try:
            return bytes(self.take(self.count("string byte"))).decode("utf-8")
        except UnicodeDecodeError as e:
            raise GGUFError(f"{self.path}: the string at offset {at} is not UTF-8 "
                            f"(byte {e.start}); "
                            "expected UTF-8 keys and strings") from None

    def value(self, vtype: int, depth: int = 0):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            if depth >= MAX_NESTING:  # llama.cpp itself reads no array of arrays
                raise GGUFError(f"{self.path}: arrays nested more than {MAX_NESTING} deep at "
                                f"offset {self.pos}; expected flat metadata arrays")
            etype, n = self.number("<u4"), self.count("array element")
            if etype in SCALARS:  # one numpy view instead of n reads (49152 token types)
                dt = np.dtype(SCALARS[etype])
                return self.take(n * dt.itemsize).view(dt).tolist()
            return [self.value(etype, depth + 1) for _ in range(n)]
        if vtype in SCALARS:
            return self.number(SCALARS[vtype])
        raise GGUFError(f"{self.path}: metadata value type {vtype} at offset {self.pos}: "
                        "expected 0-12")


def read_gguf(path) -> tuple[dict, dict[str, tuple[int, tuple, np.ndarray]]]:
    """(metadata, {tensor name: (ggml type, dims, raw bytes)}); the bytes are a view of a memory
    map."""
    path = Path(path)
    if not path.is_file():
        raise GGUFError(f"{path}: no such file (expected a .gguf model)")
    if path.stat().st_size < 24:
        raise GGUFError(f"{path}: {path.stat().st_size} bytes, too short for a GGUF header "
                        "(expected a .gguf model)")
    c = Cursor(path, np.memmap(path, dtype=np.uint8, mode="r"))
    if bytes(c.take(4)) != b"GGUF":
        raise GGUFError(f"{path}: not a GGUF file (starts with {bytes(c.buf[:4])!r}, "
                        "expected b'GGUF')")
    version = c.number("<u4")
    if version == 3 << 24:
        raise GGUFError(f"{path}: a big-endian GGUF; expected a little-endian one")
    if version not in (2, 3):
        raise GGUFError(f"{path}: GGUF version {version}; expected 3 (or 2)")
    n_tensors, n_kv = c.count("tensor"), c.count("metadata entry")
    meta = {}
    for _ in range(n_kv):
        key = c.string()
        meta[key] = c.value(c.number("<u4"))
    infos = []
    for _ in range(n_tensors):
        name, n_dims = c.string(), c.number("<u4")
        if not 1 <= n_dims <= 4:  # GGML_MAX_DIMS
            raise GGUFError(f"{path}: tensor {name} has {n_dims} dimensions; expected 1 to 4")
        dims = tuple(c.number("<u8") for _ in range(n_dims))
        infos.append((name, dims, c.number("<u4"), c.number("<u8")))
    align = meta.get("general.alignment", 32)
    if isinstance(align, bool) or not isinstance(align, int) or not 1 <= align <= 1 << 20:
        raise GGUFError(f"{path}: general.alignment = {align!r}; expected a positive whole number")
    start = -(-c.pos // align) * align   # the data section begins at the next multiple
    tensors = {}
    for name, dims, ggml_type, offset in infos:
        if ggml_type not in GGML_TYPES:
            raise GGUFError(f"{path}: tensor {name} has type "
                            f"{TYPE_NAMES.get(ggml_type, ggml_type)}; "
                            f"expected one of {', '.join(t[0] for t in GGML_TYPES.values())}")
        _, block, block_bytes = GGML_TYPES[ggml_type]
        n = math.prod(dims)  # Python ints: crafted dims cannot overflow into a small size
        if n % block:
            raise GGUFError(f"{path}: tensor {name} has {n} values, not a whole number of "
                            f"{block}-value blocks")
        begin, end = start + offset, start + offset + n // block * block_bytes
        if end > len(c.buf):
            raise GGUFError(f"{path}: truncated: tensor {name} ends at byte {end}, "
                            f"the file has {len(c.buf)}")
        tensors[name] = (ggml_type, dims, c.buf[begin:end])
    return meta, tensors


# ------------------------------------------------------------------------------- dequantization
# ggml type id -> (name, values per block, bytes per block)
GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
              8: ("Q8_0", 32, 34)}
# for error messages: common types this file does not read
TYPE_NAMES = {6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K",
              14: "Q6_K", 15: "Q8_K", 30: "BF16"}


def dequantize(raw: np.ndarray, ggml_type: int) -> np.ndarray:
    """Raw tensor bytes -> a flat float32 array.

    F32 and F16 are plain little-endian floats. The others store blocks of 32 values with one
    float16 scale d per block (so a 4-bit type costs 4.5 or 5 bits per value):

        Q8_0  d (f16) | 32 x int8 q                 x = d * q
        Q4_0  d (f16) | 16 bytes of 4-bit q          x = d * (q - 8)        q in 0..15, symmetric
        Q4_1  d (f16) | m (f16) | 16 bytes of q      x = d * q + m          q in 0..15, min m

    In the 4-bit types byte j holds value j in its low nibble and value j + 16 in its high nibble.
    """
    name, _, block_bytes = GGML_TYPES[ggml_type]
    if name == "F32":
        return raw.view("<f4").astype(np.float32)
    if name == "F16":
        return raw.view("<f2").astype(np.float32)
    blocks = raw.reshape(-1, block_bytes)                           # (n_blocks, bytes per block)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)        # (n_blocks, 1) the scale
    if name == "Q8_0":
        return (d * blocks[:, 2:].view(np.int8).astype(np.float32)).reshape(-1)
    qs = blocks[:, -16:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)   # (n_blocks, 32)
    if name == "Q4_0":
        return (d * (q - 8)).reshape(-1)
    m = blocks[:, 2:4].copy().view("<f2").astype(np.float32)
    return (d * q + m).reshape(-1)                                 # Q4_1


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row permutation.

    RoPE rotates pairs of coordinates within each head. Meta's LLaMA and llama.cpp pair neighbours
    (0,1), (2,3), ...; Hugging Face pairs the halves (0, d/2), (1, d/2+1), ... . llama.cpp's
    converter therefore reorders each head's rows of W_q and W_k from HF's [first halves | second
    halves] to interleaved [x0, y0, x1, y1, ...]; reading them back as (head, pair, 2) and swapping
    the last two axes restores the halves. W_k has n_kv_heads heads (GQA), W_v needs nothing.
    """
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


# ----------------------------------------------------------------------------- model and config
LAYER_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
               "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
               "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
               "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight",
             "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}


def hf_name(path: Path, name: str) -> str:
    if name in TOP_NAMES:
        return TOP_NAMES[name]
    parts = name.split(".")                                        # blk.{i}.{gguf name}.weight
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in LAYER_NAMES and parts[3] == "weight":
        return f"model.layers.{parts[1]}.{LAYER_NAMES[parts[2]]}.weight"
    raise GGUFError(f"{path}: tensor {name} has no place in a LLaMA checkpoint "
                    "(rope_freqs: Llama-3.1 RoPE scaling is not supported)")


def llama_config(path: Path, meta: dict, tensors: dict):
    """model.LlamaConfig from the llama.* metadata; tied embeddings when there is no
    output.weight."""
    # imported here: `python -m study.convert` and download.py start without torch
    from model import LlamaConfig
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise GGUFError(f"{path}: general.architecture = {arch!r}; expected 'llama'")
    if "token_embd.weight" not in tensors:
        raise GGUFError(f"{path}: no token_embd.weight tensor; expected a LLaMA model")
    if meta.get("llama.rope.scaling.type", "none") != "none":
        raise GGUFError(f"{path}: llama.rope.scaling.type = "
                        f"{meta['llama.rope.scaling.type']!r}; expected none")

    def get(key, default=None, kind=int):
        if f"llama.{key}" not in meta and default is None:
            raise GGUFError(f"{path}: metadata llama.{key} missing")
        v = meta.get(f"llama.{key}", default)
        if isinstance(v, bool) or not isinstance(v, kind) or not 0 < v < math.inf:
            raise GGUFError(f"{path}: metadata llama.{key} = {str(v)[:40]}; expected a positive "
                            + ("whole number" if kind is int else "number"))
        return v
    heads, dim = get("attention.head_count"), get("embedding_length")
    embd = tensors["token_embd.weight"][1]
    return LlamaConfig(
        vocab_size=get("vocab_size", embd[-1]), hidden_size=dim,
        intermediate_size=get("feed_forward_length"), num_hidden_layers=get("block_count"),
        num_attention_heads=heads, num_key_value_heads=get("attention.head_count_kv", heads),
        head_dim=get("rope.dimension_count", dim // heads),
        max_position_embeddings=get("context_length"),
        # stored as f32: 1e-5, not 9.99e-6
        rms_norm_eps=float(str(np.float32(get("attention.layer_norm_rms_epsilon",
                                                  kind=(int, float))))),
        rope_theta=float(get("rope.freq_base", 10000.0, kind=(int, float))),
        tie_word_embeddings="output.weight" not in tensors,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id", 1),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id", 2),
        torch_dtype="float32")


def hf_state(path: Path, tensors: dict, n_head: int, n_kv_head: int) -> dict[str, np.ndarray]:
    """{HF name: float32 matrix}: dequantized, reshaped to (out, in), Q and K un-permuted."""
    state = {}
    for name, (ggml_type, dims, raw) in tensors.items():
        w = dequantize(raw, ggml_type).reshape(dims[::-1])          # dims are fastest-first
        if ".attn_q." in name or ".attn_k." in name:
            w = unpermute(w, n_head if ".attn_q." in name else n_kv_head)
        state[hf_name(path, name)] = np.ascontiguousarray(w)
    return state


# ------------------------------------------------------------------------------------ tokenizer
# How each `tokenizer.ggml.pre` splits text before BPE, as llama.cpp's llama-vocab.cpp does, in
# tokenizers' JSON. ByteLevel's regex is GPT-2's; "smollm" first isolates every digit (\p{N}),
# which transformers 5's own GGUF tokenizer skips (so it differs where whitespace precedes a
# digit: " ١٩", "  30").
BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
              "use_regex": True}
DIGITS = {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Isolated", "invert": False}
PRE_TOKENIZERS = {"default": [BYTE_LEVEL], "gpt2": [BYTE_LEVEL], "smollm": [DIGITS, BYTE_LEVEL]}
CONTROL, USER_DEFINED = 3, 4  # tokenizer.ggml.token_type (1 normal, 2 unknown, 5 unused, 6 byte)


def tokenizer_files(path: Path, meta: dict) -> tuple[dict, dict]:
    """(tokenizer.json, tokenizer_config.json) for a byte-level BPE vocabulary (GPT-2 style).

    The tokens are already spelled in GPT-2's byte alphabet (a space is 'Ġ'); merges are "a b" in
    priority order. Control tokens (<|im_start|>, ...) become special added tokens, matched whole.
    """
    model, pre = meta.get("tokenizer.ggml.model"), meta.get("tokenizer.ggml.pre", "default")
    if model != "gpt2":
        raise GGUFError(f"{path}: tokenizer.ggml.model = {model!r}; "
                        "expected 'gpt2' (byte-level BPE)")
    if pre not in PRE_TOKENIZERS:
        raise GGUFError(f"{path}: tokenizer.ggml.pre = {pre!r}; "
                        f"expected one of {', '.join(PRE_TOKENIZERS)}")
    tokens, types = meta.get("tokenizer.ggml.tokens"), meta.get("tokenizer.ggml.token_type", [])
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise GGUFError(f"{path}: tokenizer.ggml.tokens: expected a list of strings")
    for key in ("bos", "eos", "unknown", "padding"):
        i = meta.get(f"tokenizer.ggml.{key}_token_id")
        if i is not None and (isinstance(i, bool) or not isinstance(i, int)
                              or not 0 <= i < len(tokens)):
            raise GGUFError(f"{path}: tokenizer.ggml.{key}_token_id = {i!r}; expected a token "
                            f"id below {len(tokens)}")
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": ty == CONTROL}
             for i, (t, ty) in enumerate(zip(tokens, types)) if ty in (CONTROL, USER_DEFINED)]
    special = {name: tokens[meta[f"tokenizer.ggml.{key}_token_id"]] for name, key in
               (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"),
                ("pad_token", "padding"))
               if f"tokenizer.ggml.{key}_token_id" in meta}
    add_bos = bool(meta.get("tokenizer.ggml.add_bos_token", False))
    post = None
    if add_bos:  # the BOS that encode(add_special_tokens=True) puts first
        bos = {"SpecialToken": {"id": special["bos_token"], "type_id": 0}}
        seq_a = {"Sequence": {"id": "A", "type_id": 0}}
        seq_b = {"Sequence": {"id": "B", "type_id": 1}}
        post = {"type": "TemplateProcessing", "single": [bos, seq_a], "pair": [bos, seq_a, seq_b],
                "special_tokens": {special["bos_token"]: {
                    "id": special["bos_token"], "ids": [meta["tokenizer.ggml.bos_token_id"]],
                    "tokens": [special["bos_token"]]}}}
    tok_json = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                "normalizer": None,
                "pre_tokenizer": {"type": "Sequence", "pretokenizers": PRE_TOKENIZERS[pre]},
                "post_processor": post, "decoder": {**BYTE_LEVEL, "add_prefix_space": True},
                "model": {"type": "BPE", "dropout": None, "unk_token": None,
                          "continuing_subword_prefix": None,
                          "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                          "ignore_merges": False, "vocab": {t: i for i, t in enumerate(tokens)},
                          "merges": [m.split(" ") for m in meta.get("tokenizer.ggml.merges", [])]}}
    config = {"tokenizer_class": "PreTrainedTokenizerFast", **special, "add_bos_token": add_bos,
              "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
              "model_max_length": meta.get("llama.context_length", 2048),
              "clean_up_tokenization_spaces": False}
    if "tokenizer.chat_template" in meta:
        config["chat_template"] = meta["tokenizer.chat_template"]
    return tok_json, config


# ------------------------------------------------------------------------------------- the folder
def check_out(out, overwrite: bool = False) -> None:
    """An existing converted folder (config.json) is replaced only with overwrite; a folder holding
    anything else is never touched (as train.py's --out)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GGUFError(f"--out {out}: is a file; expected a folder to create")
    if (out / "config.json").is_file() and not overwrite:
        raise GGUFError(f"--out {out}: holds a model (config.json); pass --overwrite to replace it")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise GGUFError(f"--out {out}: a folder that holds something other than a model; "
                        "choose another --out")


def convert_gguf(gguf_path, out, overwrite: bool = False) -> Path:
    """Read, dequantize and write the whole folder beside `out`, then rename it into place."""
    from safetensors.numpy import save_file

    from checkpoint import config_to_hf   # here, as llama_config's model: no torch to start
    path, out = Path(gguf_path), Path(out)
    check_out(out, overwrite)
    meta, tensors = read_gguf(path)
    cfg = llama_config(path, meta, tensors)
    tok_json, tok_config = tokenizer_files(path, meta)
    state = hf_state(path, tensors, cfg.num_attention_heads, cfg.num_key_value_heads)
    files = {"config.json": config_to_hf(cfg), "tokenizer.json": tok_json,
             "tokenizer_config.json": tok_config,
             "generation_config.json": {"bos_token_id": cfg.bos_token_id,
                                        "eos_token_id": cfg.eos_token_id,
                                        **({"pad_token_id": meta["tokenizer.ggml.padding_token_id"]}
                                           if "tokenizer.ggml.padding_token_id" in meta else {})}}
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)                 # left by a killed run of the same pid
    tmp.mkdir(parents=True)
    try:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp / "model.safetensors", 0o666 & ~umask)  # safetensors writes 0600
        for name, obj in files.items():
            text = json.dumps(obj, indent=1, ensure_ascii=False) + "\n"
            (tmp / name).write_text(text, encoding="utf-8")
        if out.exists():  # empty, or a model replaced with overwrite: moved aside, then removed
            old = out.with_name(f".{out.name}.old{os.getpid()}")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def describe(path) -> str:
    """The header, the metadata (long arrays abridged) and the tensor table of a GGUF file."""
    meta, tensors = read_gguf(path)
    lines = [f"{path}: {len(meta)} metadata entries, {len(tensors)} tensors"]
    for k, v in meta.items():
        lines.append(f"  {k} = " + (f"[{len(v)} items: {', '.join(map(repr, v[:3]))}, ...]"
                                   if isinstance(v, list) and len(v) > 8 else repr(v)[:120]))
    for name, (t, dims, raw) in tensors.items():
        lines.append(f"  {name:32s} {GGML_TYPES[t][0]:5s} dims {str(list(dims)):14s} "
                     f"{raw.nbytes:>10,} bytes")
    return "\n".join(lines)


@dataclass
class ConvertConfig:
    gguf: str | None = opt(None, "the GGUF file whose header, metadata and tensors to print; "
                                 "convert it with python -m study.download --model "
                                 "(default: none, the flag is required)")


def main(argv=None) -> int:
    """The command line: print what is in a GGUF file; exit 0, 2 (a bad flag or file) or 1."""
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog=__doc__.split("\n\n", 1)[1])
    cfg = ConvertConfig(**vars(add_config_flags(parser, ConvertConfig).parse_args(argv)))

    def body():
        if cfg.gguf is None:
            raise UsageError("--gguf FILE.gguf: expected the file to describe")
        try:
            print(describe(cfg.gguf))
        except GGUFError as e:
            raise UsageError(str(e)) from None
    return guard(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
