"""Benchmarks of the x-LLaMA paper for one checkpoint (XQuAD, MLQA, Flores-101, and the world's
closed-book, cloze and instruct tests), and `score`, which scores files without a model. The
metrics and their rules: metrics.py; what is reported and measured: docs/evaluation.md.

    python evaluate.py --model runs/x-llama-de --task xquad --lang de --data runs/world --limit 50
    python evaluate.py --model runs/x-llama-de --task flores --lang de --direction en-X
    python evaluate.py --model runs/x-llama-de --task all --lang de      # paper-style table
    python evaluate.py --model runs/x-llama-de --task closedbook --lang de  # held-out facts
    python evaluate.py --model runs/base --task cloze --lang en          # does the base store them?
    python evaluate.py --model runs/x-llama-de --task instruct --lang de # answers in German?
    python evaluate.py score --metric bleu --hyp hyp.txt --ref ref.txt [--tokenize 13a|zh|spm:PATH]
    python evaluate.py score --metric chrf --hyp hyp.txt --ref ref.txt [--word-order 2] [--json]

The records come from data.load_examples; generation is greedy, batched and KV-cached
(generate.generate_responses) on the paper's prompts (tokenizer.prompt_ids). Writes
OUT/predictions.jsonl (original fields + `prediction`), OUT/scores.json and the resolved
OUT/eval_config.json (default OUT: MODEL/eval/<task>-<lang>[-<direction>]); the same command
resumes. --lang defaults to the model's (its train_config.json); device, dtype and threads come
from device.decide. Bad flags or input files: one line, exit 2, before anything is generated.
instruct: the last data.HELD_OUT instructions of DATA/alpaca/alpaca_<lang>.json, scored by the
share of responses written in <lang> (not part of --task all). `score` takes text files (one
example a line; QA golds TAB-separated) or a predictions.jsonl written here, as --hyp and --ref.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

import checkpoint
import cli
import data
import device
import generate as G
import metrics
import tokenizer
from cli import Parser, add_config_flags, guard, opt, write_atomic
from data import LANGS
from metrics import (QA_LANGS, SMOOTH_DEFAULTS, VERSION, chrf, containment, corpus_bleu,
                     extract_answer, get_tokenizer, mlqa_em_f1, qa_chance, score_closedbook,
                     score_qa, score_translation, squad_em_f1)
from tokenizer import Tokenizer

# labels a response may start with: Alpaca's section names and our QA prompts' answer labels
ANSWER_LABELS = metrics.ANSWER_LABELS + tuple(p["answer"] for p in data.QA_PROMPTS.values())


# --------------------------------------------------------------------------- model-based evaluation
TASKS = ("xquad", "mlqa", "flores", "closedbook", "cloze", "instruct", "all")


@dataclass
class EvalConfig:
    model: str = opt(None, "checkpoint folder (config.json, model.safetensors, tokenizer.model or "
                           "tokenizer.json)", required=True)
    task: str = opt("xquad", "benchmark (closedbook: the world's held-out facts, no context; "
                             "cloze: the base completes them; instruct: held-out Alpaca "
                             "instructions in X, scored by the responses' language)",
                    choices=TASKS)
    lang: str | None = opt(None, "language X (--task all: comma list); default: the model's, from "
                                 "its train_config.json")
    direction: str = opt("en-X", "Flores translation direction", choices=("en-X", "X-en"))
    passage: bool = opt(True, "QA: show the passage; --no-passage is the control (the same "
                              "questions without it: reading is the gap between the two)")
    data: str = opt("runs/world", "data folder (../shared/data for the real benchmarks)")
    limit: int | None = opt(None, "evaluate the first N examples only", range="[1, inf)")
    batch_size: int = opt(8, "prompts per generation batch (left-padded)", range="[1, inf)")
    max_new_tokens: int | None = opt(None, "generation length (64 QA, 256 Flores, 16 closedbook, "
                                           "8 cloze)", range="[1, inf)")
    out: str | None = opt(None, "output folder (MODEL/eval/<task>-<lang>[-<direction>|-nopassage])")
    spm: str | None = opt(None, "sentencepiece model for spBLEU (the checkpoint's tokenizer.model)")
    device: str = opt("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    dtype: str = opt("auto", "weights dtype: auto, fp32, bf16 or fp16; auto: bf16 on CUDA, on the "
                             "CPU bf16 only where measured faster (device.py)")
    threads: int = opt(0, "CPU threads (0: measured, see device.py)", range="[0, inf)")
    template: str = opt("alpaca", "prompt template: alpaca (the paper's), chat (the model folder's "
                                  "chat template), none", choices=tokenizer.TEMPLATES)


def prompt_of(r: dict) -> str:
    """The text the model continues: the Alpaca prompt, or a cloze's raw English prefix."""
    return r["prompt"] if "prompt" in r else tokenizer.format_prompt(r["instruction"], r["input"])


def prompt_ids(r: dict, tok, template: str, folder) -> list[int]:
    """prompt_of in token ids: the example in the prompt template (tokenizer.prompt_ids), or BOS and
    the raw prefix."""
    if "prompt" in r:
        return [tok.bos_id] + tok.encode(r["prompt"])
    return tokenizer.prompt_ids(tok, r["instruction"], template, folder, r["input"])


def check_config(cfg: EvalConfig) -> None:
    """The flags that need no checkpoint: one line each, before anything is read, written or
    generated (ranges and choices: cli.check_config)."""
    cli.check_config(cfg)
    device.canonical_dtype(cfg.dtype)
    if cfg.out is not None and Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise ValueError(f"--out {cfg.out}: is an existing file; expected a folder (new, or one "
                         "to resume)")
    if cfg.spm is not None:
        if not Path(cfg.spm).is_file():
            raise ValueError(f"--spm {cfg.spm}: file not found")
        try:
            get_tokenizer(f"spm:{cfg.spm}")  # loads it: a bad model fails now, not after generating
        except ValueError:
            raise ValueError(f"--spm {cfg.spm}: not a sentencepiece model") from None


def _check_checkpoint(model_dir: Path) -> None:
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a checkpoint folder (no config.json)")
    if Tokenizer.find(model_dir) is None:
        raise FileNotFoundError(f"{model_dir}: no tokenizer.model or tokenizer.json in the "
                                "checkpoint folder")


def _runtime(cfg: EvalConfig, loaded: dict) -> device.Runtime:
    """device.decide once per run (run_all's tasks share it), at the checkpoint's shapes."""
    if "rt" not in loaded:
        c = checkpoint.read_config(Path(cfg.model) / "config.json")
        loaded["rt"] = device.decide(cfg.device, cfg.dtype, cfg.threads,
                                     shape=(c.hidden_size, c.intermediate_size))
        print(loaded["rt"].why)
    return loaded["rt"]


def _load_model(model_dir: Path, rt: device.Runtime):
    """The checkpoint cast to the decided dtype on the decided device, and its tokenizer."""
    _check_checkpoint(model_dir)
    model = checkpoint.load_model(model_dir, dtype=rt.torch_dtype, device=rt.device).eval()
    return model, Tokenizer.from_folder(model_dir).check_fits(model.config.vocab_size)


def default_langs(model_dir: Path) -> str:
    """The languages a checkpoint was trained for, from its train_config.json (muit: `langs`)."""
    path = Path(model_dir) / "train_config.json"
    if not path.is_file():
        raise ValueError(f"--lang not given and {path} does not exist to tell the model's language")
    tc = json.loads(path.read_text(encoding="utf-8"))
    langs = tc.get("langs") if tc.get("recipe") == "muit" else tc.get("lang")
    if not langs:
        raise ValueError(f"--lang not given and {path} has no 'lang'/'langs' field")
    return langs


# Settings that change the predictions: resuming under different ones would mix two experiments.
_RESUME_KEYS = ("model", "weights", "task", "lang", "direction", "data", "max_new_tokens", "dtype")


def weights_fingerprint(model_dir: Path) -> str:
    """Cheap content fingerprint of a checkpoint's weights (size + first/last 64 KiB of each
    file), so a retrained model in the same folder does not resume the old one's predictions."""
    h = hashlib.sha256()
    for f in sorted(Path(model_dir).glob("*.safetensors")) + sorted(Path(model_dir).glob("*.bin")):
        size = f.stat().st_size
        with f.open("rb") as fh:
            h.update(f"{f.name}:{size}".encode() + fh.read(1 << 16))
            fh.seek(max(0, size - (1 << 16)))
            h.update(fh.read())
    return h.hexdigest()[:16]


def _check_resume(out: Path, resolved: dict) -> None:
    """Save the resolved config beside the outputs; refuse to resume predictions made with other
    settings."""
    path = out / "eval_config.json"
    if path.is_file():
        try:  # unreadable: nothing to compare with, so refuse rather than overwrite it
            old = json.loads(data.read_text(path, allow_empty=True))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: unreadable JSON ({e.msg} at line {e.lineno}); "
                             "delete it or use another --out") from None
        if not isinstance(old, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(old).__name__}; "
                             "delete it or use another --out")
        # older files spell the dtype as torch does
        old["dtype"] = device.ALIASES.get(old.get("dtype"), old.get("dtype"))
        diff = [k for k in _RESUME_KEYS if str(old.get(k)) != str(resolved.get(k))]
        if diff and any((out / f).is_file()
                        for f in ("predictions.jsonl", "predictions.partial.jsonl")):
            was = ", ".join(f"{k}={old.get(k)}, now {resolved.get(k)}" for k in diff)
            raise ValueError(f"{out}: holds predictions made with other {', '.join(diff)} ({was}); "
                             "use another --out or delete it")
    write_atomic(path, json.dumps(resolved, indent=2) + "\n")


def run_task(cfg: EvalConfig, loaded: dict | None = None) -> dict:
    """One benchmark for one language: generate what is missing from OUT/predictions.jsonl, then
    score. The model is loaded only when something is missing (into `loaded`, shared by run_all)."""
    model_dir = Path(cfg.model)
    check_config(cfg)  # bad input fails before loading, writing or generating anything
    recs = data.load_examples(cfg.task, cfg.lang, cfg.data, cfg.direction, cfg.limit, cfg.passage)
    _check_checkpoint(model_dir)
    loaded = {} if loaded is None else loaded
    rt = _runtime(cfg, loaded)
    name = f"{cfg.task}-{cfg.lang}" + (f"-{cfg.direction}" if cfg.task == "flores" else "") \
        + ("" if cfg.passage or cfg.task not in ("xquad", "mlqa") else "-nopassage")
    out = Path(cfg.out) if cfg.out else model_dir / "eval" / name
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is an existing file; expected an output folder (--out)")
    out.mkdir(parents=True, exist_ok=True)
    final, partial = out / "predictions.jsonl", out / "predictions.partial.jsonl"
    max_new = cfg.max_new_tokens if cfg.max_new_tokens is not None else \
        {"flores": 256, "closedbook": 16, "cloze": 8}.get(cfg.task, 64)
    # the resolved dtype, not "auto": a resumed run on another machine must not mix two dtypes
    _check_resume(out, {**asdict(cfg), "max_new_tokens": max_new,
                        "weights": weights_fingerprint(model_dir), "dtype": rt.dtype,
                        "device": str(rt.device), "threads": rt.threads})
    kept = cli.read_jsonl(final) + cli.read_jsonl(partial)
    done = {r["id"]: r for r in kept if "prediction" in r}
    truncated = _predict(cfg, recs, done, partial, name, max_new, loaded)
    rows = [done[r["id"]] for r in recs]
    write_atomic(final, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    partial.unlink(missing_ok=True)
    scores = _score(cfg, rows, model_dir)
    scores.update(task=cfg.task, lang=cfg.lang,
                  direction=cfg.direction if cfg.task == "flores" else None, model=str(model_dir),
                  data=str(cfg.data), limit=cfg.limit, max_new_tokens=max_new,
                  prompts_truncated=truncated)
    write_atomic(out / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    print_table([scores])
    print(f"wrote {final} and {out / 'scores.json'}")
    return scores


def _predict(cfg: EvalConfig, recs: list[dict], done: dict, partial: Path, name: str,
             max_new: int, loaded: dict) -> int:
    """Generate the records missing from `done` (sorted by length, so a batch pads little), each
    batch appended to `partial`; returns how many prompts were truncated."""
    model_dir = Path(cfg.model)
    todo = sorted((r for r in recs if r["id"] not in done), key=lambda r: -len(prompt_of(r)))
    if todo and "model" not in loaded:
        loaded["model"], loaded["tok"] = _load_model(model_dir, loaded["rt"])
    model, tok = loaded.get("model"), loaded.get("tok")
    if done:
        print(f"{partial.parent}: resuming, {sum(r['id'] in done for r in recs)} of {len(recs)} "
              "already predicted")
    truncated, qa = 0, cfg.task not in ("flores", "instruct")
    bar = tqdm(total=len(todo), desc=name, unit="ex")
    with partial.open("a", encoding="utf-8") as f, bar:
        for i in range(0, len(todo), cfg.batch_size):
            batch = todo[i:i + cfg.batch_size]
            prompts = [prompt_ids(r, tok, cfg.template, model_dir) for r in batch]
            texts, cut = G.generate_responses(model, tok, prompts, max_new, loaded["rt"].device)
            truncated += cut
            for r, t in zip(batch, texts):
                rec = {k: v for k, v in r.items() if k not in ("instruction", "input", "prompt")}
                rec["prediction"] = t if cfg.task != "cloze" else \
                    re.split(r"[.!?\n]", t, maxsplit=1)[0].strip()  # the first sentence
                if qa:
                    rec["answer"] = extract_answer(t, ANSWER_LABELS)
                done[r["id"]] = rec
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(batch))
    return truncated


def _score(cfg: EvalConfig, rows: list[dict], model_dir: Path) -> dict:
    """QA: metrics.score_qa beside qa_chance; Flores: metrics.score_translation (spBLEU with the
    checkpoint's tokenizer.model unless --spm); closedbook, cloze: score_closedbook; instruct:
    lang_rate, the share of responses written in the language."""
    preds = [r["prediction"] for r in rows]
    if cfg.task in ("closedbook", "cloze"):
        return score_closedbook(rows, cfg.lang)
    if cfg.task == "instruct":
        rate = metrics.percent(metrics.language_rate(preds, cfg.lang))
        return {"n": len(preds), "lang_rate": rate, "metric_note":
                f"lang_rate = share of the decidable responses written in {cfg.lang}"}
    if cfg.task != "flores":
        golds = [r["answers"] for r in rows]
        return {**score_qa(preds, golds, cfg.lang, ANSWER_LABELS),
                "chance": qa_chance([r["question"] for r in rows], golds, cfg.lang)}
    spm = model_dir / "tokenizer.model"
    spm_path = cfg.spm or (str(spm) if spm.is_file() else None)
    return score_translation(preds, [r["reference"] for r in rows], rows[0]["tgt_lang"], spm_path)


def evaluate(model_dir, task, lang, data_dir, direction="en-X", limit=None, batch_size=8,
             out_dir=None, **kw) -> dict:
    """Library entry point (scaling.py, reproduce.py). One task -> its scores dict; task "all" ->
    {"<task>-<lang>[-<direction>]": scores} for every benchmark present in data_dir."""
    return run(EvalConfig(model=str(model_dir), task=task, lang=lang, data=str(data_dir),
                          direction=direction, limit=limit, batch_size=batch_size,
                          out=None if out_dir is None else str(out_dir), **kw))


def run(cfg: EvalConfig) -> dict:
    """run_all or run_task, --lang defaulting to the model's (after the flags are checked)."""
    check_config(cfg)  # before default_langs reads the checkpoint
    if cfg.lang is None:
        cfg.lang = default_langs(cfg.model)
    return run_all(cfg) if cfg.task == "all" else run_task(cfg)


def run_all(cfg: EvalConfig) -> dict:
    """Every benchmark available in cfg.data for each language of cfg.lang (comma-separated)."""
    check_config(cfg)
    langs = [l.strip() for l in cfg.lang.split(",") if l.strip()]
    for l in langs:
        if l not in LANGS:
            raise ValueError(f"--lang {l!r}: expected one of {', '.join(LANGS)}")
    _check_checkpoint(Path(cfg.model))  # before the loop turns missing files into "skipped"
    loaded, results = {}, {}
    _runtime(cfg, loaded)
    for l in langs:
        flores = [("flores", "en-X"), ("flores", "X-en")] if l != "en" else []
        for task, d in [("xquad", "en-X"), ("mlqa", "en-X")] + flores:
            key = f"{task}-{l}" + (f"-{d}" if task == "flores" else "")
            sub = EvalConfig(**{**asdict(cfg), "task": task, "lang": l, "direction": d,
                                "out": None if cfg.out is None else str(Path(cfg.out) / key)})
            try:
                results[key] = run_task(sub, loaded)
            except FileNotFoundError as e:  # this benchmark's file is not in --data
                print(f"skipped {task} {l}: {e}")
    print_paper_table(results, langs)
    return results


# ------------------------------------------------------------------------------------------- tables
def print_table(rows: list[dict]) -> None:
    cols = ["task", "lang", "direction", "n", "contain", "em", "f1", "bleu", "chrf++", "spbleu",
            "lang_rate", "chance", "majority", "right_in_en"]
    cols = [c for c in cols if any(r.get(c) is not None for r in rows)]
    cell = lambda v: f"{v:.2f}" if isinstance(v, float) else ("" if v is None else str(v))
    table = [cols] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def print_paper_table(results: dict, langs: list[str]) -> None:
    """Rows = languages, columns as the paper's: XQuAD / MLQA containment, Flores BLEU both ways."""
    heads = [("xquad-{}", "contain", "XQuAD acc"), ("mlqa-{}", "contain", "MLQA acc"),
             ("flores-{}-en-X", "bleu", "Flores en→X BLEU"),
             ("flores-{}-X-en", "bleu", "Flores X→en BLEU")]
    print("\n| lang | " + " | ".join(h for _, _, h in heads) + " |\n" + "|---" * (len(heads) + 1)
          + "|")
    for l in langs:
        vals = [results.get(key.format(l)) for key, _, _ in heads]
        print(f"| {l} | " + " | ".join("-" if r is None else f"{r[m]:.2f}"
                                       for r, (_, m, _) in zip(vals, heads)) + " |")


# ------------------------------------------------------------------------------------- command line
SCORE_METRICS = ("bleu", "chrf", "squad", "mlqa", "contain")


def score_files(metric: str, hyp: str, ref: str, lang: str | None = None,
                tokenize: str | None = None, word_order: int = 0, smooth: str = "exp",
                effective_order: bool = False) -> dict:
    """`python evaluate.py score ...` as a function: {"metric", "score", "signature", ...}."""
    qa = metric in ("squad", "mlqa", "contain")
    if metric not in SCORE_METRICS:
        raise ValueError(f"--metric {metric!r}: expected bleu, chrf, squad, mlqa or contain")
    if lang is not None and lang not in QA_LANGS:
        raise ValueError(f"--lang {lang!r}: expected one of {', '.join(QA_LANGS)}")
    if metric == "mlqa" and lang is None:
        raise ValueError("--metric mlqa needs --lang (the normalisation is per language)")
    hyps = data.read_scored(hyp, "prediction", qa)
    refs = data.read_scored(ref, "answers" if qa else "reference", qa)
    if len(hyps) != len(refs):
        raise ValueError(f"{hyp}: {len(hyps)} hypotheses but {ref} has {len(refs)} references "
                         "(must be line-aligned)")
    if metric == "bleu":
        r = corpus_bleu(hyps, refs, tokenize=tokenize or ("zh" if lang == "zh" else "13a"),
                        smooth=smooth, use_effective_order=effective_order)
        return {"metric": "bleu", "score": r.score, "signature": r.signature, "detail": str(r)}
    if metric == "chrf":
        r = chrf(hyps, refs, word_order=word_order)
        return {"metric": "chrf", "score": r.score, "signature": r.signature}
    mean = lambda xs: 100.0 * sum(xs) / max(len(hyps), 1)
    if metric == "contain":
        return {"metric": "contain", "score": mean([containment(h, g) for h, g in zip(hyps, refs)]),
                "signature": f"contain|first-gold|lowercase|version:{VERSION}"}
    em_f1 = squad_em_f1 if metric == "squad" else lambda p, g: mlqa_em_f1(p, g, lang)
    pairs = [em_f1(extract_answer(h, ANSWER_LABELS), g) for h, g in zip(hyps, refs)]
    em, f1 = mean([x[0] for x in pairs]), mean([x[1] for x in pairs])
    sig = (f"{metric}|em-f1|{'lang:' + lang + '|' if metric == 'mlqa' else ''}answer:extracted|"
           f"version:{VERSION}")
    return {"metric": metric, "score": f1, "em": em, "f1": f1, "signature": sig,
            "detail": f"{metric} EM = {em:.2f} F1 = {f1:.2f}  {sig}"}


@dataclass
class ScoreConfig:
    metric: str = opt(None, "what to compute", choices=SCORE_METRICS, required=True)
    hyp: str = opt(None, "hypotheses: text file (one a line) or predictions.jsonl", required=True)
    ref: str = opt(None, "references: text file (QA: golds TAB-separated) or predictions.jsonl",
                   required=True)
    lang: str | None = opt(None, f"language of the references, one of {' '.join(QA_LANGS)} (mlqa: "
                                 "required; bleu: zh selects the zh tokenizer)")
    tokenize: str | None = opt(None, "BLEU tokenizer: 13a, zh, none or spm:PATH (13a; zh for zh)")
    word_order: int = opt(0, "chrF word n-gram order: 0 = chrF, 1 = chrF+, 2 = chrF++",
                          range="[0, 2]")
    smooth: str = opt("exp", "BLEU smoothing", choices=tuple(sorted(SMOOTH_DEFAULTS)))
    effective_order: bool = opt(False, "BLEU with effective order (spBLEU uses it)")
    json: bool = opt(False, 'print {"metric","score","signature",...} as JSON')


def _score_main(argv) -> None:
    p = add_config_flags(Parser(prog="evaluate.py score",
                                description="Score hypothesis files against references."),
                         ScoreConfig)
    a = ScoreConfig(**vars(p.parse_args(argv)))
    cli.check_config(a)
    r = score_files(a.metric, a.hyp, a.ref, a.lang, a.tokenize, a.word_order, a.smooth,
                    a.effective_order)
    print(json.dumps(r, ensure_ascii=False) if a.json
          else r.get("detail", f"{r['metric']} = {r['score']:.2f}  {r['signature']}"))


def _eval_main(argv) -> None:
    p = add_config_flags(Parser(prog="evaluate.py", doc=__doc__), EvalConfig)
    run(EvalConfig(**vars(p.parse_args(argv))))


def main(argv=None) -> int:
    """`evaluate.py ...` (a checkpoint on a benchmark) or `evaluate.py score ...` (files); exit 0,
    2 for a bad flag or input file, 130 on Ctrl-C (the same command resumes: finished examples are
    kept in predictions.partial.jsonl)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    body = (lambda: _score_main(argv[1:])) if argv[:1] == ["score"] else (lambda: _eval_main(argv))
    return guard("evaluate.py", body, shlex.join(["python", "evaluate.py", *argv]),
                 usage=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())
