"""runs.py — the harness around train.py: a run's folder and the inputs it needs, made on first use.

`python train.py ...` is this file's `main`: train.py holds the training itself and reads only inputs
that exist; this file makes the rest, so that `python train.py --lang de` works on an empty machine.

- The run folder: `status` (finished / unfinished / empty) and `check_out` decide, before anything is
  read or written, whether the flags allow the run (a finished run is never overwritten without
  --overwrite; an unfinished one needs --resume or --overwrite). --overwrite removes the old run only
  after every input has been checked (`clear_run`, called by train.train once the model is built).
- The inputs: the miniature world (world.py, written when --data is the default and missing), the
  sentencepiece tokenizer of a pretraining run (trained aside, renamed in at export), the miniature base
  (pretrained once into --base-out and reused; a killed pretraining resumes), the tokenized examples.
  Under torchrun rank 0 makes each cached input first, and the other ranks then find it made.
- The end-of-run report: loss per data source, a sample translation and answer, how to talk to the model.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

import data as D
import device as DV
import evaluate
import parallel
import train as T
import world as W
from cli import Parser, UsageError, add_config_flags
from files import write_atomic
from model import PRESETS, Llama
from tokenizer import Tokenizer
from train import TrainConfig


# ----------------------------------------------------------------------------- flags, data and the run folder
def default_out(cfg: TrainConfig) -> str:
    return {"coit": f"runs/x-llama-{cfg.lang}", "muit": "runs/m-llama", "alpaca": "runs/alpaca-en",
            "pretrain": cfg.base_out}.get(cfg.recipe, f"runs/{cfg.recipe}-{cfg.lang}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Fill defaults and check every flag before anything is read or written; raise UsageError naming it."""
    if cfg.recipe not in T.RECIPES:
        raise UsageError(f"--recipe {cfg.recipe!r}: expected one of {', '.join(T.RECIPES)}")
    if cfg.lang not in D.LANGS or cfg.lang == "en":
        raise UsageError(f"--lang {cfg.lang!r}: expected one of {', '.join(D.LANGS[1:])}")
    bad = [x for x in cfg.langs.split(",") if x not in D.LANGS or x == "en"]
    if bad:
        raise UsageError(f"--langs: unknown language(s) {','.join(bad)}; expected from {','.join(D.LANGS[1:])}")
    if cfg.base is not None and not (Path(cfg.base) / "config.json").is_file():
        raise UsageError(f"--base {cfg.base}: no config.json there (expected an HF LLaMA checkpoint folder)")
    if cfg.allocation != "uniform" and not Path(cfg.allocation).is_file():
        raise UsageError(f"--allocation {cfg.allocation}: expected 'uniform' or a JSON file")
    if cfg.recipe == "pretrain" and cfg.arch not in PRESETS and not Path(cfg.arch).is_file():
        raise UsageError(f"--arch {cfg.arch!r}: expected one of {', '.join(PRESETS)} or a config.json file")
    at_least = dict(batch_size=1, grad_accum=1, max_len=2, log_every=1, save_every=1, max_steps=1, stop_after=1,
                    effective_batch=1, lora_r=1, vocab_size=300, n_alpaca=1, n_translation=0, budget=0, threads=0)
    for name, low in at_least.items():
        v = getattr(cfg, name)
        if v is not None and v < low:
            raise UsageError(f"--{name.replace('_', '-')} {v}: expected a whole number >= {low}")
    ranges = dict(epochs=(0, math.inf, "> 0"), lr=(0, math.inf, "> 0"), beta1=(0, 1, "in [0, 1)"),
                  beta2=(0, 1, "in [0, 1)"), lora_alpha=(0, math.inf, "> 0"))
    for name, (lo, hi, what) in ranges.items():
        v = getattr(cfg, name)
        if not (lo <= v < hi) or (what == "> 0" and v == 0):
            raise UsageError(f"--{name.replace('_', '-')} {v}: expected {what}")
    for name in ("lora_dropout", "warmup_ratio", "min_lr_ratio", "weight_decay", "grad_clip"):
        v = getattr(cfg, name)
        if not (0 <= v <= (1 if name in ("lora_dropout", "warmup_ratio", "min_lr_ratio") else math.inf)) \
                or (name in ("lora_dropout", "warmup_ratio") and v == 1):
            raise UsageError(f"--{name.replace('_', '-')} {v}: expected a value in "
                             + ("[0, 1)" if name in ("lora_dropout", "warmup_ratio") else
                                "[0, 1]" if name == "min_lr_ratio" else "[0, inf)"))
    if cfg.peak_tflops is not None and cfg.peak_tflops <= 0:
        raise UsageError(f"--peak-tflops {cfg.peak_tflops}: expected > 0")
    try:
        DV.canonical_dtype(cfg.dtype)
    except DV.DeviceError as e:
        raise UsageError(str(e)) from None
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device {cfg.device!r}: expected auto, cpu or cuda")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is visible to torch here; use --device cpu or auto")
    if cfg.preset is not None and cfg.preset not in T.PRESETS_TRAIN:
        raise UsageError(f"--preset {cfg.preset!r}: expected one of {', '.join(T.PRESETS_TRAIN)}")
    if cfg.fsdp and cfg.lora:
        raise UsageError("--fsdp shards full fine-tuning; it does not combine with --lora")
    return dataclasses.replace(cfg, out=cfg.out or default_out(cfg))


def check_data(cfg: TrainConfig) -> None:
    """The data folder must hold the files the recipe reads (one line naming what is missing)."""
    root = Path(cfg.data)
    if not root.is_dir():
        raise UsageError(f"--data {root}: folder not found")
    langs = cfg.langs.split(",") if cfg.recipe == "muit" else [cfg.lang]
    need = []
    if cfg.recipe == "pretrain":
        if not list((root / "pretrain").glob("*.txt")):
            need.append(root / "pretrain" / "<lang>.txt")
    else:
        if cfg.recipe != "trans_only":
            need.append(root / "alpaca" / "alpaca_en.json")
        for x in langs if cfg.recipe != "alpaca" else []:
            if cfg.recipe != "trans_only":
                need.append(root / "alpaca" / f"alpaca_{x}.json")
            if cfg.recipe not in ("instr_only",):
                need.append(root / "parallel" / f"en-{x}")
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise UsageError(f"--data {root}: missing {', '.join(missing)}")


def status(out: Path) -> str:
    """'finished', 'unfinished' (a resumable state exists) or 'empty'."""
    cfg_file = out / "train_config.json"
    if cfg_file.is_file():
        try:
            run = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UsageError(f"{cfg_file}: unreadable ({e}); remove it or pass another --out") from None
        if isinstance(run, dict) and run.get("status") == "finished":
            return "finished"
    return "unfinished" if (out / "resume" / "state.pt").is_file() else "empty"


def check_out(cfg: TrainConfig, out: Path) -> str:
    """What --out holds against what the flags allow: 'reuse' (return the finished run) or 'go'."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; expected a run folder (new or existing)")
    st = status(out)
    if st == "finished" and cfg.reuse and not cfg.overwrite:
        return "reuse"
    if st == "finished" and not cfg.overwrite:
        raise UsageError(f"--out {out}: holds a finished run; pass --overwrite to replace it")
    if st == "unfinished" and not (cfg.resume or cfg.overwrite):
        raise UsageError(f"--out {out}: holds an unfinished run; pass --resume to continue or --overwrite")
    if cfg.resume and st != "unfinished":
        raise UsageError(f"--resume: no resumable state at {out / 'resume' / 'state.pt'}")
    if st == "empty" and out.is_dir() and any(out.iterdir()) and not (out / "train_config.json").is_file():
        raise UsageError(f"--out {out}: a folder that holds something other than a train.py run; "
                         "choose another --out")
    return "go"


def clear_run(out: Path) -> None:
    """--overwrite: remove what a previous run wrote."""
    for name in ("resume", "adapter"):
        shutil.rmtree(out / name, ignore_errors=True)
    for f in out.glob("*"):
        if f.is_file():
            f.unlink()


# ----------------------------------------------------------------------------- world, tokenizer, base
def ensure_world(data_dir: str | Path = "runs/world", seed: int = 0, **size_flags) -> Path:
    """Write the miniature world into data_dir unless it is there (written to a temp dir, then renamed)."""
    data_dir = Path(data_dir)
    if (data_dir / "WORLD.json").is_file():
        return data_dir
    tmp = data_dir.with_name(f".{data_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    W.write_world(tmp, seed=seed, **size_flags)
    shutil.rmtree(data_dir, ignore_errors=True)
    os.replace(tmp, data_dir)
    return data_dir


def ensure_tokenizer(data_dir: Path, out_path: Path, vocab_size: int, seed: int = 0) -> Tokenizer:
    """Sentencepiece on the world's pretraining text + every Alpaca field, all languages (cached)."""
    if out_path.is_file():
        return Tokenizer(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    corpus = out_path.with_name(out_path.stem + "_corpus.txt")
    lines = []  # the text the model sees: Alpaca examples inside the prompt template (so it is cheap)
    for f in sorted((data_dir / "alpaca").glob("alpaca_*.json")):
        lines += [D.format_prompt(ex["instruction"], ex["input"]) + " " + ex["output"] for ex in D.read_alpaca(f)]
    write_atomic(corpus, "\n".join(x.replace("\n", " ") for x in lines) + "\n")
    files = sorted(str(p) for p in (data_dir / "pretrain").glob("*.txt")) + [str(corpus)]
    try:
        return Tokenizer.train(files, out_path, vocab_size, seed)
    finally:
        corpus.unlink(missing_ok=True)


def ensure_base(data_dir: str | Path = "runs/world", out: str | Path = "runs/base", distributed: bool = False,
                **overrides) -> Path:
    """The miniature English-dominant base (tokenizer + pretraining), trained once and reused;
    a killed pretraining resumes. `overrides` change BASE_PRETRAIN / TrainConfig fields."""
    out = Path(out)
    cfg = TrainConfig(**{**T.BASE_PRETRAIN, **overrides, "data": str(data_dir), "out": str(out)})
    return train(dataclasses.replace(cfg, reuse=True, resume=status(out) == "unfinished"), distributed)

def prepare(cfg: TrainConfig, rank: int, world: int) -> T.Inputs:
    """Everything the run reads, checked before anything in --out is touched: the world (written when
    missing), the base (pretrained when missing), the tokenizer and the tokenized examples."""
    def once(fn):  # rank 0 does the cached work first, the others then find it done
        r = fn() if rank == 0 else None
        if world > 1:
            dist.barrier()
        return r if rank == 0 else fn()

    if cfg.data == TrainConfig.data:
        once(lambda: ensure_world(cfg.data))
    check_data(cfg)
    out = Path(cfg.out)
    if cfg.recipe == "pretrain":  # the tokenizer is part of the run: trained aside, renamed in at export
        base, tok_path = None, out / "tokenizer.model"
        if not tok_path.is_file() or cfg.overwrite:
            tok_path = out.with_name(f".{out.name}.tokenizer.model")
            if cfg.overwrite and rank == 0:
                tok_path.unlink(missing_ok=True)
            once(lambda: ensure_tokenizer(Path(cfg.data), tok_path, cfg.vocab_size, cfg.seed))
        tok = Tokenizer(tok_path)
    else:
        inherit = {k: getattr(cfg, k) for k in ("seed", "device", "dtype", "threads", "progress", "log_every")}
        base = Path(cfg.base) if cfg.base else once(lambda: ensure_base(cfg.data, cfg.base_out, **inherit))
        if Tokenizer.find(base) is None:
            raise UsageError(f"--base {base}: no tokenizer.model or tokenizer.json there")
        tok = Tokenizer.from_folder(base)
    encoded = T.pretrain_examples(Path(cfg.data), tok, cfg.max_len) if cfg.recipe == "pretrain" \
        else T.sft_examples(cfg, tok)
    return T.Inputs(base, tok, encoded)


def train(cfg: TrainConfig, distributed: bool = True) -> Path:
    """The whole run as `python train.py` does it: check the flags and --out, make or check every input,
    then train.train; return the finished checkpoint folder (or --out after --stop-after).
    Under torchrun every rank calls this; distributed=False trains in this process alone."""
    cfg = validate(cfg)
    out = Path(cfg.out)
    if check_out(cfg, out) == "reuse":
        return out
    rank, world, local, own_pg = parallel.setup(cfg.device) if distributed else (0, 1, 0, False)
    try:
        inputs = prepare(cfg, rank, world)
        # every input has been read and checked: only now is an --overwrite'd run removed
        before_write = (lambda: clear_run(out)) if cfg.overwrite else None
        out, model = T.train(cfg, inputs, rank, world, local, before_write)
        if model is not None and cfg.samples and cfg.recipe != "pretrain":
            report(model, cfg, inputs.tokenizer, inputs.examples, out, inputs.base)
    finally:
        if own_pg:
            dist.destroy_process_group()
    return out


# ----------------------------------------------------------------------------- the end-of-run report
@torch.no_grad()
def source_losses(model: Llama, encoded: list[dict], pad_id: int, n: int = 64, bs: int = 16,
                  progress: bool = False) -> dict:
    """Mean loss per target token for each (source, lang) over its first n training examples."""
    groups: dict[str, list[dict]] = {}
    for ex in encoded:
        groups.setdefault(f"{ex['source']}/{ex['lang']}", []).append(ex)
    device = next(model.parameters()).device
    batches = [(key, exs[:n][i:i + bs]) for key, exs in sorted(groups.items()) for i in range(0, min(n, len(exs)), bs)]
    model.eval()
    sums: dict[str, list] = {}
    for key, mb in tqdm(batches, desc="final loss", disable=not progress, leave=False):
        mb = D.make_batch(mb, pad_id)
        _, loss = model(mb["idx"].to(device), mb["targets"].to(device), reduction="sum")
        acc = sums.setdefault(key, [0.0, 0])                  # [summed loss, target tokens]
        acc[0], acc[1] = acc[0] + loss.item(), acc[1] + int((mb["targets"] != D.IGNORE_INDEX).sum())
    res = {key: tot / cnt for key, (tot, cnt) in sums.items()}
    model.train()
    return res


@torch.no_grad()
def complete(model: Llama, tok: Tokenizer, ex: dict, device, max_new_tokens: int = 64) -> str:
    """Greedy response to one Alpaca-style example."""
    model.eval()
    ids = [tok.bos_id] + tok.encode(D.format_prompt(ex["instruction"], ex["input"]))
    outp = model.generate(torch.tensor([ids], device=device), max_new_tokens, eos_id=tok.eos_id)
    model.train()
    return tok.decode(outp[0, len(ids):].tolist()).strip()


def report(model: Llama, cfg: TrainConfig, tok: Tokenizer, encoded: list[dict], out: Path, base: Path | None) -> None:
    """The end of a run: where the model is, the final loss per data source, a sample translation and
    answer (greedy), the closed-book check against the base, and the command to talk to it."""
    print(f"model: {out}  (load with Llama.from_pretrained or transformers.AutoModelForCausalLM)")
    device = next(model.parameters()).device
    for key, v in source_losses(model, encoded, tok.pad_id, progress=cfg.progress).items():
        print(f"final loss {key:<22} {v:.4f}")
    lang = cfg.langs.split(",")[0] if cfg.recipe == "muit" else cfg.lang
    try:
        src, ref = D.read_flores(cfg.data, "en")[0], D.read_flores(cfg.data, lang)[0]
        ex = D.translation_example(src, "", "en", lang)
        print(f"sample translation en->{lang}\n  source: {src}\n  model:  {complete(model, tok, ex, device)}"
              f"\n  ref:    {ref}")
        qa = D.read_squad(D.xquad_path(cfg.data, lang))[0]
        ex = D.qa_example(qa["context"], qa["question"], lang)
        print(f"sample answer ({lang} XQuAD)\n  question: {qa['question']}\n  model:    "
              f"{complete(model, tok, ex, device)}\n  gold:     {qa['answers'][0]}")
    except (FileNotFoundError, ValueError, IndexError) as e:
        print(f"(no sample: {e})")
    closed_book(model, tok, cfg.data, lang, base, device)
    ask = D.translation_example("", "", "en", lang)["instruction"]
    print(f'talk to it:  python generate.py --model {out} --input "The favorite color of Mira is blue." "{ask}"')


@torch.no_grad()
def closed_book(model: Llama, tok: Tokenizer, data_dir, lang: str, base: Path | None, device) -> None:
    """The paper's premise in one look (the world's encyclopedia, docs/world.md): a question in `lang` about
    a fact stated only in English pretraining, then the held-out closed-book score (evaluate.py --task
    closedbook, greedy) of this model beside the base's. Skipped when the data has no closed-book test."""
    try:
        recs = evaluate.load_examples("closedbook", lang, data_dir)
    except (FileNotFoundError, ValueError):
        return
    if not recs or base is None:
        return

    def answers(m: Llama) -> list[str]:
        m.eval()
        got = []
        for i in range(0, len(recs), 16):
            ids = [evaluate.prompt_ids(r, tok, "alpaca", base) for r in recs[i:i + 16]]
            got += evaluate.generate_responses(m, tok, ids, 16, device)[0]
        return got

    mine = answers(model)
    model.train()
    theirs = answers(Llama.from_pretrained(base, dtype=next(model.parameters()).dtype, device=device))
    score = lambda preds: evaluate.score_closedbook([{**r, "prediction": p} for r, p in zip(recs, preds)], lang)
    s, b = score(mine), score(theirs)
    q = recs[0]
    print(f"closed-book ({lang}; the fact is stated only in English pretraining: {q['entity']} -> {q['answer_en']})\n"
          f"  question: {q['question']}\n  model:    {mine[0]}\n  gold:     {q['answers'][0]}")
    print(f"held-out closed-book QA in {lang}, {len(recs)} facts: this model {s['contain']:.1f} %, the base "
          f"{b['contain']:.1f} % (containment; chance {s['chance']:.1f} %, the right fact in English "
          f"{s.get('right_in_en', 0.0):.1f} %)")


# ----------------------------------------------------------------------------- command line
def build_parser() -> Parser:
    p = Parser(prog="train.py", description=T.__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=T.__doc__.split("\n\n", 1)[1])
    return add_config_flags(p, TrainConfig)


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """Defaults, then the --preset's values, then the flags given explicitly."""
    args = vars(build_parser().parse_args(argv))
    kw = dataclasses.asdict(TrainConfig())
    if args.get("recipe") == "pretrain":  # the same run as ensure_base()
        kw.update(T.BASE_PRETRAIN)
    if args.get("preset") is not None:
        if args["preset"] not in T.PRESETS_TRAIN:
            raise UsageError(f"--preset {args['preset']!r}: expected one of {', '.join(T.PRESETS_TRAIN)}")
        kw.update(T.PRESETS_TRAIN[args["preset"]])
    kw.update(args)
    return TrainConfig(**kw)


def main(argv: list[str] | None = None) -> int:
    try:
        train(config_from_args(argv))
    except (UsageError, D.DataError) as e:  # bad flag or input file
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    except T.Interrupted as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before the loop started: nothing of this run is lost
        print("train.py: interrupted before training started", file=sys.stderr)
        return 130
    except (T.NonFiniteLoss, RuntimeError, OSError) as e:  # OSError: e.g. the disk filled up while saving
        print(f"train.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
