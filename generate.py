"""Talk to a model: stream the answer to a prompt token by token, from a checkpoint or LoRA folder.

    python generate.py --model runs/x-llama-de "Translate into German: The cat sleeps."
    python generate.py --model runs/x-llama-de --input "The cat sleeps." "Translate into German."
    python generate.py --model runs/x-llama-de/adapter "..."   # LoRA: base from adapter_config.json
    echo "Name three colours." | python generate.py --model runs/x-llama-de   # one prompt a line
    python generate.py --model runs/x-llama-de -i              # interactive; Ctrl-C/Ctrl-D ends it
    python generate.py --model DIR --temperature 0.7 --top-p 0.9 --seed 0 "..."   # sampling
    python -m pytest -q tests/test_generate.py

--model is a Hugging Face LlamaForCausalLM folder (config.json, model.safetensors, tokenizer.model
or tokenizer.json) or a peft LoRA folder (adapter_config.json, whose base_model_name_or_path is the
base folder; the tokenizer comes from the adapter folder, else the base). The prompt is wrapped in
the paper's Alpaca template (tokenizer.format_prompt, as in training and evaluate.py) unless
`--template chat` (the folder's own chat_template from tokenizer_config.json or chat_template.jinja,
rendered with jinja2 as transformers' apply_chat_template does) or `--template none` (raw text).
Each prompt is a fresh conversation: nothing is remembered between lines.

Decoding is greedy unless --temperature > 0 (then --top-k / --top-p / --seed), stops at EOS or
after --max-new-tokens, and uses the same KV-cache calls as Llama.generate, so greedy output equals
model.generate exactly. On CUDA each new token is one replayed CUDA graph: `generate(model, idx,
...)` and `stream(model, idx, ...)` here are Llama's methods plus decode="graph" (`cuda_graph`),
their decode="auto" is graph on CUDA in eval mode, and the scripts that generate call them.

The answer goes to stdout as it is produced: each step the whole generated sequence is decoded and
only the new suffix printed (decoding piece by piece loses spaces), and text ending in U+FFFD (an
incomplete UTF-8 character of byte-fallback pieces, as in Chinese or Hindi) is held back until its
last byte arrives. Tokens/s and the device decision (device.py) go to stderr. Bad input (not a
model folder, empty prompt, conflicting sampling flags) exits 2 with one line.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

import tokenizer
from cli import Parser, UsageError, add_config_flags, check_config, guard, opt
from device import decide
from cli import read_json
from checkpoint import load_model, read_config
from lora import load_adapter
from model import Llama
from tokenizer import Tokenizer


@dataclass
class GenConfig:
    template: str = opt("alpaca", "alpaca (the paper's prompt) | chat (the folder's chat_template) "
                                  "| none (raw text)", choices=tokenizer.TEMPLATES)
    input: str = opt("", "alpaca: the template's Input field, e.g. the sentence to translate")
    max_new_tokens: int = opt(256, "stop after this many new tokens (or at EOS)", range="[1, inf)")
    temperature: float = opt(0.0, "0 = greedy; > 0 samples from softmax(logits / temperature)",
                             range="[0, inf)")
    top_k: int | None = opt(None, "sample among the k most likely tokens (needs --temperature > 0)",
                            range="[1, inf)")
    top_p: float | None = opt(None, "nucleus: the smallest set of mass >= p, p in (0, 1] "
                                    "(needs --temperature > 0)", range="(0, 1]")
    seed: int | None = opt(None, "seed torch's RNG once, so a sampled run repeats",
                           range="[0, inf)")
    device: str = opt("auto", "auto | cpu | cuda (device.py decides and says why)")
    dtype: str = opt("auto", "auto | fp32 | bf16 | fp16 (auto: bf16 on CUDA, on the CPU only "
                             "where measured faster)")
    threads: int = opt(0, "CPU threads; 0 = measure (device.py)", range="[0, inf)")


def check(cfg: GenConfig) -> None:
    """Out-of-range or conflicting flags, non-UTF-8 text -> UsageError naming the flag."""
    check_config(cfg)
    for flag, v in (("--top-k", cfg.top_k), ("--top-p", cfg.top_p)):
        if v is not None and cfg.temperature == 0:
            raise UsageError(f"{flag} {v}: greedy decoding (--temperature 0) ignores it; "
                             "give --temperature > 0")
    if cfg.input and cfg.template != "alpaca":
        raise UsageError(f"--input is the Alpaca template's field; --template {cfg.template} "
                         "has none")
    utf8(cfg.input, "--input")


def utf8(text: str, where: str) -> str:
    """`text` unless it holds bytes that were not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UsageError(f"{where}: not UTF-8 text (character {e.start + 1}); "
                         "expected UTF-8") from None
    return text


def fits(model, ids: list[int], max_new_tokens: int) -> None:
    """A prompt plus its answer must fit the positions the model was trained for: past them RoPE
    runs on unseen positions and the answer degrades without a word."""
    ctx = model.config.max_position_embeddings
    if len(ids) + max_new_tokens > ctx:
        raise UsageError(f"prompt: {len(ids)} tokens + --max-new-tokens {max_new_tokens} exceed "
                         f"the model's context of {ctx} positions (max_position_embeddings); "
                         "shorten the prompt or lower --max-new-tokens")


# ----------------------------------------------------------------------------- loading
def load(folder, device: str = "auto", dtype: str = "auto", threads: int = 0):
    """(model in eval mode, Tokenizer, device.Runtime, tokenizer folder) for a checkpoint or
    LoRA folder."""
    folder = Path(folder)
    base, adapter = folder, folder / "adapter_config.json"
    if adapter.is_file():
        conf = read_json(adapter, "a peft adapter config (JSON object)", dict)
        name = conf.get("base_model_name_or_path")
        base = Path(name if isinstance(name, str) else "")
        if not (base / "config.json").is_file():
            raise FileNotFoundError(f"{adapter}: base_model_name_or_path {str(base)!r} is not a "
                                    "model folder (no config.json)")
    elif not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: not a model folder (no config.json or "
                                "adapter_config.json)")
    tok_dir = next((d for d in (folder, base) if Tokenizer.find(d)), None)
    if tok_dir is None:
        nor = f" (nor in {base})" if base != folder else ""
        raise FileNotFoundError(f"{folder}: no tokenizer.model or tokenizer.json{nor}")
    cfg = read_config(base / "config.json")
    rt = decide(device=device, dtype=dtype, threads=threads,
                shape=(cfg.hidden_size, cfg.intermediate_size))
    model = load_model(base, dtype=rt.torch_dtype, device=rt.device)
    if base != folder:
        load_adapter(model, folder)           # unmerged: base(x) + scale * B(A(x)), LoRA in fp32
    tok = Tokenizer.from_folder(tok_dir).check_fits(model.config.vocab_size)
    return model.eval(), tok, rt, tok_dir   # eval: the new LoRA dropouts off


def prompt_ids(tok: Tokenizer, prompt: str, cfg: GenConfig, tok_dir=None) -> list[int]:
    """Token ids of the wrapped prompt (tokenizer.prompt_ids: the way training and evaluate.py
    encode it)."""
    if not prompt.strip():
        raise UsageError("prompt: empty (give some text)")
    return tokenizer.prompt_ids(tok, utf8(prompt, "prompt"), cfg.template, tok_dir, cfg.input)


# ----------------------------------------------------------------------------- decoding
def cuda_graph(body, device):
    """A function that replays body() -- one decoding step over fixed buffers, Llama's static
    decode -- as one captured CUDA graph: no per-kernel launch cost, which at batch 1 is most of
    a step. The torch.cuda.graph recipe: warm up on a side stream, then capture."""
    side = torch.cuda.Stream(device=device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            body()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        logits = body()          # the graph's output buffer, refilled by every replay

    def run():
        graph.replay()
        return logits
    return run


def stream(model: Llama, idx, max_new_tokens: int, decode: str = "auto", **kw):
    """Llama.stream plus decode="graph" (static shapes, each step one CUDA graph); "auto" is graph
    on CUDA in eval mode, else dynamic. Other arguments as Llama.stream."""
    if decode == "auto":
        decode = "graph" if idx.is_cuda and not model.training else "dynamic"
    if decode == "graph":
        if not idx.is_cuda:
            raise ValueError("generate: decode='graph': graph needs CUDA; "
                             "expected auto, dynamic or static here")
        return model.stream(idx, max_new_tokens, decode="static", capture=cuda_graph, **kw)
    return model.stream(idx, max_new_tokens, decode=decode, **kw)


def generate(model: Llama, idx, max_new_tokens: int, **kw):
    """Llama.generate through stream() above: (B, T + n_new), graph decoding on CUDA."""
    new = list(stream(model, idx, max_new_tokens, **kw))
    return torch.cat([idx] + [t[:, None] for t in new], dim=1)


def stream_ids(model: Llama, ids: list[int], max_new_tokens: int, temperature: float = 0.0,
               top_k=None, top_p=None, eos_id: int | None = None,
               decode: str = "auto") -> Iterator[int]:
    """stream() for one prompt: each new token id as soon as it is chosen (EOS included, then
    stop)."""
    idx = torch.tensor([ids], device=model.lm_head.weight.device)
    for nxt in stream(model, idx, max_new_tokens, decode, temperature=temperature, top_k=top_k,
                      top_p=top_p, eos_id=eos_id):
        yield int(nxt[0])


def stream_text(tok: Tokenizer, ids: Iterable[int]) -> Iterator[str]:
    """The text of the growing id sequence, as new suffixes. The whole sequence is decoded each
    step (sentencepiece drops the space of a piece decoded alone); text ending in U+FFFD waits for
    the rest of its character. What is yielded joins to tok.decode(all ids), EOS left out by the
    decoder."""
    seq, shown = [], ""
    for i in ids:
        seq.append(i)
        text = tok.decode(seq)
        if not text.endswith("\ufffd") and text.startswith(shown) and len(text) > len(shown):
            yield text[len(shown):]
            shown = text
    text = tok.decode(seq)
    if text != shown:          # ended inside a character: show what the decoder makes of it
        assert text.startswith(shown), (text, shown)
        yield text[len(shown):]


def answer(model, tok, prompt: str, cfg: GenConfig, tok_dir=None, out=None, err=None) -> str:
    """Stream one answer to `out` (default stdout) and return it; tokens/s to `err` (default
    stderr)."""
    out, err = out or sys.stdout, err or sys.stderr
    ids, n, t0, parts = prompt_ids(tok, prompt, cfg, tok_dir), 0, time.perf_counter(), []
    fits(model, ids, cfg.max_new_tokens)

    def counted():
        nonlocal n
        for i in stream_ids(model, ids, cfg.max_new_tokens, cfg.temperature, cfg.top_k,
                            cfg.top_p, tok.eos_id):
            n += 1
            yield i
    for piece in stream_text(tok, counted()):
        parts.append(piece)
        out.write(piece)
        out.flush()
    out.write("\n")
    dt = time.perf_counter() - t0
    print(f"[{n} tokens in {dt:.2f} s, {n / dt:.1f} tokens/s; prompt {len(ids)} tokens]",
          file=err, flush=True)
    return "".join(parts)


# ----------------------------------------------------------------------------- batches of answers
def generate_responses(model, tok, prompts: list[list[int]], max_new_tokens: int, device,
                       generate=generate) -> tuple[list[str], int]:
    """Greedy responses for one batch of prompt ids (tokenizer.prompt_ids), as evaluate.py scores
    them: left-padded + attention mask, KV-cached `generate` (a CUDA graph per token on CUDA;
    study/bench.py passes transformers' generate instead). Prompts longer than the context window
    minus max_new_tokens keep their first token (BOS) and lose what follows it (counted)."""
    keep = model.config.max_position_embeddings - max_new_tokens
    if keep < 2:
        raise ValueError(f"--max-new-tokens {max_new_tokens}: leaves no room for a prompt in the "
                         f"model's {model.config.max_position_embeddings}-position context")
    ids, cut = [], 0
    for x in prompts:
        if len(x) > keep:
            x, cut = x[:1] + x[len(x) - keep + 1:], cut + 1
        ids.append(x)
    T = max(len(x) for x in ids)
    idx = torch.full((len(ids), T), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), T), dtype=torch.long)
    for i, x in enumerate(ids):
        idx[i, T - len(x):], mask[i, T - len(x):] = torch.tensor(x), 1
    out = generate(model, idx.to(device), max_new_tokens, temperature=0.0, eos_id=tok.eos_id,
                   attention_mask=mask.to(device))[:, T:].tolist()
    texts = [tok.decode(row[:row.index(tok.eos_id)] if tok.eos_id in row else row) for row in out]
    return [t.strip() for t in texts], cut


@torch.no_grad()
def complete(model: Llama, tok: Tokenizer, ex: dict, device, max_new_tokens: int = 64) -> str:
    """Greedy response to one Alpaca-style example."""
    model.eval()
    ids = [tok.bos_id] + tok.encode(tokenizer.format_prompt(ex["instruction"], ex["input"]))
    outp = generate(model, torch.tensor([ids], device=device), max_new_tokens, eos_id=tok.eos_id)
    model.train()
    return tok.decode(outp[0, len(ids):].tolist()).strip()


# ----------------------------------------------------------------------------- command line
def build_parser() -> Parser:
    p = Parser(prog="generate.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", required=True, help="checkpoint folder, or a LoRA adapter folder")
    p.add_argument("prompt", nargs="?", help="the prompt; none: one prompt per line from stdin")
    p.add_argument("-i", "--interactive", action="store_true", help="ask for prompts in a loop")
    return add_config_flags(p, GenConfig)


def stdin_lines() -> Iterator[str]:
    """The prompts piped in, one a line; a line that is not UTF-8 is one UsageError naming it."""
    raw = getattr(sys.stdin, "buffer", None)   # bytes, so a bad line is named, not a traceback
    for n, line in enumerate(raw if raw is not None else sys.stdin, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UsageError(f"stdin line {n}: not UTF-8 text (byte {e.start + 1}); "
                                 "expected UTF-8") from None
        yield utf8(line, f"stdin line {n}").rstrip("\r\n")


def converse(model, tok, cfg: GenConfig, tok_dir) -> None:
    """-i: prompts from the terminal until Ctrl-D or Ctrl-C; a bad prompt is said and skipped."""
    while True:
        line = input("> ")
        if line.strip():
            try:
                answer(model, tok, line, cfg, tok_dir)
            except UsageError as e:
                print(f"generate.py: error: {e}", file=sys.stderr)


def main(argv=None) -> int:
    """Exit 0; 2 for a bad flag, model folder or prompt (one line); 130 for Ctrl-C on piped
    prompts (-i ends with 0)."""
    args = vars(build_parser().parse_args(argv))
    folder, prompt, interactive = args.pop("model"), args.pop("prompt"), args.pop("interactive")
    cfg = GenConfig(**args)
    loaded = []

    def setup():
        check(cfg)
        if prompt is not None and not utf8(prompt, "prompt argument").strip():
            raise UsageError("prompt argument: empty (give some text, or none to read prompts "
                             "from stdin)")
        model, tok, rt, tok_dir = load(folder, cfg.device, cfg.dtype, cfg.threads)
        if cfg.template == "chat":
            tokenizer.chat_template(tok_dir)            # fail now, not after the first prompt
        if cfg.max_new_tokens >= model.config.max_position_embeddings:
            raise UsageError(f"--max-new-tokens {cfg.max_new_tokens}: leaves no room for a prompt "
                             f"in the model's {model.config.max_position_embeddings}-position "
                             "context")
        if prompt is not None:                     # too long: said before anything is printed
            fits(model, prompt_ids(tok, prompt, cfg, tok_dir), cfg.max_new_tokens)
        loaded.extend((model, tok, rt, tok_dir))
    # DeviceError, a bad adapter (a ValueError) and a missing file: one line, exit 2
    code = guard("generate.py", setup, usage=(ValueError, FileNotFoundError))
    if code:
        return code
    model, tok, rt, tok_dir = loaded
    print(rt.why, file=sys.stderr)
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    # a terminal is a conversation
    interactive = interactive or (prompt is None and sys.stdin.isatty())

    def body():
        if prompt is not None:
            answer(model, tok, prompt, cfg, tok_dir)
        if interactive:                            # -i with a prompt: that one first, then the loop
            try:
                converse(model, tok, cfg, tok_dir)
            except (KeyboardInterrupt, EOFError):  # Ctrl-C / Ctrl-D end a conversation cleanly
                print(file=sys.stderr)
        elif prompt is None:
            n = 0
            for line in stdin_lines():             # answered as they arrive
                if line.strip():
                    n += 1
                    answer(model, tok, line, cfg, tok_dir)
            if n == 0:
                raise UsageError("stdin: no prompt (one prompt a line expected)")
    return guard("generate.py", body)


if __name__ == "__main__":
    sys.exit(main())
