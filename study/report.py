"""RESULTS.md from a study's results.json: the tables, and the paper's claims with their verdicts.

    python -m study.report --results runs/study/results.json      # rewrite runs/study/RESULTS.md
    python -m study.reproduce --report-only --out runs/study      # the same, from reproduce.py
    python -m study.report --results runs/q/results.json --report RESULTS-quick.md   # elsewhere

reproduce.py runs the study and records it in OUT/results.json; this file only reads that
record (and, when regenerating, stamps who regenerated it and when into both files), so a
report can be rewritten after a change here without training anything again. The noise terms
also read the predictions.jsonl files of the runs under the study folder, when they are there
(noise.py).

What RESULTS.md holds (`write_report`), every cell from results.json, "—" where a run is missing:
  Headline        per language: XQuAD containment (with its chance level) and Flores en→X BLEU of
                  Alpaca, x-LLaMA, m-LLaMA
  Claims          one row per claim of the paper: its number, ours with the noise term, the
                  verdict, the likely reason (claims.py); then the gates (closed-book) and the
                  sanity checks (true by construction), each in its own table
  Setup           machine, torch, seeds, git commit, wall time per stage, the configuration and the
                  exact command of every stage, the runs that failed or were skipped
  QA              XQuAD (en + each language) and MLQA: containment, mean±std over seeds
                  (EM/F1), a chance row (noise.chance), † on a score within noise of chance
  Relative gain   per language (x − alpaca) / alpaca × 100 on XQuAD containment; points, not %,
                  where Alpaca is at chance
  Translation     Flores en→X and X→en: BLEU / chrF++
  Response lang.  language ID of the response: % of XQuAD responses detected as the question's
                  language
  Scaling         sweep points, both fitted laws with R², the budget allocation against the uniform
                  split (predicted and measured), a text chart per language
  Alignment       probe.py's pair−non-pair cosine gap (and retrieval) per layer, strongest layer

Two figures, also from results.json alone (`draw_figures`), go to figures/ beside the report, named
by its stem (RESULTS.md -> figures/RESULTS-headline.png and figures/RESULTS-alignment.png), and
RESULTS.md links them under the Headline table and the Alignment section. matplotlib is optional:
without it each figure is written as a text chart (figures/RESULTS-headline.txt, ...) and one line
says the PNGs were not drawn. The Markdown is the same either way, so a report regenerated from the
same results.json is the same text on every machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from study.claims import MLQA_XLANGS, XLANGS, best_layer, check_claims, gains, probe_curves
from study.noise import at_chance, chance, fmt, mean, n_items, values, with_predictions
from cli import Parser, UsageError, add_config_flags, guard, opt
from files import write_atomic


# ------------------------------------------------------- results.json (reproduce.py writes it)
# What the report and the claims read from results.json, so that a damaged or hand-made file is
# refused
# in one line naming the field, not met by a traceback half way through. A dict spec lists the keys
# a value may have (a trailing "!" marks a required one; "*" stands for every key), [spec] is a list
# of such items, a type or tuple of types is checked with isinstance. Other keys are not looked at.
NUM = (int, float)
RUN = {"group": str, "status": str, "kind": str, "langs": [str], "seed": int,
       "n_translation": (int, type(None)), "scores": {"*": (dict, type(None))},
       "wall_s": {"*": NUM}, "commands": [str], "error": str, "reason": str}
FIT = {"points": [{"lang!": str, "size!": NUM, "score!": NUM}],
       "fits": {"*": {"*": {"params!": {"alpha!": NUM, "beta!": NUM}}}},
       "allocation": {"*": int}, "uniform": {"*": int}, "predicted": {"*": {"*": NUM}},
       "minimum": NUM, "notes": [str], "charts": {"*": str}, "plots": {"*": str}}
RESULTS = {"runs!": {"*": RUN, "fit": FIT, "probe": {"probe": {"*": dict}}},
           "stages": {"*": {"wall_s": NUM, "command": str}},
           "config": {"langs": [str], "muit_langs": [str], "ablation_lang": str}, "machine": dict,
           "runtime": {"threads": int, "dtype": str, "why": str},
           "report_only": {"argv!": str, "time!": str, "git_commit!": str}}


class ResultsError(ValueError):
    """A results.json that is not what reproduce.py writes (one line, for the CLI)."""


def _check(value, spec, where: str) -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ResultsError(f"{where}: expected a JSON object, got {type(value).__name__}")
        for key, sub in spec.items():
            name = key.rstrip("!")
            if key == "*":
                for k, v in value.items():
                    _check(v, sub, f"{where}.{k}")
            elif name in value:
                _check(value[name], sub, f"{where}.{name}")
            elif key.endswith("!"):
                raise ResultsError(f"{where}: no {name!r} key")
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise ResultsError(f"{where}: expected a JSON list, got {type(value).__name__}")
        for i, v in enumerate(value):
            _check(v, spec[0], f"{where}[{i}]")
    elif not isinstance(value, spec) or (isinstance(value, bool) and spec in (int, NUM)):
        want = " or ".join(t.__name__ for t in (spec if isinstance(spec, tuple) else (spec,)))
        got = f"{type(value).__name__} {json.dumps(value)[:40]}"
        raise ResultsError(f"{where}: expected {want}, got {got}")


def load_results(out: Path) -> dict:
    """OUT/results.json checked against RESULTS; an empty record when there is none yet."""
    path = Path(out) / "results.json"
    if not path.exists():
        return {"runs": {}, "stages": {}}
    if not path.is_file():
        raise ResultsError(f"{path} is a folder; expected the results.json file reproduce.py "
                           "writes")
    try:
        results = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path} line {e.lineno} column {e.colno}: not valid JSON ({e.msg}); "
                           "remove it, or rerun reproduce.py with --overwrite") from None
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}: not UTF-8 (byte {e.start})") from None
    try:
        _check(results, RESULTS, "results")
        _check_fit(results["runs"].get("fit", {}), results.get("config", {}))
    except ResultsError as e:
        raise ResultsError(f"{path}: {e} (not a results.json as reproduce.py writes it)") from None
    results.setdefault("stages", {})
    return results


def _check_fit(fit: dict, config: dict) -> None:
    """What the fit run's parts must agree on, beyond their types (the report looks them up by
    language)."""
    where = "results.runs.fit"
    if "fits" in fit and not {l for l in fit["fits"]} <= {p["lang"] for p in fit.get("points", [])}:
        raise ResultsError(f"{where}: every language in 'fits' needs its 'points'")
    if set(fit.get("charts", {})) - set(fit.get("plots", {})):
        raise ResultsError(f"{where}: every language in 'charts' needs its entry in 'plots'")
    if "allocation" in fit:
        langs = set(fit["allocation"])
        for key in ("uniform", "predicted", "form", "minimum"):
            if key not in fit:
                raise ResultsError(f"{where}: has 'allocation' but no {key!r}")
        for name, d in (("uniform", fit["uniform"]),
                        ("predicted.uniform", fit["predicted"].get("uniform", {})),
                        ("predicted.allocation", fit["predicted"].get("allocation", {})),
                        ("config.muit_langs", dict.fromkeys(config.get("muit_langs", langs)))):
            if set(d) != langs:
                raise ResultsError(f"{where}: {name} covers {sorted(d)}, "
                                   f"expected the allocation's {sorted(langs)}")


def save_results(out: Path, results: dict) -> None:
    write_atomic(out / "results.json",
                 json.dumps(results, indent=1, ensure_ascii=False, default=str))


def git_commit() -> str:
    """The checked-out commit, with a note when tracked files differ from it ("" without git)."""
    try:
        git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True,  # noqa: E731
                                        cwd=Path(__file__).parent, timeout=10).stdout.strip()
        dirty = " + uncommitted changes" if git("status", "--porcelain", "-uno") else ""
        return git("rev-parse", "--short", "HEAD") + dirty
    except (OSError, subprocess.SubprocessError):
        return ""


# ----------------------------------------------------------------------------- RESULTS.md

ROWS = (("alpaca", "Alpaca (English only)"), ("xllama", "x-LLaMA (its own language)"),
        ("mllama-uniform", "m-LLaMA, uniform budget"), ("mllama-fitted", "m-LLaMA, law allocation"),
        ("x2en", "x-LLaMA, X→en data (ablation)"))
HEAD_MODELS = (("alpaca", "Alpaca"), ("xllama", "x-LLaMA"),  # the headline's columns
               ("mllama-uniform", "m-LLaMA"))


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def _avg_cell(cells: list[float | None], n: int) -> str:
    have = [c for c in cells if c is not None]
    if not have:
        return "—"
    return f"{statistics.fmean(have):.1f}" + ("" if len(have) == n else f" ({len(have)} langs)")


MARK = "†"   # a QA score within noise of its chance level (or below it)


def _mark(results, group, task, langs, score) -> str:
    """MARK when `score` (the mean over langs) is at chance (claims.at_chance over the questions
    behind it)."""
    levels = [chance(results, task, l) for l in langs]
    if score is None or None in levels:
        return ""
    n = n_items(results, group, task, langs)
    return f" {MARK}" if at_chance(score, statistics.fmean(levels), n) else ""


def qa_table(results, task, langs) -> str:
    levels = [chance(results, task, l) for l in langs]
    rows = [["chance (answer class)"] + ["—" if c is None else f"{c:.1f}" for c in levels]
            + [_avg_cell(levels, len(langs))]]
    for group, label in ROWS:
        cells, accs = [], []
        for l in langs:
            acc = values(results, group, task, l)
            em = mean(values(results, group, task, l, name="em"))
            f1 = mean(values(results, group, task, l, name="f1"))
            accs.append(mean(acc))
            cells.append("—" if not acc
                         else fmt(acc) + ("" if em is None else f" ({em:.1f}/{f1:.1f})")
                         + _mark(results, group, task, [l], mean(acc)))
        have = [l for l, a in zip(langs, accs) if a is not None]
        if have:
            avg = statistics.fmean(a for a in accs if a is not None)
            rows.append([label] + cells
                        + [_avg_cell(accs, len(langs)) + _mark(results, group, task, have, avg)])
    return _table(["model"] + list(langs) + ["avg contain"], rows)


def flores_table(results, langs, direction) -> str:
    rows = []
    for group, label in ROWS:
        cells, bleus = [], []
        for l in langs:
            b = values(results, group, "flores", l, direction, "bleu")
            c = values(results, group, "flores", l, direction, "chrf")
            bleus.append(mean(b))
            cells.append("—" if not b else f"{fmt(b)} / {fmt(c)}")
        if any(b is not None for b in bleus):
            rows.append([label] + cells + [_avg_cell(bleus, len(langs))])
    return _table(["model"] + list(langs) + ["avg BLEU"], rows)


def gain_table(results, langs) -> str:
    """Relative gain where Alpaca is above chance; the gain in points (and why) where it is at
    chance."""
    rows = []
    for group, label in ROWS[1:4]:
        g = gains(results, group, langs)
        if not g:
            continue
        def cell(l):
            if l not in g:
                return "—"
            return f"{g[l][1]:+.1f}%" if g[l][0] == "%" else f"{g[l][1]:+.1f} pts"
        rel, pts = ([v for u, v in g.values() if u == k] for k in ("%", "points"))
        avg = "; ".join(([f"{statistics.fmean(rel):+.1f}%"] if rel else [])
                        + ([f"{statistics.fmean(pts):+.1f} pts"] if pts else []))
        rows.append([label] + [cell(l) for l in langs] + [avg])
    if not rows:
        return "Not measured (no Alpaca and x-LLaMA / m-LLaMA QA scores in the same languages)."
    return ("A ratio over a baseline at chance measures nothing: where Alpaca's containment is "
            "within noise of the "
            "chance level (or 0), the cell is the gain in points (pts), not a percentage.\n\n"
            + _table(["model"] + list(langs) + ["mean"], rows))


def resp_table(results, langs) -> str:
    rows = []
    for group, label in ROWS[:4]:
        v = [mean(values(results, group, "xquad", l, name="resp_lang")) for l in langs]
        if any(x is not None for x in v):
            rows.append([label] + ["—" if x is None else f"{x:.1f}" for x in v]
                        + [_avg_cell(v, len(langs))])
    return _table(["model"] + list(langs) + ["avg"], rows)


def scaling_section(results) -> str:
    fit = results["runs"].get("fit", {})
    if not fit.get("fits"):
        return "Not measured (no fit run in results.json)."
    points = sorted(fit["points"], key=lambda p: (p["lang"], p["size"]))
    pts = _table(["lang", "translation pairs", "en→X BLEU", "run"],
                 [[p["lang"], str(p["size"]), f"{p['score']:.2f}", p.get("run", "")]
                  for p in points])
    rows = []
    for l, forms in sorted(fit["fits"].items()):
        for f, d in forms.items():
            r2 = d.get("r2")
            rows.append([l, f, f"{d['params']['alpha']:.4g}", f"{d['params']['beta']:.4g}",
                         "n/a" if r2 is None else f"{r2:.3f}", f"{d.get('rmse', 0):.2f}",
                         str(d.get("n", ""))])
    out = [pts, "", "Fitted laws (least squares on the points above; power: S = 100 − α·X^(−β), "
                    "log: S = α·ln X + β; γ folded into α):",
           "", _table(["lang", "form", "α", "β", "R²", "RMSE (BLEU)", "points"], rows)]
    if "allocation" in fit:
        out += ["", f"Allocation of the m-LLaMA budget ({sum(fit['uniform'].values())} pairs, "
                f"{fit['form']} law, at least {fit['minimum']} per language) against the uniform "
                "split, with the measured scores of both m-LLaMAs:", ""]
        rows = []
        for l in sorted(fit["allocation"]):
            mu = fmt(values(results, "mllama-uniform", "flores", l, "en-X", "bleu"))
            mf = fmt(values(results, "mllama-fitted", "flores", l, "en-X", "bleu"))
            pred = fit["predicted"]
            rows.append([l, str(fit["uniform"][l]), str(fit["allocation"][l]),
                         f"{pred['uniform'][l]:.2f}", f"{pred['allocation'][l]:.2f}", mu, mf])
        out.append(_table(["lang", "uniform pairs", "allocated pairs", "predicted BLEU (uniform)",
                           "predicted BLEU (allocated)", "measured BLEU (uniform)",
                           "measured BLEU (allocated)"], rows))
    out += [f"\n{n}" for n in fit.get("notes", [])]
    for l, chart in sorted(fit.get("charts", {}).items()):
        out += ["", f"{l}: en→X BLEU against translation pairs "
                    f"(plot `{fit['plots'][l]}` beside results.json)", "",
                "```", chart, "```"]
    return "\n".join(out)


def probe_section(results) -> str:
    probe = results["runs"].get("probe", {}).get("probe", {})
    curves = {n: probe_curves(p) for n, p in probe.items()}
    curves = {n: c for n, c in curves.items() if "gap" in c}
    if not curves:
        return "Not measured (no probe run in results.json)."
    names = list(curves)
    depth = max(len(c["gap"]) for c in curves.values())

    def cell(c: dict, k: int) -> str:
        if k >= len(c["gap"]):
            return "—"
        return f"{c['gap'][k]:.3f}" + (f" / {c['retrieval'][k]:.0f}%" if "retrieval" in c else "")
    rows = [[str(k)] + [cell(curves[n], k) for n in names] for k in range(depth)]
    rows.append(["**strongest**"] + [f"layer {best_layer(curves[n]['gap'])}" for n in names])
    text = _table(["layer (0 = embeddings)"] + names, rows)
    chart = probe.get("_chart", {})
    if chart:
        text += f"\n\nPlot: `{chart['plot']}` beside results.json.\n\n```\n{chart['chart']}\n```"
    return text


def copy_section(results) -> str:
    probe = results["runs"].get("probe", {}).get("probe", {})
    rows = []
    for name, rec in probe.items():
        if name.startswith("_") or not isinstance(rec, dict) or "repeat" not in rec:
            continue
        reps = {"en": rec["repeat"], **{l: v["repeat"] for l, v in rec.get("langs", {}).items()
                                        if "repeat" in v}}
        rows.append((name, reps))
    if not rows:
        return "Not measured (probe run without repeat_accuracy)."
    langs = list(rows[0][1])
    cells = [[n] + [f"{r[l]['first']:.1f} → {r[l]['second']:.1f}" if l in r else "—"
                    for l in langs] for n, r in rows]
    return _table(["model"] + langs, cells)


def _provenance(results: dict, m: dict, cfg: dict, total: float) -> str:
    """The Setup section's paragraph: who ran what, where, with which preset and seeds."""
    gpu = f", GPU {m['gpu']} (train.py/evaluate.py use it)" if m.get("gpu") else " (no GPU)"
    why = results.get("runtime", {}).get("why")
    decided = f"Device, dtype and threads, decided once for every run (device.py): {why}. "
    regenerated = ("" if "report_only" not in results else
                   " This text was regenerated from that run's results.json by `{argv}` at {time} "
                   "(git {git_commit}); the numbers are unchanged."
                   .format(**results["report_only"]))
    return (f"Generated by `{results.get('argv', 'python -m study.reproduce')}` "
            f"(started {results.get('started', '?')}, git {m.get('git_commit', '?')}) "
            f"on {m.get('cpu', '?')}, {m.get('cores', '?')} cores" + gpu + ", "
            f"torch {m.get('torch', '?')} (threads: {m.get('torch_threads', '?')}), "
            f"Python {m.get('python', '?')}. " + (decided if why else "")
            + f"Preset: {'--quick' if cfg.get('quick') else 'default'} "
            f"({cfg.get('arch', '?')} base, {cfg.get('base_steps')} pretraining steps, "
            f"{cfg.get('steps', '?')} steps per fine-tuning run). "
            f"Seeds: {cfg.get('seeds', '?')} for Alpaca and x-LLaMA "
            "(cells show mean±std over seeds when >1), seed 0 for the rest; "
            f"world seed {cfg.get('world_seed', '?')}. "
            f"Total wall time {total / 60:.1f} min." + regenerated)


def setup_section(results) -> str:
    m, cfg = results.get("machine", {}), results.get("config", {})
    runs = results["runs"]
    prepare_s = results.get("stages", {}).get("prepare", {}).get("wall_s", 0)
    stage = {"prepare (world + tokenizer + base)": prepare_s}
    for r in runs.values():
        for part in ("train", "eval"):
            if part in r.get("wall_s", {}):
                key = f"{r.get('group', '?')} {part}"
                stage[key] = stage.get(key, 0) + r["wall_s"][part]
        if r.get("kind") in ("fit", "probe"):
            stage[r["kind"]] = r.get("wall_s", {}).get("total", 0)
    total = sum(stage.values())
    lines = [_provenance(results, m, cfg, total), "",
             _table(["stage", "wall time (s)"], [[k, f"{v:.0f}"] for k, v in stage.items()]
                    + [["total", f"{total:.0f}"]]),
             "", "<details><summary>Configuration and the exact command of every stage</summary>",
             "", "```json", json.dumps(cfg), "```", "", "```"]
    lines.append(results.get("stages", {}).get("prepare", {}).get("command", ""))
    for name, r in runs.items():
        lines += [f"# {name}"] + [c for c in r.get("commands", []) if c]
    lines += ["```", "</details>"]
    failed = {n: r for n, r in runs.items() if r.get("status") in ("failed", "skipped")}
    if failed:
        lines += ["", "**Runs that did not finish** (their cells show —):", ""]
        lines += [f"- `{n}` {r['status']}: {r.get('error') or r.get('reason')}"
                  for n, r in failed.items()]
    return "\n".join(lines)


def headline_table(results: dict) -> str:
    """Per language: XQuAD containment (its chance level beside it) and Flores en→X BLEU of
    Alpaca, x-LLaMA
    and m-LLaMA (the README's table)."""
    langs = list(results.get("config", {}).get("langs", XLANGS))
    rows = []
    for l in langs:
        q = [fmt(v := values(results, g, "xquad", l)) + _mark(results, g, "xquad", [l], mean(v))
             for g, _ in HEAD_MODELS]
        c = chance(results, "xquad", l)
        b = [fmt(values(results, g, "flores", l, "en-X", "bleu")) for g, _ in HEAD_MODELS]
        rows.append([l] + q + ["—" if c is None else f"{c:.1f}"] + b)
    return _table(["lang", "XQuAD contain: Alpaca", "x-LLaMA", "m-LLaMA", "chance",
                   "Flores en→X BLEU: Alpaca", "x-LLaMA", "m-LLaMA"], rows)


INTRO = ("Every number below was produced by the run described in *Setup*, on the miniature world "
         "(world.py), not on real LLaMA-7B or the real benchmarks: they test whether the paper's "
         "*mechanisms* show up at toy scale, not its absolute numbers.")
CHANCE_NOTE = (f"{MARK}: within noise of the chance level (or below it). Chance = containment "
               "expected from answering with the gold answer of another test question of the same "
               "kind (evaluate.qa_chance).")
NOISE_NOTE = ("Every comparison is judged against a noise term: seed spread (t × pooled standard "
              "error) and a paired bootstrap over the test items (binomial without predictions), "
              "combined. A difference within it, or two models at chance, is **inconclusive**, "
              "never a reproduction (claims.py, noise.py).")
METRIC_NOTES = [
    "- **contain**: containment accuracy (%), the paper's QA metric — the lower-cased first gold "
    "answer is a substring of the lower-cased response. **EM/F1** (in parentheses): SQuAD-style "
    "exact match and token F1 (×100) on the extracted answer with MLQA's per-language "
    "normalisation (evaluate.py).",
    "- **BLEU**: corpus BLEU of evaluate.py (sacreBLEU-compatible: 13a tokenization, `zh` for "
    "Chinese, exp smoothing; not spBLEU); **chrF++**: character 6-grams + word bigrams, β=2. On "
    "the miniature world's Flores-style devtest.",
    "- **chance**: the containment expected from answering each question with the first gold "
    "answer of a random other question of the same kind (same question wording once names are "
    "removed; evaluate.qa_chance). "
    f"{MARK} marks a score within the one-sided 95% binomial margin of it (or below it).",
    "- **relative gain over Alpaca** = (x − alpaca) / alpaca × 100 per language, where x and "
    "alpaca are XQuAD containment accuracies (seed means), only where Alpaca is above chance; "
    "elsewhere the gain in points.",
    "- **response language ID**: % of XQuAD responses whose detected language "
    "(metrics.in_language: script and character statistics) is the question's language, among the "
    "decidable ones (a bare Latin-script word is undecidable for tr/vi, but decidably not "
    "ar/el/hi/zh). It is language identification only, not the paper's judged instruction "
    "following.",
]
PROBE_NOTE = ("Cell = mean over languages of (mean cosine of translation pairs − mean cosine of "
              "non-pairs) of mean-pooled hidden states / top-1 retrieval accuracy English→X; the "
              "layer with the largest gap is the strongest alignment.")
COPY_NOTE = ("Cell = greedy next-token accuracy (%) on tokens 2..L of a Flores-style test "
             "sentence, first copy → second copy, when the sentence is fed twice. A model that can "
             "copy from "
             "its context scores near 100% on the second copy; extractive QA (the answer is a span "
             "of the passage) needs that ability.")


def claims_part(results: dict) -> list[str]:
    """The claims table, then the gates (when any) and the sanity checks, each its own table."""
    kinds = {k: [[c.claim, c.paper, c.here, f"**{c.verdict}**", c.reason or "—"]
                 for c in check_claims(results) if c.kind == k]
             for k in ("claim", "gate", "sanity")}
    gates = ["### Gates (preconditions of the closed-book claims)", "",
             _table(["what must hold", "", "here", "verdict", "likely reason"], kinds["gate"]), ""]
    return [
        "## Claims of the paper, checked", "", NOISE_NOTE, "",
        _table(["claim", "paper", "here", "verdict", "likely reason"], kinds["claim"]), "",
        *(gates if kinds["gate"] else []),
        "### Sanity checks (true by construction: they test the pipeline, not the paper)", "",
        _table(["check", "why", "here", "verdict", "likely reason"], kinds["sanity"]), "",
    ]


def scores_part(results: dict, langs: list[str], link) -> list[str]:
    """QA, gains, translation, response language, scaling, alignment and copying, in that order."""
    limit = results.get("config", {}).get("eval_limit", "?")
    mlqa = [l for l in langs if l in MLQA_XLANGS]
    return [
        f"## QA — XQuAD-style, contain (EM/F1), {limit} questions per language", "",
        qa_table(results, "xquad", ["en"] + langs), "",
        *(["## QA — MLQA-style, contain (EM/F1)", "", qa_table(results, "mlqa", mlqa), ""]
          if mlqa else []),
        "## Relative gain over Alpaca (XQuAD containment)", "", gain_table(results, langs), "",
        f"## Translation — Flores-style en→X, BLEU / chrF++, {limit} sentences", "",
        flores_table(results, langs, "en-X"), "",
        "## Translation — Flores-style X→en, BLEU / chrF++", "",
        flores_table(results, langs, "X-en"), "",
        "## Response language ID (% of XQuAD responses detected as the question's language)", "",
        resp_table(results, langs), "",
        "## Scaling law of translation data and budget allocation", "",
        scaling_section(results), "",
        "## Layer-wise alignment (probe.py)", "", PROBE_NOTE, "",
        probe_section(results), "", *link("alignment"),
        "## In-context copying (probe.py)", "", COPY_NOTE, "",
        copy_section(results), "",
    ]


def write_report(results: dict, name: str = "RESULTS") -> str:
    """The Markdown of the report saved as <name>.md; its figure links point at
    figures/<name>-*.png beside it."""
    figs = figure_data(results)

    def link(kind: str) -> list[str]:
        return [f"![{CAPTIONS[kind]}](figures/{name}-{kind}.png)", ""] if kind in figs else []
    langs = list(results.get("config", {}).get("langs", XLANGS))
    parts = [
        "# Results: the paper in miniature", "", INTRO, "",
        "## Headline", "", headline_table(results), "", CHANCE_NOTE, "", *link("headline"),
        *claims_part(results),
        "## Setup", "", setup_section(results), "",
        "## Metrics", "", *METRIC_NOTES, "",
        *scores_part(results, langs, link),
    ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- figures
# Drawn from results.json alone into figures/ beside the report, named by the report's stem so
# that two reports in one folder (RESULTS.md, RESULTS-quick.md) keep their own. The links in the
# Markdown depend
# only on results.json (`figure_data`), never on whether matplotlib is installed.

HEAD_METRICS = (("xquad", "contain", "XQuAD containment (%)"),
                ("flores", "bleu", "Flores en→X BLEU"))
CAPTIONS = {"headline": "Headline per language: XQuAD containment and Flores en→X BLEU of "
                        "Alpaca, x-LLaMA and m-LLaMA (bar: mean over seeds, whisker: std over "
                        "seeds)",
            "alignment": "Alignment per layer: pair − non-pair cosine gap of each probed model, "
                         "mean over languages"}


def figure_data(results: dict) -> dict:
    """What each figure shows, for the figures that have a number to show:
    headline: {"langs": [...], "panels": {metric: {model: [seed values per lang]}}};
    alignment: {model: gap per layer}."""
    langs = list(results.get("config", {}).get("langs", XLANGS))
    panels = {title: {label: [values(results, g, task, l, "en-X", name) for l in langs]
                      for g, label in HEAD_MODELS}
              for task, name, title in HEAD_METRICS}
    keep = [k for k in range(len(langs))
            if any(cells[k] for rows in panels.values() for cells in rows.values())]
    probed = results["runs"].get("probe", {}).get("probe", {})
    gaps = {n: probe_curves(p).get("gap") for n, p in probed.items()}
    figs = {}
    if keep:
        figs["headline"] = {"langs": [langs[k] for k in keep],
                            "panels": {t: {m: [c[k] for k in keep] for m, c in rows.items()}
                                       for t, rows in panels.items()}}
    if any(gaps.values()):
        figs["alignment"] = {n: g for n, g in gaps.items() if g}
    return figs


def draw_figures(results: dict, report: Path) -> list[Path]:
    """figures/<stem>-headline.png and -alignment.png beside `report` (text charts in .txt
    without matplotlib)."""
    folder, stem = Path(report).parent / "figures", Path(report).stem
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    written = []
    for kind, d in figure_data(results).items():
        path = folder / f"{stem}-{kind}.{'txt' if plt is None else 'png'}"
        if plt is None:
            write_atomic(path, {"headline": _text_headline, "alignment": _text_alignment}[kind](d))
        else:
            plot = {"headline": _plot_headline, "alignment": _plot_alignment}[kind]
            _save_png(plt, plot(plt, d), path)
        written.append(path)
    # a figure of other numbers must not stay behind a link: drop what was not drawn now
    for kind in CAPTIONS:
        for old in (folder / f"{stem}-{kind}.png", folder / f"{stem}-{kind}.txt"):
            if old not in written:
                old.unlink(missing_ok=True)
    if plt is None and written:
        print(f"report.py: matplotlib is not installed, so the PNGs that {Path(report).name} "
              "links were not drawn; "
              f"text charts instead: {', '.join(p.name for p in written)} in {folder}")
    return written


def _save_png(plt, fig, path: Path) -> None:
    """savefig to a temp file, then one rename (the temp file goes on failure); no version
    stamp in the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


def _plot_headline(plt, d):
    fig, axes = plt.subplots(1, len(d["panels"]), figsize=(11, 4))
    width = 0.8 / len(HEAD_MODELS)
    for ax, (title, rows) in zip(axes, d["panels"].items()):
        for i, (model, cells) in enumerate(rows.items()):
            pts = [(k + (i - (len(rows) - 1) / 2) * width, v)  # missing: no bar
                   for k, v in enumerate(cells) if v]
            if pts:
                ax.bar([x for x, _ in pts], [mean(v) for _, v in pts], width, label=model)
            err = [(x, mean(v), statistics.stdev(v)) for x, v in pts if len(v) > 1]
            if err:
                ax.errorbar(*zip(*err), fmt="none", ecolor="black", capsize=3, linewidth=1)
        ax.set_xticks(range(len(d["langs"])))
        ax.set_xticklabels(d["langs"])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_alignment(plt, gaps: dict[str, list[float]]):
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, gap in gaps.items():
        ax.plot(range(len(gap)), gap, marker="o", label=name)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(max(len(g) for g in gaps.values())))
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("pair − non-pair cosine")
    ax.set_title("Alignment per layer (probe.py), mean over languages")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _text_bars(title: str, groups: dict[str, list[tuple[str, float | None, str]]],
               width: int = 40) -> str:
    """A text chart: under each group's heading one bar per (label, value, shown text), all on
    one scale."""
    vals = [v for rows in groups.values() for _, v, _ in rows if v is not None]
    lo, hi = min([0.0, *vals]), max([0.0, *vals])
    scale = width / (hi - lo) if hi > lo else 0.0
    lines = [f"{title} (bar from {lo:.3g} to {hi:.3g})"]
    for head, rows in groups.items():
        lines.append(head)
        lines += [f"  {label:<9}|{'#' * round(((lo if v is None else v) - lo) * scale):<{width}}"
                  f"| {text}"
                  for label, v, text in rows]
    return "\n".join(lines) + "\n"


def _text_headline(d) -> str:
    return "\n".join(_text_bars(f"{title}, mean±std over seeds",
                                {l: [(m, mean(c[k]), fmt(c[k])) for m, c in rows.items()]
                                 for k, l in enumerate(d["langs"])})
                     for title, rows in d["panels"].items())


def _text_alignment(gaps: dict[str, list[float]]) -> str:
    return _text_bars("pair − non-pair cosine gap per layer (0 = embeddings), mean over languages",
                      {n: [(f"layer {k}", v, f"{v:.4f}") for k, v in enumerate(g)]
                       for n, g in gaps.items()})


# ----------------------------------------------------------------------------- regeneration

# the bounds of realmodel.py's section (realmodel.BEGIN, END)
KEEP = ("<!-- real-model -->", "<!-- /real-model -->")


def save_report(results: dict, report: Path, study: Path | None = None) -> None:
    """REPORT (e.g. OUT/RESULTS.md) and its figures, from results and the predictions.jsonl
    files under the `study` folder (default: the report's own folder), which give the noise
    terms their per-item scores."""
    draw_figures(results, Path(report))
    results = with_predictions(results, Path(study) if study is not None else Path(report).parent)
    text = write_report(results, Path(report).stem)
    old = Path(report).read_text(encoding="utf-8") if Path(report).is_file() else ""
    if KEEP[0] in old and KEEP[1] in old:  # realmodel.py's section is its own: kept
        section = old[old.index(KEEP[0]):old.index(KEEP[1]) + len(KEEP[1])]
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    write_atomic(report, text)


def regenerate(out: Path, argv: str, report: Path | None = None) -> Path:
    """Rewrite OUT/RESULTS.md (or `report`) from OUT/results.json, recording `argv`, the time
    and the commit in both."""
    out = Path(out)
    report = Path(report) if report else out / "RESULTS.md"
    results = load_results(out)
    if not results["runs"]:
        raise ValueError(f"no results in {out / 'results.json'}")
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["report_only"] = {"argv": argv, "time": now,
                              "git_commit": git_commit()}
    save_results(out, results)
    save_report(results, report, out)
    return report


@dataclass
class ReportConfig:
    results: str | None = opt(None, "a results.json written by reproduce.py, e.g. "
                                    "runs/study/results.json (default: none, the flag is required)")
    report: str | None = opt(None, "where to write the Markdown (default: RESULTS.md beside "
                                   "results.json); its figures go to figures/<its name>-*.png "
                                   "beside it")


def main(argv=None) -> int:
    """The command line; exit 0, 2 (a bad flag or results.json) or 1 (the disk)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="python -m study.report", description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog=__doc__.split("\n\n", 1)[1])
    cfg = ReportConfig(**vars(add_config_flags(parser, ReportConfig).parse_args(argv)))

    def body():
        if cfg.results is None or Path(cfg.results).name != "results.json":
            raise UsageError(f"--results: expected a path to results.json, got {cfg.results}")
        report = cfg.report
        if report is not None and (Path(report).suffix != ".md" or Path(report).is_dir()):
            raise UsageError(f"--report: expected a path to a .md file, got {report}")
        try:
            written = regenerate(Path(cfg.results).parent,
                                 shlex.join(["python", "-m", "study.report", *argv]), report)
        except ValueError as e:  # ResultsError: names the file and the field
            raise UsageError(f"--results: {e}") from None
        print(f"wrote {written}")
    return guard("python -m study.report", body)


if __name__ == "__main__":
    sys.exit(main())
