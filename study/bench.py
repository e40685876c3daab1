"""Speed and memory of model.Llama against transformers' LlamaForCausalLM holding the same
weights, in one run.

    python -m study.bench                                 # ~14M config, CPU: the README table
    python -m study.bench --device cuda                   # same on a GPU
    python -m study.bench --preset tinyllama-1.1b --device cuda   # 1B-class: bf16 MFU, memory
    python -m study.bench --train-steps 1 --repeats 1 --new-tokens 16   # quick smoke run
    python -m study.bench --out runs/bench.json           # also write the numbers as JSON
    python -m study.bench --only eval --no-reference      # one benchmark, ours alone
    python -m study.bench --bf16               # the bf16 rows even where bf16 is emulated (slow)
    python -m study.bench --main-job           # README's first command from an empty folder, timed
    python -m study.bench --main-job --main-job-args "--max-steps 5"   # with flags for train.py
    python -m study.bench --model runs/smollm2 --lora --only train-fp32 --batch-size 4 \
        --seq-len 256             # a LoRA step on SmolLM2: ours + lora.py vs transformers + peft
    python -m study.bench --compile            # train rows through torch.compile, both sides

Device, CPU threads and whether bf16 is native come from device.decide, the decision train.py makes
(--threads 0: measured), printed with its reasons beside the CPU model and torch's CPU kernel level.
Where bf16 is emulated (its matmul in that measurement under 1/4 of fp32's) the bf16 rows are
skipped unless --bf16; --no-bf16 skips them everywhere.

Measures (after --warmup untimed calls, best of --repeats timings; ours and transformers take
turns within each round, so other load on the machine hits both alike):
  train-fp32 / train-bf16  tokens/s of a full training step (forward, loss, backward, AdamW step)
                           on batch x seq_len random tokens; bf16 = torch.autocast, fp32 weights;
                           lr 0, so every benchmark sees the same weights on both sides.
                           MFU = tokens/s x model.flops_per_token (train.py's FLOP count) / peak.
  generate-fp32 / -bf16    greedy tokens/s, batch 1, prompt --prompt-len, --new-tokens new tokens,
                           weights in that dtype, KV cache on both sides; counts how many greedy
                           tokens agree.
  eval                     questions/s of generate.generate_responses (evaluate.py's batched,
                           left-padded, KV-cached greedy decoding) on --eval-questions XQuAD-style
                           German questions of a miniature world written to a temp dir with a
                           tokenizer of the model's vocabulary; transformers runs the same
                           function through a 5-line adapter; weights bf16 on CUDA, fp32 on CPU
                           (evaluate.py's --dtype auto); counts identical answers.
--model FOLDER: both sides hold that HF folder's weights (e.g. SmolLM2 from download.py --model)
instead of --preset's random ones; the eval benchmark then uses the folder's own tokenizer.
--lora: the train rows train LoRA adapters with train.py's defaults (r 8, alpha 16, dropout 0.05
on q_proj, v_proj; base frozen; AdamW over the adapters only): ours with lora.py, transformers with
peft.get_peft_model, each on its own copy of the model. MFU keeps train.py's FLOP count (6 x
weights, as train.py reports for LoRA runs), so for LoRA rows it compares the two sides, not the
hardware.
Peak FLOP/s for MFU: on CPU the best of a --peak-n square torch.matmul timed in this run (fp32, and
bf16 when its rows run), so MFU says how close a step gets to what this machine's matmul reaches; on
CUDA the stated dense bf16 peak (device.stated_bf16_peak, else measured) for bf16, the measured
fp32 matmul for fp32.
Peak memory (MB above what was allocated before the benchmark's first warm-up call, which is the
one measured: activations, gradients, optimizer state, KV cache, not the weights): CUDA
torch.cuda.max_memory_allocated; CPU the kernel's resident high-water mark (VmHWM, reset through
/proc/self/clear_refs after returning freed heap with malloc_trim), Linux with glibc only ('-'
elsewhere).
Add a benchmark by writing `make(model, cfg, device, ours) -> (closure, units per call)` and
listing it in BENCHES.

--main-job runs `python train.py --lang de` (plus --main-job-args) in an empty temp folder, where it
writes the world, tokenizer, base and x-LLaMA, and prints the total wall time, the base
pretraining's and CoIT's steps, wall time and tokens/s (their train_config.json "summary"), the
rest (world, tokenizer, data, export, samples), the CPU (model, torch's kernel level, the
AVX-512/AMX flags that decide bf16 speed, cores), torch, and the device line train.py printed.
Exit codes: 0, 2 for a bad flag (one line), 1 when a run fails, 130 on Ctrl-C.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import gc
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

import cli
import device
import generate as G
import lora
from checkpoint import load_model, read_config, save_model
from cli import Failed, UsageError, opt
from data import load_examples
from generate import generate_responses
from model import PRESETS, Llama
import tokenizer
from tokenizer import Tokenizer

PROG = "python -m study.bench"
# the /proc/cpuinfo flags that set fp32/bf16 matmul speed
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
MAIN_JOB = ("--lang", "de")  # README's first command: python train.py --lang de
# where it writes each phase
MAIN_JOB_RUNS = (("base pretraining", "runs/base"), ("CoIT", "runs/x-llama-de"))


@dataclass
class BenchConfig:
    preset: str = opt("bench-14m", "model size from model.PRESETS (bench-14m: dim 384, 6 layers, "
                                   "6 heads, ffn 1024)", choices=tuple(PRESETS))
    vocab_size: int = opt(0, "vocabulary size (0: the preset's own; bench-14m: 4096)",
                          range="[0, inf)")
    batch_size: int = opt(8, "training batch size", range="[1, inf)")
    seq_len: int = opt(256, "training sequence length", range="[1, inf)")
    train_steps: int = opt(2, "timed training steps per repeat", range="[1, inf)")
    warmup: int = opt(1, "untimed warm-up calls first (allocator, autotuning); the first one "
                         "measures memory", range="[1, inf)")
    repeats: int = opt(3, "timings per measurement; the best is kept", range="[1, inf)")
    prompt_len: int = opt(32, "generation prompt tokens", range="[1, inf)")
    new_tokens: int = opt(128, "generated tokens (greedy, no early stop)", range="[1, inf)")
    eval_questions: int = opt(16, "XQuAD-style questions per eval call", range="[1, inf)")
    eval_batch: int = opt(8, "prompts per generate_responses call (evaluate.py's default)",
                          range="[1, inf)")
    eval_new_tokens: int = opt(32, "eval answer tokens (evaluate.py uses 64 for QA)",
                               range="[1, inf)")
    peak_n: int = opt(2048, "size of the square matmul that measures the peak FLOP/s (x4 on CUDA)",
                      range="[1, inf)")
    device: str = opt("cpu", "cpu, cuda, cuda:N or auto")
    threads: int = opt(0, "torch CPU threads (0: measured by device.decide)", range="[0, inf)")
    bf16: bool | None = opt(None, "time the bf16 rows (default: only where bf16 is not emulated)")
    reference: bool = opt(True, "also time transformers' LlamaForCausalLM with the same weights")
    seed: int = opt(0, "seed for weights and inputs", range="[0, inf)")
    only: str = opt("", "comma-separated subset of the benchmarks train-fp32, train-bf16, "
                        "generate-fp32, generate-bf16, eval (empty: all)")
    out: str = opt("", "also write the results as JSON here")
    main_job: bool = opt(False, "time `python train.py --lang de` from an empty temp folder "
                                "instead of the benchmarks")
    main_job_args: str = opt("", "more train.py flags for --main-job, e.g. '--max-steps 5'")
    model: str = opt("", "HF LlamaForCausalLM folder whose weights both sides load instead of "
                         "--preset's random ones (e.g. runs/smollm2 from download.py --model)")
    lora: bool = opt(False, "train rows: LoRA adapters (train.py's defaults) instead of full "
                            "fine-tuning: ours with lora.py, transformers with peft")
    compile: bool = opt(False, "train rows: torch.compile each side's forward and loss (both "
                               "sides alike)")


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
        # freed heap back to the OS, so reuse shows as growth
        ctypes.CDLL("libc.so.6").malloc_trim(0)
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


def peak_tflops(cfg: BenchConfig, dev, bf16_rows: bool) -> dict:
    """{"fp32": ..., "bf16": ... (None without bf16 rows), "why": ...}: the peaks MFU divides by
    (see the docstring)."""
    # a GPU needs 8192^2 matrices to come near its peak
    n = cfg.peak_n * (4 if dev.type == "cuda" else 1)
    fp32 = matmul_tflops(dev, torch.float32, n)
    if dev.type == "cuda":
        gpu = torch.cuda.get_device_name(dev)
        stated = device.stated_bf16_peak(gpu)
        bf16 = stated or (matmul_tflops(dev, torch.bfloat16, n) if bf16_rows else None)
        said = f"bf16 {'stated dense' if stated else 'measured'} {bf16:g}, " if bf16 else ""
        why = f"{gpu}: {said}fp32 measured {fp32:.1f}"
        return {"fp32": fp32, "bf16": bf16, "why": why}
    bf16 = matmul_tflops(dev, torch.bfloat16, n) if bf16_rows else None
    why = (f"measured {n}^3 matmul on {torch.get_num_threads()} threads: fp32 {fp32:.3f}"
           + (f", bf16 {bf16:.3f}" if bf16_rows else ""))
    return {"fp32": fp32, "bf16": bf16, "why": why}


def decide(cfg: BenchConfig, shape: tuple[int, int]) -> tuple[device.Runtime, dict]:
    """device.decide's device and threads (the decision train.py makes), and the matmul FLOP/s it
    measured per dtype at the chosen thread count ({} on CUDA, where nothing is measured)."""
    kind, _, index = cfg.device.partition(":")
    seen = {}

    def measure(dtype, threads, shape, rows=128):  # the last call per dtype: the chosen threads
        seen[dtype] = device.matmul_flops(dtype, threads, shape, rows=rows)
        return seen[dtype]
    rt = device.decide(kind, "auto", cfg.threads, shape, local_rank=int(index or 0),
                       measure=measure)
    if rt.device.type == "cuda" and cfg.threads:
        torch.set_num_threads(cfg.threads)  # decide leaves the CPU threads alone on CUDA
    return rt, seen


def bf16_plan(cfg: BenchConfig, rt: device.Runtime, seen: dict) -> dict:
    """Is bf16 emulated here (CPU: its matmul under 1/device.EMULATED of fp32's in decide's
    measurement; CUDA: no native bf16), and do the bf16 rows run (--bf16 / --no-bf16, default:
    where native)."""
    if rt.device.type == "cuda":
        plan = {"emulated": not torch.cuda.is_bf16_supported(including_emulation=False)}
        what = "on this GPU"
    else:
        b, f = seen[torch.bfloat16], seen[torch.float32]
        plan = {"emulated": b < f / device.EMULATED, "bf16_gflops": b / 1e9, "fp32_gflops": f / 1e9}
        what = f"on this CPU (matmul {b / 1e9:.1f} GFLOP/s vs fp32 {f / 1e9:.1f})"
    plan["rows"] = not plan["emulated"] if cfg.bf16 is None else cfg.bf16
    if plan["emulated"]:
        print(f"bf16 is emulated {what}: " + ("timing the bf16 rows anyway (--bf16)"
                                              if plan["rows"]
                                              else "bf16 rows skipped (--bf16 times them)"))
    elif not plan["rows"]:
        print("bf16 rows skipped (--no-bf16)")
    return plan


def machine() -> dict:
    """What the figures were measured on: CPU model, torch's CPU kernel level, CPU flags, cores,
    torch."""
    flags = None
    with contextlib.suppress(OSError):
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        line = next((x for x in lines if x.startswith("flags")), None)
        flags = set(line.split(":", 1)[1].split()) if line else None
    return {"cpu": device.cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_flags": {f: None if flags is None else f in flags for f in CPU_FLAGS},
            "cores": device.available_cores(), "torch": torch.__version__}


def machine_line(m: dict) -> str:
    flags = ", ".join(f"{k} {'?' if v is None else 'yes' if v else 'no'}"
                      for k, v in m["cpu_flags"].items())
    return (f"CPU {m['cpu']} (torch CPU capability {m['cpu_capability']}; {flags}), "
            f"{m['cores']} cores, torch {m['torch']}")


def make_train(amp_dtype):
    """A benchmark: cfg.train_steps optimizer steps (forward, loss, backward, AdamW) on fixed
    random tokens; amp_dtype None = fp32, else torch.autocast to it."""
    def make(model, cfg: BenchConfig, device, ours: bool):
        if cfg.lora:
            model = with_lora(model, ours)
        V = model.config.vocab_size
        g = torch.Generator().manual_seed(cfg.seed)
        x = torch.randint(0, V, (cfg.batch_size, cfg.seq_len), generator=g).to(device)
        y = torch.randint(0, V, (cfg.batch_size, cfg.seq_len), generator=g).to(device)
        # lr 0: the full AdamW arithmetic runs, the weights stay equal on both sides for later
        # benchmarks
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.0,
                                weight_decay=0.0, fused=device.type == "cuda")

        def loss_of():
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32,
                                enabled=amp_dtype is not None):
                if ours:
                    return model(x, y)[1]
                logits = model(input_ids=x).logits   # the same loss as ours, same shifted targets
                return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))

        step_loss = torch.compile(loss_of) if cfg.compile else loss_of

        def run():
            model.train()
            for _ in range(cfg.train_steps):
                opt.zero_grad(set_to_none=True)
                step_loss().backward()
                opt.step()
            opt.zero_grad(set_to_none=True)  # gradients freed between calls, as after a real step
            return None
        return run, cfg.train_steps * cfg.batch_size * cfg.seq_len
    return make


def with_lora(model, ours: bool):
    """A copy of the model with LoRA adapters as train.py --lora makes them (lora.LoraConfig's
    defaults, base frozen): ours through lora.py, transformers' through peft with the same
    settings."""
    model, c = copy.deepcopy(model), lora.LoraConfig()
    if ours:
        lora.inject_lora(model, c)
        lora.freeze_base(model)
        return model
    import peft
    same = peft.LoraConfig(r=c.r, lora_alpha=c.alpha, lora_dropout=c.dropout,
                           target_modules=list(c.target_modules), task_type="CAUSAL_LM")
    return peft.get_peft_model(model, same)


def make_generate(dtype):
    """A benchmark: greedy generation, batch 1, cfg.prompt_len prompt, cfg.new_tokens new tokens,
    on a copy of the model in `dtype` (batch-1 decoding is bound by reading the weights)."""
    def make(model, cfg: BenchConfig, device, ours: bool):
        model = copy.deepcopy(model).to(dtype).eval()
        g = torch.Generator().manual_seed(cfg.seed + 1)
        prompt = torch.randint(3, model.config.vocab_size, (1, cfg.prompt_len), generator=g)
        prompt = prompt.to(device)

        @torch.no_grad()
        def run():
            if ours:
                return G.generate(model, prompt, cfg.new_tokens)      # a CUDA graph on CUDA
            return model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                  do_sample=False, max_new_tokens=cfg.new_tokens,
                                  min_new_tokens=cfg.new_tokens, eos_token_id=None,
                                  pad_token_id=0)
        return run, cfg.new_tokens
    return make


def hf_generate(hf, idx, max_new_tokens, temperature=0.0, eos_id=None, attention_mask=None):
    """transformers' generate in the place of generate.generate, for generate.generate_responses."""
    return hf.generate(idx, attention_mask=attention_mask, do_sample=False,
                       max_new_tokens=max_new_tokens, eos_token_id=eos_id, pad_token_id=eos_id)


class WorldTokenizer:
    """The miniature world's tokenizer for a model whose vocabulary may be larger: ids past the
    tokenizer's own (a random model emits them) decode to nothing."""
    def __init__(self, tok: Tokenizer):
        self.tok, self.bos_id, self.eos_id, self.pad_id = tok, tok.bos_id, tok.eos_id, tok.pad_id
        self.encode = tok.encode

    def decode(self, ids):
        return self.tok.decode([i for i in ids if i < self.tok.vocab_size])


def eval_prompts(cfg: BenchConfig, vocab_size: int) -> tuple[WorldTokenizer, list[str]]:
    """cfg.eval_questions XQuAD-de prompts of a miniature world (temp dir), longest first as in
    evaluate.run_task, and a sentencepiece tokenizer trained on its text (at most vocab_size)."""
    import world
    with tempfile.TemporaryDirectory() as tmp:
        d = world.write_world(Path(tmp) / "world", seed=cfg.seed, pretrain_chars=300_000,
                              alpaca=20, parallel=20, xquad_passages=-(-cfg.eval_questions // 4),
                              mlqa_passages=1, flores=2)
        tok = Tokenizer.train(sorted((d / "pretrain").glob("*.txt")),
                              Path(tmp) / "tokenizer.model", min(vocab_size, 4096), seed=cfg.seed)
        recs = load_examples("xquad", "de", d, limit=cfg.eval_questions)
    prompts = [tokenizer.format_prompt(r["instruction"], r["input"]) for r in recs]
    return WorldTokenizer(tok), sorted(prompts, key=len, reverse=True)


def make_eval(model, cfg: BenchConfig, device, ours: bool):
    """A benchmark: evaluate.py's batched greedy answers to cfg.eval_questions questions."""
    tok, prompts = eval_prompts(cfg, model.config.vocab_size)
    if cfg.model:  # a real model answers in its own tokens
        tok = WorldTokenizer(Tokenizer.from_folder(cfg.model))
    # [BOS] + the Alpaca prompt, as evaluate.py
    prompts = [tokenizer.prompt_ids(tok, p, "none") for p in prompts]
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = copy.deepcopy(model).to(dtype).eval()
    gen = G.generate if ours else hf_generate

    @torch.no_grad()
    def run():
        return [t for i in range(0, len(prompts), cfg.eval_batch)
                for t in generate_responses(model, tok, prompts[i:i + cfg.eval_batch],
                                            cfg.eval_new_tokens, device, gen)[0]]
    return run, len(prompts)


# name -> (unit, make(model, cfg, device, ours) -> (closure returning outputs or None, units per
# call))
BENCHES = {"train-fp32": ("tok/s", make_train(None)),
           "train-bf16": ("tok/s", make_train(torch.bfloat16)),
           "generate-fp32": ("tok/s", make_generate(torch.float32)),
           "generate-bf16": ("tok/s", make_generate(torch.bfloat16)),
           "eval": ("questions/s", make_eval)}


def reference_model(ours: Llama, device, folder: str = ""):
    """transformers' LlamaForCausalLM holding our weights (`folder`, else through a saved HF
    folder)."""
    from transformers import LlamaForCausalLM
    from transformers.utils import logging
    logging.disable_progress_bar()
    if folder:
        return LlamaForCausalLM.from_pretrained(folder, attn_implementation="sdpa",
                                                dtype=torch.float32).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(ours, Path(tmp) / "m")
        return LlamaForCausalLM.from_pretrained(Path(tmp) / "m",
                                                attn_implementation="sdpa").to(device)


def agreement(a, b, prompt_len: int) -> tuple[int, int]:
    """(agreeing, total): generated tokens before the first difference, or identical answers."""
    if isinstance(a, list):
        return sum(x == y for x, y in zip(a, b)), len(a)
    diff = (a.cpu() != b.cpu())[0, prompt_len:].nonzero()
    n = a.shape[1] - prompt_len
    return (int(diff[0, 0]) if len(diff) else n), n


def run_benchmarks(cfg: BenchConfig) -> dict:
    mcfg = read_config(Path(cfg.model) / "config.json") if cfg.model else \
        replace(PRESETS[cfg.preset], vocab_size=cfg.vocab_size or PRESETS[cfg.preset].vocab_size)
    rt, seen = decide(cfg, (mcfg.hidden_size, mcfg.intermediate_size))
    dev, host = rt.device, machine()
    print(f"device.decide: {rt.why}\n{machine_line(host)}")
    bf16 = bf16_plan(cfg, rt, seen)
    torch.manual_seed(cfg.seed)
    ours = load_model(cfg.model, dtype=torch.float32) if cfg.model else Llama(mcfg)
    ours = ours.to(dev)
    ref = None
    if cfg.reference:
        try:
            ref = reference_model(ours, dev, cfg.model)
        except ImportError:
            print("transformers not importable: timing ours only")
    peak = peak_tflops(cfg, dev, bf16["rows"])
    weights_mb = sum(p.numel() * p.element_size() for p in ours.parameters()) / 2**20
    print(f"{cfg.model or cfg.preset}{' + LoRA' if cfg.lora else ''}: "
          f"{ours.num_params() / 1e6:.1f}M params ({weights_mb:,.0f} MB fp32 each side), "
          f"batch {cfg.batch_size} x T {cfg.seq_len}, {torch.get_num_threads()} CPU threads\n"
          f"peak TFLOP/s for MFU: {peak['why']}")
    rows = {}
    models = {"ours": ours} if ref is None else {"ours": ours, "transformers": ref}
    for name, (unit, make) in BENCHES.items():
        if (cfg.only and name not in cfg.only.split(",")) or ("bf16" in name and not bf16["rows"]):
            continue
        made = {k: make(m, cfg, dev, k == "ours") for k, m in models.items()}
        best, mem = time_interleaved({k: fn for k, (fn, _) in made.items()}, cfg, dev)
        r = {"unit": unit, **{k: made[k][1] / best[k] for k in made},
             **{f"mem_{k}_mb": mem[k] for k in made}}
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
    return {"config": asdict(cfg), "device": str(dev), "device_why": rt.why,
            "threads": torch.get_num_threads(), **host, "bf16": bf16, "peak_tflops": peak,
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
    print("\n| benchmark | unit | ours | transformers | ours / transformers | same output "
          "| MFU ours / transformers | peak MB ours / transformers |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    mb = lambda v: "-" if v is None else f"{v:,.0f}"
    for name, r in res["results"].items():
        ref = f"{r['transformers']:,.1f}" if "transformers" in r else "-"
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        agree = "{}/{}".format(*r["agree"]) if "agree" in r else ""
        mfu = " / ".join(f"{100 * r[k]:.1f}%" for k in ("mfu_ours", "mfu_transformers") if k in r)
        mem = " / ".join(mb(r[k]) for k in ("mem_ours_mb", "mem_transformers_mb") if k in r)
        print(f"| {name} | {r['unit']} | {r['ours']:,.1f} | {ref} | {ratio} | {agree} | {mfu} "
              f"| {mem} |")
    for fam, d in res["bf16_over_fp32"].items():
        print(f"{fam}: bf16 / fp32 speed " + ", ".join(f"{k} {v:.2f}x" for k, v in d.items()))


# ----------------------------------------------------------------------------- --main-job
def run_train(cmd: list[str], cwd: Path) -> str:
    """Run train.py in cwd, echoing its stdout as it comes (stderr, the progress bar, passes
    through); its stdout."""
    lines = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if proc.returncode:
        raise Failed(f"--main-job: train.py exited with status {proc.returncode} (its output is "
                     "above)")
    return "".join(lines)


def main_job(cfg: BenchConfig) -> dict:
    """README's first command in an empty temp folder: its wall time in all, each phase's steps,
    wall time and tokens/s (from the train_config.json summaries), the machine and train.py's
    device lines."""
    train_py = Path(__file__).resolve().with_name("train.py")
    cmd = [sys.executable, str(train_py), *MAIN_JOB, *shlex.split(cfg.main_job_args)]
    with tempfile.TemporaryDirectory(prefix="bench-main-job-") as tmp:
        t0 = time.perf_counter()
        out = run_train(cmd, Path(tmp))
        wall = time.perf_counter() - t0
        phases = {}
        for name, run in MAIN_JOB_RUNS:
            f = Path(tmp) / run / "train_config.json"
            summary = json.loads(f.read_text()).get("summary") if f.is_file() else None
            if summary is None:
                raise Failed(f"--main-job: train.py left no finished {run}/train_config.json "
                             f"(check --main-job-args {cfg.main_job_args!r})")
            phases[name] = {"run": run,
                            **{k: summary[k] for k in ("steps", "wall_s", "tokens_per_s")}}
    rest = wall - sum(ph["wall_s"] for ph in phases.values())
    return {"command": " ".join(["python", "train.py", *cmd[2:]]), "wall_s": round(wall, 1),
            "phases": phases, "rest_s": round(rest, 1), **machine(),
            "device_lines": [x for x in out.splitlines()
                             if x.startswith("train:") and "device" in x]}


def print_main_job(res: dict):
    print(f"\nmain job: {res['command']}, from an empty folder\n\n"
          "| phase | steps | wall s | tokens/s |\n|---|---:|---:|---:|")
    for name, ph in res["phases"].items():
        print(f"| {name} ({ph['run']}) | {ph['steps']} | {ph['wall_s']:.1f} "
              f"| {ph['tokens_per_s']:,.0f} |")
    print(f"| the rest: world, tokenizer, data, export, samples | | {res['rest_s']:.1f} | |")
    print(f"| total | | {res['wall_s']:.1f} | |\n\n{machine_line(res)}")
    print("\n".join(res["device_lines"]))


# ----------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> BenchConfig:
    """The flags as a checked BenchConfig: a bad value is one UsageError naming its flag."""
    parser = cli.add_config_flags(cli.Parser(prog=PROG, doc=__doc__), BenchConfig)
    cfg = BenchConfig(**vars(parser.parse_args(argv)))
    cli.check_config(cfg)
    unknown = set(filter(None, cfg.only.split(","))) - set(BENCHES)
    if unknown:
        raise UsageError(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(BENCHES)}")
    if not re.fullmatch(r"cpu|auto|cuda(:\d+)?", cfg.device):
        raise UsageError(f"--device {cfg.device!r}: expected cpu, cuda, cuda:N or auto")
    if cfg.model and not (Path(cfg.model) / "config.json").is_file():
        raise UsageError(f"--model {cfg.model}: no config.json there (expected an HF LLaMA "
                         "folder, e.g. from download.py --model)")
    if cfg.model and cfg.vocab_size:
        raise UsageError("--vocab-size: the --model folder's config.json sets the vocabulary")
    if cfg.main_job_args and not cfg.main_job:
        raise UsageError("--main-job-args: only used with --main-job")
    try:
        shlex.split(cfg.main_job_args)
    except ValueError as e:
        raise UsageError(f"--main-job-args {cfg.main_job_args!r}: {e}") from None
    if cfg.out:
        cli.check_out(cfg.out)  # a folder or a file-as-parent: said now, not after the run
    return cfg


def main(argv=None) -> int:
    """Exit 0; 2 for a bad flag or a --device this machine lacks (one line); 1 when a run fails;
    130 on Ctrl-C (nothing is written before the end)."""
    def body():
        cfg = parse_args(argv)
        res = main_job(cfg) if cfg.main_job else run_benchmarks(cfg)
        (print_main_job if cfg.main_job else print_table)(res)
        if cfg.out:
            cli.write_atomic(cfg.out, json.dumps(res, indent=2) + "\n")
            print(f"wrote {cfg.out}")
    # a --device/--threads this machine cannot honour (device.DeviceError) is misuse too
    return cli.guard(PROG, body, usage=(device.DeviceError,))


if __name__ == "__main__":
    sys.exit(main())
