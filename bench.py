"""Speed and memory of model.Llama against transformers' LlamaForCausalLM holding the same weights, in one run.

    python bench.py                                  # ~14M config, CPU, 1 thread (~2 min): the README table
    python bench.py --device cuda --threads 0        # same on a GPU
    python bench.py --preset tinyllama-1.1b --device cuda --threads 0   # 1B-class: bf16 MFU and memory
    python bench.py --train-steps 1 --repeats 1 --new-tokens 16   # quick smoke run
    python bench.py --out runs/bench.json            # also write the numbers as JSON
    python bench.py --only eval --no-reference       # one benchmark, ours alone

Measures (after --warmup untimed calls, best of --repeats timings; ours and transformers take
turns within each round, so other load on the machine hits both alike):
  train-fp32 / train-bf16  tokens/s of a full training step (forward, loss, backward, AdamW step)
                           on batch x seq_len random tokens; bf16 = torch.autocast, fp32 weights;
                           lr 0, so every benchmark sees the same weights on both sides.
                           MFU = tokens/s x model.flops_per_token (train.py's FLOP count) / peak.
  generate-fp32 / -bf16    greedy tokens/s, batch 1, prompt --prompt-len, --new-tokens new tokens,
                           weights in that dtype, KV cache on both sides; counts how many greedy tokens agree.
  eval                     questions/s of evaluate.generate_responses (evaluate.py's batched, left-padded,
                           KV-cached greedy decoding) on --eval-questions XQuAD-style German questions of a
                           miniature world written to a temp dir with a tokenizer of the model's vocabulary;
                           transformers runs the same function through a 5-line adapter; weights bf16 on
                           CUDA, fp32 on CPU (evaluate.py's --dtype auto); counts identical answers.
Peak FLOP/s for MFU: on CPU the best of a --peak-n square torch.matmul timed in this run (fp32 and
bf16), so MFU says how close a step gets to what this machine's matmul reaches; on CUDA the stated
dense bf16 peak of the GPU (train.stated_bf16_peak, else measured) for bf16 and the measured fp32 matmul for fp32.
Peak memory (MB above what was allocated before the benchmark's first warm-up call, which is the
one measured: activations, gradients, optimizer state, KV cache, not the weights): CUDA
torch.cuda.max_memory_allocated; CPU the kernel's resident high-water mark (VmHWM, reset through
/proc/self/clear_refs after returning freed heap with malloc_trim), Linux with glibc only ('-' elsewhere).
Add a benchmark by writing `make(model, cfg, device, ours) -> (closure, units per call)` and listing it in BENCHES.
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import gc
import json
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

import data
from evaluate import generate_responses, load_examples
from model import PRESETS, Llama
from train import stated_bf16_peak


@dataclass
class BenchConfig:
    preset: str = "bench-14m"     # model size from model.PRESETS (dim 384, 6 layers, 6 heads, ffn 1024)
    vocab_size: int = 0           # overrides the preset's vocabulary (0: the preset's own; bench-14m: 4096)
    batch_size: int = 8           # training batch
    seq_len: int = 256            # training sequence length
    train_steps: int = 2          # timed training steps per repeat
    warmup: int = 1               # untimed calls first (allocator, autotuning); the first one measures memory
    repeats: int = 3              # timings per measurement; the best is kept
    prompt_len: int = 32          # generation prompt length
    new_tokens: int = 128         # generated tokens (greedy, no early stop)
    eval_questions: int = 16      # XQuAD-style questions per eval call
    eval_batch: int = 8           # prompts per generate_responses call (evaluate.py's default)
    eval_new_tokens: int = 32     # answer tokens (evaluate.py uses 64 for QA)
    peak_n: int = 2048            # size of the square matmul that measures the peak FLOP/s (x4 on CUDA)
    device: str = "cpu"           # cpu | cuda | cuda:N
    threads: int = 1              # torch CPU threads (0: torch's default); 2 on a busy 2-core CPU ran far slower
    reference: bool = True        # also time transformers' LlamaForCausalLM with the same weights
    seed: int = 0                 # weights and inputs
    only: str = ""                # comma-separated subset of BENCHES (empty: all)
    out: str = ""                 # optional JSON file for the results


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(fn, device) -> tuple[object, float | None]:
    """fn()'s result and the peak memory (MB) it used above what was allocated before it."""
    gc.collect()
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        sync(device)
        return out, (torch.cuda.max_memory_allocated(device) - base) / 2**20
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)      # freed heap back to the OS, so reuse shows as growth
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
    except OSError:
        return fn(), None
    base = _status_kb("VmRSS")
    out = fn()
    return out, (_status_kb("VmHWM") - base) / 1024


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def time_interleaved(runs: dict, cfg: BenchConfig, device) -> tuple[dict, dict]:
    """Best wall time of each closure over cfg.repeats rounds after cfg.warmup calls (the first of
    which also gives its peak memory). The closures take turns within a round, so load from other
    processes hits them alike."""
    mem = {k: peak_memory(fn, device)[1] for k, fn in runs.items()}
    for _ in range(cfg.warmup - 1):
        for fn in runs.values():
            fn()
    best = {k: float("inf") for k in runs}
    for _ in range(cfg.repeats):
        for k, fn in runs.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            best[k] = min(best[k], time.perf_counter() - t0)
    return best, mem


def matmul_tflops(device, dtype, n: int, repeats: int = 3) -> float:
    """Achieved TFLOP/s of the best of `repeats` n x n @ n x n matmuls (2 n^3 FLOPs each)."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e12


def peak_tflops(cfg: BenchConfig, device) -> dict:
    """{"fp32": ..., "bf16": ..., "why": ...}: the peaks that MFU divides by (see the docstring)."""
    n = cfg.peak_n * (4 if device.type == "cuda" else 1)  # a GPU needs 8192^2 matrices to come near its peak
    fp32 = matmul_tflops(device, torch.float32, n)
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        stated = stated_bf16_peak(gpu)
        bf16 = stated or matmul_tflops(device, torch.bfloat16, n)
        why = f"{gpu}: bf16 {'stated dense' if stated else 'measured'} {bf16:g}, fp32 measured {fp32:.1f}"
        return {"fp32": fp32, "bf16": bf16, "why": why}
    bf16 = matmul_tflops(device, torch.bfloat16, n)
    why = f"measured {n}^3 matmul on {torch.get_num_threads()} threads: fp32 {fp32:.3f}, bf16 {bf16:.3f}"
    return {"fp32": fp32, "bf16": bf16, "why": why}


def make_train(amp_dtype):
    """A benchmark: cfg.train_steps optimizer steps (forward, loss, backward, AdamW) on fixed
    random tokens; amp_dtype None = fp32, else torch.autocast to it."""
    def make(model, cfg: BenchConfig, device, ours: bool):
        V = model.config.vocab_size
        g = torch.Generator().manual_seed(cfg.seed)
        x = torch.randint(0, V, (cfg.batch_size, cfg.seq_len), generator=g).to(device)
        y = torch.randint(0, V, (cfg.batch_size, cfg.seq_len), generator=g).to(device)
        # lr 0: the full AdamW arithmetic runs, the weights stay equal on both sides for later benchmarks
        opt = torch.optim.AdamW(model.parameters(), lr=0.0, weight_decay=0.0, fused=device.type == "cuda")

        def loss_of():
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                if ours:
                    return model(x, y)[1]
                logits = model(input_ids=x).logits       # the same loss as ours, same shifted targets
                return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))

        def run():
            model.train()
            for _ in range(cfg.train_steps):
                opt.zero_grad(set_to_none=True)
                loss_of().backward()
                opt.step()
            opt.zero_grad(set_to_none=True)     # gradients freed between calls, as after a real step
            return None
        return run, cfg.train_steps * cfg.batch_size * cfg.seq_len
    return make


def make_generate(dtype):
    """A benchmark: greedy generation, batch 1, cfg.prompt_len prompt, cfg.new_tokens new tokens,
    on a copy of the model in `dtype` (batch-1 decoding is bound by reading the weights)."""
    def make(model, cfg: BenchConfig, device, ours: bool):
        model = copy.deepcopy(model).to(dtype).eval()
        g = torch.Generator().manual_seed(cfg.seed + 1)
        prompt = torch.randint(3, model.config.vocab_size, (1, cfg.prompt_len), generator=g).to(device)

        @torch.no_grad()
        def run():
            if ours:
                return model.generate(prompt, cfg.new_tokens)
            return model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                  max_new_tokens=cfg.new_tokens, min_new_tokens=cfg.new_tokens,
                                  eos_token_id=None, pad_token_id=0)
        return run, cfg.new_tokens
    return make


class HFGenerate:
    """transformers' model behind the one call evaluate.generate_responses makes of ours."""
    def __init__(self, hf):
        self.hf, self.config = hf, hf.config

    def generate(self, idx, max_new_tokens, temperature=0.0, eos_id=None, attention_mask=None):
        return self.hf.generate(idx, attention_mask=attention_mask, do_sample=False,
                                max_new_tokens=max_new_tokens, eos_token_id=eos_id, pad_token_id=eos_id)


class WorldTokenizer:
    """The miniature world's tokenizer for a model whose vocabulary may be larger: ids past the
    tokenizer's own (a random model emits them) decode to nothing."""
    def __init__(self, tok: data.Tokenizer):
        self.tok, self.bos_id, self.eos_id, self.pad_id = tok, tok.bos_id, tok.eos_id, tok.pad_id
        self.encode = tok.encode

    def decode(self, ids):
        return self.tok.decode([i for i in ids if i < self.tok.vocab_size])


def eval_prompts(cfg: BenchConfig, vocab_size: int) -> tuple[WorldTokenizer, list[str]]:
    """cfg.eval_questions XQuAD-de prompts of a miniature world (temp dir), longest first as in
    evaluate.run_task, and a sentencepiece tokenizer trained on its text (at most vocab_size)."""
    import world
    with tempfile.TemporaryDirectory() as tmp:
        d = world.write_world(Path(tmp) / "world", seed=cfg.seed, pretrain_chars=300_000, alpaca=20, parallel=20,
                              xquad_passages=-(-cfg.eval_questions // 4), mlqa_passages=1, flores=2)
        tok = data.Tokenizer.train(sorted((d / "pretrain").glob("*.txt")), Path(tmp) / "tokenizer.model",
                                   min(vocab_size, 4096), seed=cfg.seed)
        recs = load_examples("xquad", "de", d, limit=cfg.eval_questions)
    prompts = [data.format_prompt(r["instruction"], r["input"]) for r in recs]
    return WorldTokenizer(tok), sorted(prompts, key=len, reverse=True)


def make_eval(model, cfg: BenchConfig, device, ours: bool):
    """A benchmark: evaluate.py's batched greedy answers to cfg.eval_questions questions."""
    tok, prompts = eval_prompts(cfg, model.config.vocab_size)
    model = copy.deepcopy(model).to(torch.bfloat16 if device.type == "cuda" else torch.float32).eval()
    gen = model if ours else HFGenerate(model)

    @torch.no_grad()
    def run():
        return [t for i in range(0, len(prompts), cfg.eval_batch)
                for t in generate_responses(gen, tok, prompts[i:i + cfg.eval_batch], cfg.eval_new_tokens, device)[0]]
    return run, len(prompts)


# name -> (unit, make(model, cfg, device, ours) -> (closure returning outputs or None, units per call))
BENCHES = {"train-fp32": ("tok/s", make_train(None)), "train-bf16": ("tok/s", make_train(torch.bfloat16)),
           "generate-fp32": ("tok/s", make_generate(torch.float32)),
           "generate-bf16": ("tok/s", make_generate(torch.bfloat16)), "eval": ("questions/s", make_eval)}


def reference_model(ours: Llama, device):
    """transformers' LlamaForCausalLM holding our weights (through a saved HF folder)."""
    from transformers import LlamaForCausalLM
    from transformers.utils import logging
    logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(Path(tmp) / "m")
        return LlamaForCausalLM.from_pretrained(Path(tmp) / "m", attn_implementation="sdpa").to(device)


def agreement(a, b, prompt_len: int) -> tuple[int, int]:
    """(agreeing, total): generated tokens before the first difference, or identical answers."""
    if isinstance(a, list):
        return sum(x == y for x, y in zip(a, b)), len(a)
    diff = (a.cpu() != b.cpu())[0, prompt_len:].nonzero()
    n = a.shape[1] - prompt_len
    return (int(diff[0, 0]) if len(diff) else n), n


def run_benchmarks(cfg: BenchConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    torch.manual_seed(cfg.seed)
    mcfg = replace(PRESETS[cfg.preset], vocab_size=cfg.vocab_size or PRESETS[cfg.preset].vocab_size)
    ours = Llama(mcfg).to(device)
    ref = None
    if cfg.reference:
        try:
            ref = reference_model(ours, device)
        except ImportError:
            print("transformers not importable: timing ours only")
    peak = peak_tflops(cfg, device)
    weights_mb = sum(p.numel() * p.element_size() for p in ours.parameters()) / 2**20
    print(f"device {device} ({torch.get_num_threads()} CPU threads), torch {torch.__version__}, {cfg.preset}: "
          f"{ours.num_params() / 1e6:.1f}M params ({weights_mb:,.0f} MB fp32 each side), "
          f"batch {cfg.batch_size} x T {cfg.seq_len}\npeak TFLOP/s for MFU: {peak['why']}")
    rows = {}
    models = {"ours": ours} if ref is None else {"ours": ours, "transformers": ref}
    for name, (unit, make) in BENCHES.items():
        if cfg.only and name not in cfg.only.split(","):
            continue
        made = {k: make(m, cfg, device, k == "ours") for k, m in models.items()}
        best, mem = time_interleaved({k: fn for k, (fn, _) in made.items()}, cfg, device)
        r = {"unit": unit, **{k: made[k][1] / best[k] for k in made}, **{f"mem_{k}_mb": mem[k] for k in made}}
        if name.startswith("train"):
            per_s = peak[name.split("-")[1]] * 1e12
            r.update({f"mfu_{k}": r[k] * ours.flops_per_token(cfg.seq_len) / per_s for k in made})
        if ref is not None:
            r["ratio"] = r["ours"] / r["transformers"]
            a, b = made["ours"][0](), made["transformers"][0]()
            if a is not None:
                r["agree"] = agreement(a, b, cfg.prompt_len)
        rows[name] = r
        del made
        print(f"  {name:13s} done: ours {r['ours']:,.1f} {unit}")
    return {"config": asdict(cfg), "device": str(device), "torch": torch.__version__, "peak_tflops": peak,
            "weights_mb": weights_mb, "results": rows, "bf16_over_fp32": dtype_ratios(rows)}


def dtype_ratios(rows: dict) -> dict:
    """bf16 speed / fp32 speed per benchmark family and side, from the measured rows."""
    out = {}
    for fam in ("train", "generate"):
        a, b = rows.get(f"{fam}-bf16"), rows.get(f"{fam}-fp32")
        if a and b:
            out[fam] = {k: a[k] / b[k] for k in ("ours", "transformers") if k in a and k in b}
    return out


def print_table(res: dict):
    print("\n| benchmark | unit | ours | transformers | ours / transformers | same output | MFU ours / transformers "
          "| peak MB ours / transformers |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    mb = lambda v: "-" if v is None else f"{v:,.0f}"
    for name, r in res["results"].items():
        ref = f"{r['transformers']:,.1f}" if "transformers" in r else "-"
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        agree = "{}/{}".format(*r["agree"]) if "agree" in r else ""
        mfu = " / ".join(f"{100 * r[k]:.1f}%" for k in ("mfu_ours", "mfu_transformers") if k in r)
        mem = " / ".join(mb(r[k]) for k in ("mem_ours_mb", "mem_transformers_mb") if k in r)
        print(f"| {name} | {r['unit']} | {r['ours']:,.1f} | {ref} | {ratio} | {agree} | {mfu} | {mem} |")
    for fam, d in res["bf16_over_fp32"].items():
        print(f"{fam}: bf16 / fp32 speed " + ", ".join(f"{k} {v:.2f}x" for k, v in d.items()))


def parse_args(argv=None) -> BenchConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    helps = {"preset": f"model size, one of {', '.join(PRESETS)}", "vocab_size": "vocabulary size (0: the preset's)",
             "batch_size": "training batch size", "seq_len": "training sequence length",
             "train_steps": "timed training steps per repeat", "warmup": "untimed warm-up runs (>= 1: the first measures memory)",
             "repeats": "timed repeats, best kept", "prompt_len": "generation prompt tokens",
             "new_tokens": "generated tokens", "eval_questions": "XQuAD-style questions in the eval benchmark",
             "eval_batch": "eval prompts per batch", "eval_new_tokens": "eval answer tokens",
             "peak_n": "matmul size that measures the peak FLOP/s", "device": "cpu, cuda or cuda:N",
             "threads": "torch CPU threads, 0 = torch default", "seed": "seed for weights and inputs",
             "out": "write results as JSON here", "reference": "time transformers too",
             "only": f"comma-separated subset of {', '.join(BENCHES)}"}
    for f in fields(BenchConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            p.add_argument(flag, default=f.default, action=argparse.BooleanOptionalAction, help=helps[f.name])
        else:
            typ = {"int": int, "str": str}[f.type]
            p.add_argument(flag, type=typ, default=f.default, help=helps[f.name])
    a = p.parse_args(argv)
    cfg = BenchConfig(**{f.name: getattr(a, f.name) for f in fields(BenchConfig)})
    if cfg.preset not in PRESETS:
        p.error(f"--preset {cfg.preset!r}: choose from {', '.join(PRESETS)}")
    unknown = set(filter(None, cfg.only.split(","))) - set(BENCHES)
    if unknown:
        p.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(BENCHES)}")
    for name in ("batch_size", "seq_len", "train_steps", "warmup", "repeats", "prompt_len", "new_tokens",
                 "eval_questions", "eval_batch", "eval_new_tokens", "peak_n"):
        if getattr(cfg, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if cfg.vocab_size < 0:
        p.error("--vocab-size must be >= 0")
    return cfg


def main(argv=None):
    cfg = parse_args(argv)
    res = run_benchmarks(cfg)
    print_table(res)
    if cfg.out:
        data.write_atomic(cfg.out, json.dumps(res, indent=2) + "\n")
        print(f"wrote {cfg.out}")


if __name__ == "__main__":
    main()
