"""The paper's claims, checked against a study's results.json: a verdict and the likely reason for each.

    python -c "import json, claims; print(*claims.check_claims(json.load(open('runs/study/results.json'))), sep='\\n')"
    python report.py --results runs/study/results.json      # RESULTS.md, whose Claims table this fills
    python -m pytest -q tests/test_report.py                # the verdict rules on numbers chosen by the test

report.py writes RESULTS.md and calls `check_claims` for its Claims table; reproduce.py and report.py
read results.json through `values` / `metric` / `eval_key` below, so a number means the same in the
tables and in the verdicts.

How a verdict is decided (`judge`, for "b is better than a"; no conclusion is written by hand):
  both below the floor (5 % / 1 BLEU)      -> inconclusive: no signal to compare
  both above the ceiling (90)              -> inconclusive: too easy to separate
  |b − a| <= 2 × the seed spread           -> partly reproduces if b > a, else does not
  accuracies within two standard errors of the difference of two proportions over n questions,
  200·sqrt(2p(1−p)/n)                      -> partly reproduces if b > a, else does not
  otherwise                                -> reproduces if b > a, else does not reproduce
and per claim (`check_claims`; any claim without its numbers is "not measured"):
  x-LLaMA vs Alpaca, QA     judge on the mean containment; better in under half the languages -> partly
  x-LLaMA vs Alpaca, en→X   judge on the mean BLEU
  m-LLaMA ≈ x-LLaMA         within 10 % (or 1 point) of the x-LLaMAs -> reproduces; lower but within
                            sampling noise -> partly; both at the floor -> judge's floor verdict
  scaling law               every swept language rises >= 1 BLEU with best R² >= 0.8 -> reproduces;
                            some rise -> partly
  law allocation            judge on the mean BLEU of the allocated vs the uniform m-LLaMA
  en→X vs X→en data         QA and BLEU both judged: both -> reproduces, one -> partly
  middle-layer alignment    m-LLaMA's strongest layer within 25–75 % of the depth, and its gap >10 %
                            above the base model's there: both -> reproduces, one -> partly
  response language         judge on Alpaca's vs m-LLaMA's rate; m-LLaMA >= 90 % -> reproduces
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

XLANGS = ("ar", "el", "hi", "tr", "vi", "zh")      # the paper's six languages
MLQA_XLANGS = ("ar", "hi", "vi", "zh")              # the paper's six X that MLQA covers


# ----------------------------------------------------------------------------- results.json's vocabulary

def eval_key(task: str, lang: str, direction: str) -> str:
    return f"{task}:{lang}:{direction}" if task == "flores" else f"{task}:{lang}"


SCORE_KEYS = {  # canonical metric -> the names evaluate.py may use for it (first present wins)
    "contain": ("contain", "containment", "accuracy"), "em": ("em", "exact_match"), "f1": ("f1",),
    "bleu": ("bleu",), "chrf": ("chrf++", "chrf"), "resp_lang": ("lang_rate",),
}


def metric(scores: dict | None, name: str) -> float | None:
    for k in SCORE_KEYS[name] if scores else ():
        v = scores.get(k)
        if isinstance(v, dict):
            v = v.get("score")
        if isinstance(v, (int, float)):
            return float(v)
    return None


# ----------------------------------------------------------------------------- reading results

def values(results: dict, group: str, task: str, lang: str, direction: str = "en-X", name: str = "contain") -> list[float]:
    """One metric of one cell over seeds (x-LLaMA rows: the model of that language)."""
    out = []
    for r in results["runs"].values():
        if r.get("group") != group or r.get("status") != "done":
            continue
        if group in ("xllama", "sweep", "x2en") and r.get("langs") != [lang]:
            continue
        v = metric(r.get("scores", {}).get(eval_key(task, lang, direction)), name)
        if v is not None:
            out.append(v)
    return out


def mean(v) -> float | None:
    return statistics.fmean(v) if v else None


def fmt(v, digits=1) -> str:
    if not v:
        return "—"
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.fmean(v):.{digits}f}±{statistics.stdev(v):.{digits}f}"


def seed_spread(results: dict, group: str, task: str, langs, direction="en-X", name="contain") -> float | None:
    """Mean over languages of the standard deviation across seeds (None with one seed)."""
    sds = [statistics.stdev(v) for l in langs if len(v := values(results, group, task, l, direction, name)) > 1]
    return statistics.fmean(sds) if sds else None


def relative_gains(results: dict, group: str, langs, task="xquad", name="contain") -> dict[str, float]:
    """Per language (x - alpaca) / alpaca * 100 on seed means; languages where Alpaca scores 0 are left out."""
    out = {}
    for l in langs:
        x, a = mean(values(results, group, task, l, name=name)), mean(values(results, "alpaca", task, l, name=name))
        if x is not None and a:
            out[l] = (x - a) / a * 100
    return out


def probe_curves(rec) -> dict:
    """probe.py's result for one model -> {"gap": [...], "retrieval": [...]} per layer, mean over languages."""
    per_lang = rec.get("langs", rec) if isinstance(rec, dict) else {}
    curves = {}
    for key in ("gap", "retrieval", "cos_pair"):
        rows = [v[key] for v in per_lang.values() if isinstance(v, dict) and isinstance(v.get(key), list)]
        if rows:
            curves[key] = [statistics.fmean(c) for c in zip(*rows)]
    return curves


def best_layer(curve: list[float]) -> int:
    return max(range(len(curve)), key=curve.__getitem__)


# ----------------------------------------------------------------------------- the paper's claims

@dataclass
class Claim:
    claim: str                 # what the paper says
    paper: str                 # the paper's number (or "qualitative")
    here: str = "not measured"  # what this run measured
    verdict: str = "not measured"  # reproduces | partly reproduces | does not reproduce | inconclusive | not measured
    reason: str = ""           # why not, chosen from the numbers


FLOOR = {"%": 5.0, "BLEU": 1.0}   # below this for both sides there is no signal to compare
CEILING = {"%": 90.0, "BLEU": 90.0}
COPY_GAIN = 20.0  # points of next-token accuracy a repeated sentence must gain to call a model a copier


def judge(a: float, b: float, unit: str, spread: float | None = None, what: str = "both models",
          n: int | None = None) -> tuple[str, str]:
    """Verdict on 'b is better than a' and, when it is not clearly so, the likely reason from the numbers.
    n: questions behind each accuracy (unit "%"): differences within two standard errors of the
    difference of two proportions, 100·sqrt(2p(1-p)/n), are sampling noise."""
    if max(a, b) < FLOOR[unit]:
        return "inconclusive", (
            f"{what} are at the floor ({a:.1f} and {b:.1f} {unit}): the miniature models are too small or trained "
            "too briefly for this task, so there is no signal to compare (raise --steps / --base-steps)")
    if min(a, b) > CEILING[unit]:
        return "inconclusive", f"{what} are at the ceiling ({a:.1f} and {b:.1f} {unit}): the task is too easy to separate them"
    if spread is not None and abs(b - a) <= 2 * spread:
        return ("partly reproduces" if b > a else "does not reproduce"), (
            f"the difference ({b - a:+.1f} {unit}) is within twice the seed spread (±{spread:.1f}): not resolved at this size")
    if unit == "%" and n:
        p = (a + b) / 200
        noise = 2 * 100 * math.sqrt(2 * p * (1 - p) / n)
        if abs(b - a) <= noise:
            return ("partly reproduces" if b > a else "does not reproduce"), (
                f"the difference ({b - a:+.1f} points) is within sampling noise of {n} questions (±{noise:.1f}, two standard errors)")
    return ("reproduces", "") if b > a else ("does not reproduce", "")


def n_questions(results, group, task, langs) -> int:
    """Questions behind one seed's mean over `langs` (the `n` evaluate.py reports)."""
    total = 0
    for l in langs:
        for r in results["runs"].values():
            sc = r.get("scores", {}).get(eval_key(task, l, "en-X"))
            if r.get("group") == group and r.get("status") == "done" and r.get("seed", 0) == 0 and sc:
                total += int(sc.get("n") or 0)
                break
    return total


def _means(results, group, task, langs, direction="en-X", name="contain") -> dict[str, float]:
    return {l: m for l in langs if (m := mean(values(results, group, task, l, direction, name))) is not None}


def _paired(results, group_a, group_b, task, langs, name="contain") -> tuple:
    """The languages both groups have, each group's per-language means, and its mean over those languages."""
    a, b = _means(results, group_a, task, langs, name=name), _means(results, group_b, task, langs, name=name)
    both = [l for l in langs if l in a and l in b]
    overall = [statistics.fmean(d[l] for l in both) if both else None for d in (a, b)]
    return both, a, b, *overall


def claim_qa_gain(results, langs) -> Claim:
    c = Claim("x-LLaMA beats English-only Alpaca on non-English QA (XQuAD)", "+27.83% mean relative gain, 6 languages")
    both, a, x, ma, mx = _paired(results, "alpaca", "xllama", "xquad", langs)
    if not both:
        return c
    wins = sum(x[l] > a[l] for l in both)
    gains = relative_gains(results, "xllama", both)
    rel = "relative gain undefined (Alpaca 0)" if not gains else (
        f"{statistics.fmean(gains.values()):+.1f}% mean relative gain"
        + (f" (over the {len(gains)} of {len(both)} languages where Alpaca > 0)" if len(gains) < len(both) else ""))
    c.here = f"{rel} on XQuAD containment; mean {ma:.1f} → {mx:.1f}, better in {wins}/{len(both)} languages"
    c.verdict, c.reason = judge(ma, mx, "%", seed_spread(results, "xllama", "xquad", both),
                                n=n_questions(results, "xllama", "xquad", both))
    if c.verdict == "reproduces" and 2 * wins < len(both):
        c.verdict, c.reason = "partly reproduces", f"better on average but in only {wins} of {len(both)} languages"
    en = mean(values(results, "alpaca", "xquad", "en"))
    if c.verdict == "does not reproduce" and not c.reason and en and ma >= 0.8 * en:
        c.reason = (f"Alpaca already answers the other languages almost as well as English ({ma:.1f} vs {en:.1f}): "
                    "the miniature languages render the same facts exactly, leaving little language gap for CoIT to close")
    return c


def claim_flores(results, langs) -> Claim:
    c = Claim("x-LLaMA translates en→X better (Flores)", "+18.89% over earlier LLaMA-based models (here: over Alpaca)")
    both, _, _, ma, mx = _paired(results, "alpaca", "xllama", "flores", langs, name="bleu")
    if not both:
        return c
    c.here = f"mean en→X BLEU {ma:.1f} (Alpaca) → {mx:.1f} (x-LLaMA) over {len(both)} languages"
    c.verdict, c.reason = judge(ma, mx, "BLEU", seed_spread(results, "xllama", "flores", both, name="bleu"))
    return c


def claim_mllama(results, langs) -> Claim:
    c = Claim("m-LLaMA is comparable to the per-language x-LLaMAs", "qualitative (comparable XQuAD/MLQA)")
    both, _, _, mx, mm = _paired(results, "xllama", "mllama-uniform", "xquad", langs)
    if not both:
        return c
    c.here = f"mean XQuAD containment {mx:.1f} (x-LLaMAs) vs {mm:.1f} (m-LLaMA, uniform) over {len(both)} languages"
    if max(mx, mm) < FLOOR["%"]:
        c.verdict, c.reason = judge(mx, mm, "%", what="the models")
    elif mm >= 0.9 * mx - 1.0:                     # comparable = within 10% (or 1 point) of the x-LLaMAs
        c.verdict = "reproduces"
    elif "sampling noise" in (noise := judge(mm, mx, "%", n=n_questions(results, "mllama-uniform", "xquad", both))[1]):
        c.verdict, c.reason = "partly reproduces", f"m-LLaMA is lower, but {noise}"
    else:
        c.verdict = "does not reproduce"
        c.reason = (f"m-LLaMA trains for the same number of steps as one x-LLaMA but shares them across {len(both)} "
                    "languages, so each language gets a fraction of the updates; a miniature model also has little spare capacity")
    return c


def claim_scaling(results) -> Claim:
    c = Claim("translation quality follows a fitted law in the amount of translation data", "qualitative (Eq. 2; fits not published)")
    fit = results["runs"].get("fit", {})
    if not fit.get("fits"):
        return c
    parts, good, rising, floor = [], 0, 0, []
    for l, forms in sorted(fit["fits"].items()):
        pts = sorted((p["size"], p["score"]) for p in fit["points"] if p["lang"] == l)
        r2 = max((f["r2"] for f in forms.values() if f.get("r2") is not None), default=None)
        up = pts[-1][1] - pts[0][1] >= FLOOR["BLEU"]          # rises by at least 1 BLEU over the sweep
        floor += [l] if max(p[1] for p in pts) < FLOOR["BLEU"] else []
        rising += up
        good += up and r2 is not None and r2 >= 0.8
        parts.append(f"{l}: {pts[0][1]:.1f}→{pts[-1][1]:.1f} BLEU ({pts[0][0]}→{pts[-1][0]} pairs), "
                     f"best R²={'n/a' if r2 is None else f'{r2:.2f}'}")
    n = len(fit["fits"])
    c.here = "; ".join(parts)
    c.verdict = "reproduces" if good == n else "partly reproduces" if rising else "does not reproduce"
    if floor:
        c.reason = (f"{', '.join(floor)}: BLEU stays below {FLOOR['BLEU']:.0f} at every size: the miniature models barely "
                    "translate yet, so there is no curve to fit (raise --steps / --base-steps)")
    elif c.verdict != "reproduces":
        c.reason = ("BLEU hardly changes across the swept sizes: at equal steps the model sees only part of the mixture, "
                    "so the number of distinct pairs matters little" if not rising else
                    "few sizes and a small test set make each BLEU point noisy, so a two-parameter law fits loosely")
    return c


def claim_allocation(results, langs) -> Claim:
    c = Claim("allocating a translation budget by the fitted laws beats a uniform split", "qualitative (numbers not published)")
    fit = results["runs"].get("fit", {})
    if results["runs"].get("mllama-fitted", {}).get("status") == "skipped":
        c.reason = results["runs"]["mllama-fitted"]["reason"]
        return c
    u, f = _means(results, "mllama-uniform", "flores", langs, name="bleu"), _means(results, "mllama-fitted", "flores", langs, name="bleu")
    if len(u) < len(langs) or len(f) < len(langs) or "allocation" not in fit:
        return c
    mu, mf = statistics.fmean(u.values()), statistics.fmean(f.values())
    pu, pf = (statistics.fmean(fit["predicted"][k].values()) for k in ("uniform", "allocation"))
    c.here = f"mean en→X BLEU {mu:.1f} (uniform) vs {mf:.1f} (allocated); the laws predicted {pu:.1f} vs {pf:.1f}"
    c.verdict, c.reason = judge(mu, mf, "BLEU")
    if c.verdict != "reproduces" and not c.reason:
        dev = max(abs(fit["allocation"][l] - fit["uniform"][l]) / fit["uniform"][l] for l in langs)
        c.reason = (f"the allocation is within {dev:.0%} of uniform, so both models see almost the same data" if dev < 0.1 else
                    f"the predicted gain ({pf - pu:+.2f} BLEU) is below evaluation noise" if pf - pu < 0.5 else
                    "the fitted laws extrapolate poorly at the allocated sizes, so the predicted gain did not materialise")
    return c


def claim_direction(results, lang) -> Claim:
    c = Claim(f"en→X translation data helps more than X→en ({lang})", "qualitative (ablation)")
    a, b = mean(values(results, "xllama", "xquad", lang)), mean(values(results, "x2en", "xquad", lang))
    ba, bb = mean(values(results, "xllama", "flores", lang, "en-X", "bleu")), mean(values(results, "x2en", "flores", lang, "en-X", "bleu"))
    if None in (a, b, ba, bb):
        return c
    c.here = f"XQuAD-{lang} containment {a:.1f} (en→X data) vs {b:.1f} (X→en data); en→X BLEU {ba:.1f} vs {bb:.1f}"
    qa = judge(b, a, "%", n=n_questions(results, "x2en", "xquad", [lang]))
    mt = judge(bb, ba, "BLEU")
    good = [v == "reproduces" for v, _ in (qa, mt)]
    c.verdict = "reproduces" if all(good) else "partly reproduces" if any(good) else "does not reproduce"
    c.reason = "; ".join(f"{name}: {why or 'X→en data scored higher'}" for name, (v, why) in (("QA", qa), ("en→X BLEU", mt))
                         if v != "reproduces")
    return c


def claim_probe(results) -> Claim:
    c = Claim("hidden states align across languages, most strongly in the middle layers of m-LLaMA", "qualitative (figure)")
    probe = results["runs"].get("probe", {}).get("probe", {})
    m, base = probe_curves(probe.get("mllama-uniform", {})), probe_curves(probe.get("base", {}))
    if "gap" not in m:
        return c
    k, n = best_layer(m["gap"]), len(m["gap"]) - 1
    middle = 0.25 <= k / n <= 0.75
    gain = m["gap"][k] - base["gap"][k] if "gap" in base else None
    raised = gain is None or gain > 0.1 * abs(base["gap"][k])          # at least 10% above the base model
    c.here = f"m-LLaMA's strongest layer is {k} of {n} (pair−non-pair cosine gap {m['gap'][k]:.3f}" + \
        (f", base {base['gap'][k]:.3f})" if gain is not None else ")")
    c.verdict = {2: "reproduces", 1: "partly reproduces", 0: "does not reproduce"}[middle + raised]
    reasons = []
    if not middle:
        reasons.append(f"with only {n} blocks there is no distinct middle" if n <= 3 else
                       f"alignment peaks at layer {k} of {n}: the miniature model has not formed a shared middle representation")
    if not raised:
        reasons.append("fine-tuning did not raise alignment clearly (>10%) above the base model at that layer")
    c.reason = "; ".join(reasons)
    return c


def claim_response_lang(results, langs) -> Claim:
    c = Claim("m-LLaMA answers in the question's language (multilingual instruction following)", "qualitative (MI-Eval, GPT judge)")
    # a rate is missing where no response was decidable
    both, _, _, ma, mm = _paired(results, "alpaca", "mllama-uniform", "xquad", langs, name="resp_lang")
    if not both:
        return c
    c.here = (f"XQuAD responses in the question's language: {ma:.1f}% (Alpaca) vs {mm:.1f}% (m-LLaMA), "
              f"mean over {', '.join(both)}" + (f" ({len(both)} of {len(langs)}: the rest undecidable)" if len(both) < len(langs) else ""))
    c.verdict, c.reason = judge(ma, mm, "%", what="both response-language rates")
    if mm >= CEILING["%"]:
        c.verdict, c.reason = "reproduces", ""
    elif c.verdict == "does not reproduce" and not c.reason:
        c.reason = ("Alpaca answers by copying spans of the non-English passage, so it already responds in the "
                    "passage's language" if ma >= mm else "")
    return c


def copy_evidence(results) -> str:
    """Why QA sits at the floor, when the probe shows it: a model that cannot copy from its context
    cannot look an answer up in the passage (probe.repeat_accuracy on a sentence given twice)."""
    probe = results["runs"].get("probe", {}).get("probe", {})
    for name in ("alpaca-s0", "base"):
        rep = probe.get(name, {}).get("repeat") if isinstance(probe.get(name), dict) else None
        if rep and rep["second"] - rep["first"] < COPY_GAIN:
            return (f"the probe shows why: on a test sentence given twice, {name}'s next-token accuracy goes from "
                    f"{rep['first']:.1f}% on the first copy to only {rep['second']:.1f}% on the second (a model that "
                    "copies from its context nears 100%), so answers cannot be looked up in the passage")
    return ""


def check_claims(results: dict) -> list[Claim]:
    cfg = results.get("config", {})
    langs, mlangs = cfg.get("langs", XLANGS), cfg.get("muit_langs", ())
    claims = [claim_qa_gain(results, langs), claim_flores(results, langs), claim_mllama(results, mlangs),
              claim_scaling(results), claim_allocation(results, mlangs),
              claim_direction(results, cfg.get("ablation_lang", "zh")), claim_probe(results), claim_response_lang(results, mlangs)]
    evidence = copy_evidence(results)
    for c in (claims[0], claims[2], claims[5]):                   # the claims judged on XQuAD
        if evidence and "floor" in c.reason:
            c.reason += "; " + evidence
    return claims
