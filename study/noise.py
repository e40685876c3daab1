"""How sure a number of a study is: results.json's cells, their per-item scores, the noise term of a
difference, and the chance level of a QA test. claims.py judges the paper's claims with these.

    python -c "from study import noise, report
    r = noise.with_predictions(report.load_results('runs/study'), 'runs/study')
    print(noise.noise(r, 'mllama-uniform', 'mllama-fitted', 'flores', ['ar', 'zh'], name='bleu'))"
    python -m pytest -q tests/test_claims.py    # the noise terms and chance rules, made-up numbers

A cell is one metric of one model group on one test (`values`, one number per seed; reproduce.py
and report.py read results.json through `values` / `metric` / `eval_key` too, so a number means
the same in the tables and in the verdicts). Per-item scores come from the predictions.jsonl that
evaluate.py writes beside every scores.json, once the caller has said where the study lies
(`with_predictions`); they are used only where they give back the number in results.json.

`noise(results, a, b, task, langs)`: the half-width of a ~95 % interval on mean(b) − mean(a) over
langs, the root sum of squares of
  seeds       t(df) × pooled standard error of the per-seed means (two seeds a side: df 2, t 4.30;
              one side with one seed: df 1, t 12.7);
  test items  a paired bootstrap over the test items (both models on the same resampled items,
              1000 times, seeded; BLEU recomputed from the resampled sentence statistics), or, for
              accuracies without predictions, the binomial standard error over the questions
              (add-2 smoothed).
None when neither is measurable (one seed, and a BLEU or rate without per-item scores).
`chance(results, task, lang)`: evaluate.py's stored `chance` (evaluate.qa_chance for XQuAD/MLQA,
1 / size of the answer class for closed-book QA), else qa_chance on a predictions.jsonl of that
test. `at_chance`: a score within the one-sided 95 % binomial margin of the chance level, or
below it.
"""
from __future__ import annotations

import functools
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics import _bleu_from_stats, _bleu_stats, containment, get_tokenizer, in_language

ACCURACIES = ("contain", "em")   # metrics with a chance level and a binomial noise term
PER_LANG_GROUPS = ("xllama", "sweep", "x2en", "instr")  # one model per language X: its cell is X's


# ------------------------------------------------------------------- results.json's vocabulary

def eval_key(task: str, lang: str, direction: str) -> str:
    return f"{task}:{lang}:{direction}" if task == "flores" else f"{task}:{lang}"


SCORE_KEYS = {  # canonical metric -> the names evaluate.py may use for it (first present wins)
    "contain": ("contain", "containment", "accuracy"), "em": ("em", "exact_match"), "f1": ("f1",),
    "bleu": ("bleu",), "chrf": ("chrf++", "chrf"), "resp_lang": ("lang_rate",),
    "right_in_en": ("right_in_en",), "second": ("second",), "first": ("first",), "bind": ("bind",),
}


def metric(scores: dict | None, name: str) -> float | None:
    for k in SCORE_KEYS[name] if scores else ():
        v = scores.get(k)
        if isinstance(v, dict):
            v = v.get("score")
        if isinstance(v, (int, float)):
            return float(v)
    return None


def cells(results: dict, group: str, task: str, lang: str, direction="en-X",
          name="contain") -> list[tuple]:
    """(run name, seed, value) of one metric of one cell, a tuple per seed. x-LLaMA-like groups: the
    model of that language; group "base": the pretrained base."""
    out = []
    for run, r in results["runs"].items():
        mine = r.get("group") == group or (group == "base" and r.get("kind") == "base")
        if r.get("status") != "done" or not mine:
            continue
        if group in PER_LANG_GROUPS and r.get("langs") != [lang]:
            continue
        v = metric(r.get("scores", {}).get(eval_key(task, lang, direction)), name)
        if v is not None:
            out.append((run, r.get("seed", 0), v))
    return out


def values(results, group, task, lang, direction="en-X", name="contain") -> list[float]:
    """One metric of one cell over seeds."""
    return [v for _, _, v in cells(results, group, task, lang, direction, name)]


def mean(v) -> float | None:
    return statistics.fmean(v) if v else None


def fmt(v, digits=1) -> str:
    if not v:
        return "—"
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.fmean(v):.{digits}f}±{statistics.stdev(v):.{digits}f}"


def n_items(results, group, task, langs, direction="en-X") -> int:
    """Test items behind one seed's mean over `langs` (the `n` evaluate.py reports)."""
    total = 0
    for l in langs:
        runs = cells(results, group, task, l, direction)
        sc = results["runs"][runs[0][0]]["scores"][eval_key(task, l, direction)] if runs else {}
        total += int(sc.get("n") or 0)
    return total


# ---------------------------------------------------------- per-item scores (predictions.jsonl)

def with_predictions(results: dict, folder) -> dict:
    """A shallow copy of results that reads per-item scores from the study `folder` (where
    results.json is)."""
    return {**results, "_folder": str(folder)}


def _predictions(results, run: str, key: str) -> Path | None:
    """RUN's predictions.jsonl for KEY; model_dir is recorded as reproduce.py saw it (under
    config.out)."""
    rec, folder = results["runs"].get(run, {}), results.get("_folder")
    out = results.get("config", {}).get("out")
    if folder is None or not rec.get("model_dir"):
        return None
    model_dir = Path(rec["model_dir"])
    if out and model_dir.is_relative_to(out):
        model_dir = Path(folder) / model_dir.relative_to(out)
    path = model_dir / "eval" / key.replace(":", "-") / "predictions.jsonl"
    return path if path.is_file() else None


def _stamp(path: Path) -> tuple:
    """The cache key of a file: a rewritten predictions.jsonl is read again."""
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=None)
def _rows(path: str, *stamp) -> tuple:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return tuple(json.loads(line) for line in lines if line.strip())
    except (OSError, ValueError):
        return ()


@functools.lru_cache(maxsize=None)
def _item_stats(stamp: tuple, lang: str, name: str) -> tuple[tuple, np.ndarray] | None:
    """(ids, per-item statistics whose sums give the metric): contain [correct, 1]; resp_lang [in
    the language, decidable]; bleu the 10 sentence statistics of metrics.corpus_bleu."""
    rows = _rows(*stamp)
    try:
        if name == "contain":
            st = [[containment(r["prediction"], r["answers"]), 1] for r in rows]
        elif name == "resp_lang":
            st = [[x is True, x is not None]
                  for x in (in_language(r["prediction"], lang) for r in rows)]
        elif name == "bleu":
            tok = get_tokenizer("zh" if rows[0]["tgt_lang"] == "zh" else "13a")
            st = [_bleu_stats(tok(r["prediction"].rstrip()), tok(r["reference"].rstrip()))
                  for r in rows]
        else:
            return None
    except (KeyError, IndexError, TypeError):
        return None
    if not st:
        return None
    return tuple(r.get("id", i) for i, r in enumerate(rows)), np.array(st, dtype=float)


def _value(name: str, sums: np.ndarray) -> np.ndarray:
    """The metric from summed item statistics (..., k) -> (...)."""
    if name == "bleu":
        flat = sums.reshape(-1, sums.shape[-1])
        scores = [_bleu_from_stats([int(x) for x in row]).score for row in flat]
        return np.array(scores).reshape(sums.shape[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * sums[..., 0] / sums[..., 1]


def items(results, run: str, key: str, name: str) -> tuple[tuple, np.ndarray] | None:
    """RUN's per-item statistics for KEY, or None (no predictions, or they do not give back
    results.json's number)."""
    path = _predictions(results, run, key)
    got = _item_stats(_stamp(path), key.split(":")[1], name) if path else None
    stored = metric(results["runs"][run].get("scores", {}).get(key), name)
    if got is None or stored is None or abs(float(_value(name, got[1].sum(0))) - stored) > 0.01:
        return None
    return got


# ----------------------------------------------------------------------------- noise

@dataclass
class Noise:
    half: float   # half-width of a ~95 % interval on the difference b − a, in the metric's unit
    source: str   # how it was measured, for the report


T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 8: 2.31, 10: 2.23, 15: 2.13,
       20: 2.09, 30: 2.04, 60: 1.96}
RESAMPLES = 1000


def t95(df: int) -> float:
    """Two-sided 95 % quantile of Student's t, rounded toward caution (the next smaller df in the
    table)."""
    return T95[max(k for k in T95 if k <= df)]


def seed_means(results, group, task, langs, direction="en-X", name="contain") -> list[float]:
    """The mean over `langs` per seed, for the seeds that have every language."""
    by_seed: dict = {}
    for l in langs:
        for _, seed, v in cells(results, group, task, l, direction, name):
            by_seed.setdefault(seed, {})[l] = v
    return [statistics.fmean(d.values()) for _, d in sorted(by_seed.items())
            if len(d) == len(langs)]


def seed_term(a: list[float], b: list[float]) -> float | None:
    """t × pooled standard error of mean(b) − mean(a) over seeds; None without a second seed on
    either side."""
    df = len(a) + len(b) - 2
    if not a or not b or df < 1:
        return None
    ss = (sum((x - statistics.fmean(a)) ** 2 for x in a)
          + sum((x - statistics.fmean(b)) ** 2 for x in b))
    return t95(df) * math.sqrt(ss / df * (1 / len(a) + 1 / len(b)))


def bootstrap_term(results, pairs, name: str) -> tuple[float, int] | None:
    """pairs: per language (key, runs of a, runs of b). The statistic is the mean over languages of
    (mean over b's runs − mean over a's runs) of the metric; every run is resampled on the same
    items. Returns (1.96 × its bootstrap standard deviation, items per run), or None without
    per-item scores."""
    rng = np.random.default_rng(0)   # fixed: the same report on every machine
    diff, n = np.zeros(RESAMPLES), 0
    for key, runs_a, runs_b in pairs:
        sides = [[items(results, r, key, name) for r in runs] for runs in (runs_a, runs_b)]
        if not all(sides) or any(x is None for side in sides for x in side):
            return None
        common = set.intersection(*(set(ids) for side in sides for ids, _ in side))
        order = [i for i in sides[0][0][0] if i in common]
        if not order:
            return None
        idx = rng.integers(0, len(order), (RESAMPLES, len(order)))
        stat = []
        for side in sides:
            runs = []
            for ids, st in side:
                pos = {i: k for k, i in enumerate(ids)}
                runs.append(_value(name, st[[pos[i] for i in order]][idx].sum(axis=1)))
            stat.append(np.mean(runs, axis=0))
        diff += (stat[1] - stat[0]) / len(pairs)
        n += len(order)
    return 1.96 * float(np.nanstd(diff)), n


def binomial_term(pa: float, pb: float, na: int, nb: int) -> float:
    """1.96 standard errors (points) of the difference of two accuracies (%) over na and nb
    questions, each proportion add-2 smoothed so that 0 % is not noiseless."""
    smoothed = (((p / 100 * n + 2) / (n + 4), n) for p, n in ((pa, na), (pb, nb)))
    var = sum(q * (1 - q) / n for q, n in smoothed)
    return 196.0 * math.sqrt(var)


def noise(results, ga, gb, task, langs, direction="en-X", name="contain") -> Noise | None:
    """The noise term of mean(gb) − mean(ga) over `langs` (module docstring); None when none is
    measurable."""
    parts, said = [], []
    sa = seed_means(results, ga, task, langs, direction, name)
    sb = seed_means(results, gb, task, langs, direction, name)
    if (s := seed_term(sa, sb)) is not None:
        parts.append(s)
        said.append(f"seeds {len(sa)} vs {len(sb)}")
    runs = lambda g, l: [r for r, _, _ in cells(results, g, task, l, direction, name)]  # noqa: E731
    keys = [(eval_key(task, l, direction), runs(ga, l), runs(gb, l)) for l in langs]
    boot = bootstrap_term(results, keys, name)
    if boot:
        parts.append(boot[0])
        said.append(f"paired bootstrap over {boot[1]} items")
    elif name in ACCURACIES and sa and sb and (na := n_items(results, ga, task, langs)) \
            and (nb := n_items(results, gb, task, langs)):
        # seeds share the questions
        parts.append(binomial_term(statistics.fmean(sa), statistics.fmean(sb), na, nb))
        said.append(f"binomial over {na} and {nb} questions")
    return Noise(math.sqrt(sum(p * p for p in parts)), " + ".join(said)) if parts else None


# ----------------------------------------------------------------------------- chance level

def chance(results, task: str, lang: str) -> float | None:
    """The chance level (%) of a QA test: evaluate.py's `chance`, else (studies evaluated before it
    was stored) evaluate.qa_chance on the questions of a predictions.jsonl of that test."""
    key = eval_key(task, lang, "en-X")
    for r in results["runs"].values():
        v = (r.get("scores", {}).get(key) or {}).get("chance")
        if isinstance(v, (int, float)):
            return float(v)
    if task not in ("xquad", "mlqa"):
        return None
    for run in results["runs"]:
        if key in results["runs"][run].get("scores", {}) \
                and (path := _predictions(results, run, key)):
            return _chance_of(_stamp(path), lang)
    return None


@functools.lru_cache(maxsize=None)
def _chance_of(stamp: tuple, lang: str) -> float | None:
    from evaluate import qa_chance  # imports torch: only for studies that predate the chance
    rows = _rows(*stamp)
    if not rows:
        return None
    return qa_chance([r["question"] for r in rows], [r["answers"] for r in rows], lang)


def at_chance(score: float, level: float | None, n: int | None) -> bool | None:
    """Is `score` (%) at or below chance: within the one-sided 95 % binomial margin of `level` over
    n questions (add-2 smoothed)? None when the chance level is unknown."""
    if level is None:
        return None
    q = (level / 100 * n + 2) / (n + 4) if n else level / 100
    return score <= level + (164.5 * math.sqrt(q * (1 - q) / n) if n else 0.0)


