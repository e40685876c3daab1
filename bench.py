"""Speed of model.Llama against transformers' LlamaForCausalLM holding the same weights, in one run.

    python bench.py                                  # ~14M config, CPU, 2 threads: the README table
    python bench.py --device cuda --threads 0        # same on a GPU
    python bench.py --train-steps 3 --new-tokens 16  # quick smoke run
    python bench.py --out runs/bench.json            # also write the numbers as JSON
    python bench.py --only generate-fp32 --no-reference   # one benchmark, ours alone

Measures (after --warmup untimed calls, best of --repeats timings; ours and transformers take
turns within each round, so other load on the machine hits both alike):
  train-fp32 / train-bf16  tokens/s of a full training step (forward, loss, backward, AdamW step)
                           on batch x seq_len random tokens; bf16 = torch.autocast, fp32 weights;
                           lr 0, so every benchmark sees the same weights on both sides.
  generate-fp32 / -bf16    greedy tokens/s, batch 1, prompt --prompt-len, --new-tokens new tokens,
                           weights in that dtype, KV cache on both sides; counts how many greedy tokens agree
                           (all in fp32; bf16 rounding differs between the two, so ties may split).
Prints a table with the ratio ours / transformers (> 1 means we are faster) and, for training,
the model FLOP/s that our tokens/s imply (model.flops_per_token; divide by the hardware peak
for MFU). transformers is optional (--no-reference or not installed: our numbers alone).
Add a benchmark by writing `make(model, cfg, device, ours) -> (closure, tokens per call)`
and listing it in BENCHES.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from model import PRESETS, Llama


@dataclass
class BenchConfig:
    preset: str = "bench-14m"     # model size from model.PRESETS (dim 384, 6 layers, 6 heads, ffn 1024)
    vocab_size: int = 4096        # overrides the preset's vocabulary
    batch_size: int = 8           # training batch
    seq_len: int = 256            # training sequence length
    train_steps: int = 5          # timed training steps per repeat
    warmup: int = 2               # untimed steps first (allocator, autotuning)
    repeats: int = 3              # timings per measurement; the best is kept
    prompt_len: int = 32          # generation prompt length
    new_tokens: int = 128         # generated tokens (greedy, no early stop)
    device: str = "cpu"           # cpu | cuda | cuda:N
    threads: int = 2              # torch CPU threads (0: leave torch's default)
    reference: bool = True        # also time transformers' LlamaForCausalLM with the same weights
    seed: int = 0                 # weights and inputs
    only: str = ""                # comma-separated subset of BENCHES (empty: all)
    out: str = ""                 # optional JSON file for the results


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(runs: dict, cfg: BenchConfig, device) -> dict:
    """Best wall time of each closure over cfg.repeats rounds, after cfg.warmup calls. The
    closures take turns within a round, so load from other processes hits them alike."""
    for _ in range(cfg.warmup):
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
    return best


def make_train(amp_dtype):
    """A benchmark: cfg.train_steps optimizer steps (forward, loss, backward, AdamW) on fixed
    random tokens; amp_dtype None = fp32, else torch.autocast to it."""
    def make(model, cfg: BenchConfig, device, ours: bool):
        g = torch.Generator().manual_seed(cfg.seed)
        x = torch.randint(0, cfg.vocab_size, (cfg.batch_size, cfg.seq_len), generator=g).to(device)
        y = torch.randint(0, cfg.vocab_size, (cfg.batch_size, cfg.seq_len), generator=g).to(device)
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
            return None
        return run, cfg.train_steps * cfg.batch_size * cfg.seq_len
    return make


def make_generate(dtype):
    """A benchmark: greedy generation, batch 1, cfg.prompt_len prompt, cfg.new_tokens new tokens,
    on a copy of the model in `dtype` (batch-1 decoding is bound by reading the weights)."""
    def make(model, cfg: BenchConfig, device, ours: bool):
        return _generate(copy.deepcopy(model).to(dtype), cfg, device, ours)
    return make


def _generate(model, cfg: BenchConfig, device, ours: bool):
    g = torch.Generator().manual_seed(cfg.seed + 1)
    prompt = torch.randint(3, cfg.vocab_size, (1, cfg.prompt_len), generator=g).to(device)

    @torch.no_grad()
    def run():
        model.eval()
        if ours:
            return model.generate(prompt, cfg.new_tokens)
        return model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                              max_new_tokens=cfg.new_tokens, min_new_tokens=cfg.new_tokens,
                              eos_token_id=None, pad_token_id=0)
    return run, cfg.new_tokens


# name -> make(model, cfg, device, ours) -> (closure returning tokens or None, tokens per call)
BENCHES = {"train-fp32": make_train(None), "train-bf16": make_train(torch.bfloat16),
           "generate-fp32": make_generate(torch.float32), "generate-bf16": make_generate(torch.bfloat16)}


def reference_model(ours: Llama, device):
    """transformers' LlamaForCausalLM holding our weights (through a saved HF folder)."""
    from transformers import LlamaForCausalLM
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(Path(tmp) / "m")
        return LlamaForCausalLM.from_pretrained(Path(tmp) / "m", attn_implementation="sdpa").to(device)


def run_benchmarks(cfg: BenchConfig) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    torch.manual_seed(cfg.seed)
    mcfg = replace(PRESETS[cfg.preset], vocab_size=cfg.vocab_size)
    ours = Llama(mcfg).to(device)
    ref = None
    if cfg.reference:
        try:
            ref = reference_model(ours, device)
        except ImportError:
            print("transformers not importable: timing ours only")
    print(f"device {device} ({torch.get_num_threads()} CPU threads), torch {torch.__version__}, "
          f"{cfg.preset}: {ours.num_params() / 1e6:.1f}M params, batch {cfg.batch_size} x T {cfg.seq_len}")
    rows = {}
    models = {"ours": ours} if ref is None else {"ours": ours, "transformers": ref}
    for name, make in BENCHES.items():
        if cfg.only and name not in cfg.only.split(","):
            continue
        made = {k: make(m, cfg, device, k == "ours") for k, m in models.items()}
        best = time_interleaved({k: fn for k, (fn, _) in made.items()}, cfg, device)
        r = {k: made[k][1] / best[k] for k in made}
        if name.startswith("train"):      # model FLOP/s (6N + attention, as model.flops_per_token)
            r["ours_tflops"] = r["ours"] * ours.flops_per_token(cfg.seq_len) / 1e12
        if ref is not None:
            r["ratio"] = r["ours"] / r["transformers"]
            a, b = made["ours"][0](), made["transformers"][0]()
            if a is not None:     # generated tokens that agree before the first difference
                diff = (a.cpu() != b.cpu())[0, cfg.prompt_len:].nonzero()
                r["agree"] = int(diff[0, 0]) if len(diff) else cfg.new_tokens
        rows[name] = r
        print(f"  {name:13s} done: ours {r['ours']:,.0f} tok/s")
    return {"config": asdict(cfg), "device": str(device), "torch": torch.__version__, "results": rows}


def print_table(res: dict):
    print("\n| benchmark | ours tok/s | transformers tok/s | ours / transformers | same greedy tokens | ours TFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in res["results"].items():
        ref = f"{r['transformers']:,.0f}" if r.get("transformers") else "-"
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "-"
        note = f"{r['agree']}/{res['config']['new_tokens']}" if "agree" in r else ""
        flops = f"{r['ours_tflops']:.3f}" if "ours_tflops" in r else ""
        print(f"| {name} | {r['ours']:,.0f} | {ref} | {ratio} | {note} | {flops} |")


def parse_args(argv=None) -> BenchConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    helps = {"preset": f"model size, one of {', '.join(PRESETS)}", "vocab_size": "vocabulary size",
             "batch_size": "training batch size", "seq_len": "training sequence length",
             "train_steps": "timed training steps per repeat", "warmup": "untimed warm-up runs",
             "repeats": "timed repeats, best kept", "prompt_len": "generation prompt tokens",
             "new_tokens": "generated tokens", "device": "cpu, cuda or cuda:N",
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
    for name in ("batch_size", "seq_len", "train_steps", "repeats", "prompt_len", "new_tokens"):
        if getattr(cfg, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return cfg


def main(argv=None):
    cfg = parse_args(argv)
    res = run_benchmarks(cfg)
    print_table(res)
    if cfg.out:
        out = Path(cfg.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(res, indent=2) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
