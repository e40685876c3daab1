"""The paper's claims, checked against a study's results.json: a verdict, the noise it was judged
against, and the likely reason.

    python -c "import json; from study import claims
    print(*claims.check_claims(json.load(open('runs/study/results.json'))), sep='\\n')"
    python -m study.report --results runs/study/results.json  # RESULTS.md: Claims, Sanity checks
    python -m pytest -q tests/test_claims.py   # every verdict rule, on the test's numbers

The numbers, their noise terms and chance levels come from noise.py (`values`, `noise`, `chance`).
Every comparison is judged against its noise; a win inside it is never a reproduction.

`judge(a, b, unit, noise, chance)`, on "b is better than a":
  no noise term                                  -> inconclusive
  both within noise of the chance level          -> inconclusive (at chance)
  both below the floor (1 BLEU; 5 % where the chance level is unknown) -> inconclusive
  both above the ceiling (90)                    -> inconclusive
  |b − a| <= noise                               -> inconclusive (within noise)
  otherwise                                      -> reproduces if b > a, else does not reproduce
Per claim (`check_claims`; any claim without its numbers is "not measured"):
  x-LLaMA vs Alpaca, QA     judged on the mean containment; a clear win in under half the
                            languages -> partly. Relative gain in % only where Alpaca is above
                            chance, else the gain in points
  x-LLaMA vs a LLaMA model  en→X BLEU against group "instr" (translated instructions, no pairs)
  trained on X, Flores      when the study has it, else m-LLaMA: both see X outputs, so the
                            comparison can fail
  m-LLaMA ≈ x-LLaMA         equivalence: d ± noise above −margin (10 %, at least 1 point) ->
                            reproduces; below it -> does not reproduce; straddling it ->
                            inconclusive
  scaling law               each language's BLEU rise from the smallest to the largest size against
                            the bootstrap noise of those two runs: all rise (>= 1 BLEU) with best
                            R² >= 0.8 -> reproduces; none rises and all are flat -> does not; some
                            rise -> partly
  law allocation            judged on the mean BLEU of the allocated vs the uniform m-LLaMA
  en→X vs X→en data         judged on XQuAD containment (the en→X BLEU half is a sanity check)
  middle-layer alignment    no base model, fewer than 3 blocks, or strongest at layer 0 (the
                            embeddings) -> inconclusive; else middle (25–75 % of depth) and raised
                            above base beyond the spread over languages (and by > 10 %): both ->
                            reproduces, one -> partly
  response language ID      m-LLaMA's rate, less its noise, >= 90 % -> reproduces; above Alpaca
                            only -> partly
Sanity checks (kind "sanity": true by construction, so they test the pipeline, not the paper):
x-LLaMA vs Alpaca en→X BLEU (Alpaca never sees X outputs); x-LLaMA vs the X→en-data model en→X
BLEU (it never outputs X). Verdicts: passes | fails | inconclusive, from the same judge.
Closed-book hooks (`closed_book_claims`, on results keys "closedbook:<lang>" and the base's
"cloze:en"): gates (kind "gate": above chance beyond noise; a failed gate makes the claims built on
it inconclusive), then `comparison_claim` / `equivalence_claim` with the rules above.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from study.noise import (ACCURACIES, Noise, at_chance, bootstrap_term, chance, eval_key, fmt, mean,
                         n_items, noise, values)

XLANGS = ("ar", "el", "hi", "tr", "vi", "zh")      # the paper's six languages
MLQA_XLANGS = ("ar", "hi", "vi", "zh")              # the paper's six X that MLQA covers


# ----------------------------------------------------------------------------- probe results

def probe_curves(rec) -> dict:
    """probe.py's result for one model -> {"gap": [...], "retrieval": [...]} per layer, mean over
    languages."""
    per_lang = rec.get("langs", rec) if isinstance(rec, dict) else {}
    curves = {}
    for key in ("gap", "retrieval", "cos_pair"):
        rows = [v[key] for v in per_lang.values()
                if isinstance(v, dict) and isinstance(v.get(key), list)]
        if rows:
            curves[key] = [statistics.fmean(c) for c in zip(*rows)]
    return curves


def best_layer(curve: list[float]) -> int:
    return max(range(len(curve)), key=curve.__getitem__)


# ----------------------------------------------------------------------------- gains over Alpaca

def gains(results, group, langs, task="xquad", name="contain") -> dict[str, tuple[str, float]]:
    """Per language, group's gain over Alpaca on seed means: ("%", (x − a) / a × 100) where Alpaca
    is above chance, else ("points", x − a): a ratio over a baseline at chance measures nothing."""
    out = {}
    for l in langs:
        x, a = (mean(values(results, group, task, l, name=name)),
                mean(values(results, "alpaca", task, l, name=name)))
        if x is None or a is None:
            continue
        low = a <= 0 or at_chance(a, chance(results, task, l),
                                  n_items(results, "alpaca", task, [l]))
        out[l] = ("points", x - a) if low else ("%", (x - a) / a * 100)
    return out


def relative_gains(results, group, langs, task="xquad", name="contain") -> dict[str, float]:
    """Per language (x − alpaca) / alpaca × 100, only where Alpaca is above chance (`gains`)."""
    return {l: v for l, (unit, v) in gains(results, group, langs, task, name).items()
            if unit == "%"}


def gain_summary(results, group, langs, task="xquad") -> str:
    g = gains(results, group, langs, task)
    rel = [v for u, v in g.values() if u == "%"]
    pts = {l: v for l, (u, v) in g.items() if u == "points"}
    parts = [f"{statistics.fmean(rel):+.1f}% mean relative gain"
             + (f" (over the {len(rel)} of {len(g)} languages where Alpaca is above chance)"
                if pts else "")] if rel else []
    if pts:
        parts.append(f"{statistics.fmean(pts.values()):+.1f} points in {', '.join(pts)}, "
                     "where Alpaca is at chance (no relative gain over a baseline at chance)")
    return "; ".join(parts)


# ----------------------------------------------------------------------------- the verdict

@dataclass
class Claim:
    # what the paper says (or, for a sanity check or gate, what must hold)
    claim: str
    paper: str                     # the paper's number (or "qualitative")
    here: str = "not measured"     # what this run measured
    # reproduces | partly reproduces | does not reproduce | inconclusive | not
    verdict: str = "not measured"
    # measured; sanity checks and gates: passes | fails | inconclusive | not measured
    reason: str = ""               # why, chosen from the numbers
    # claim | sanity (true by construction) | gate (a precondition of other claims)
    kind: str = "claim"


# below this for both sides there is no signal (QA: unless the chance level is known)
FLOOR = {"%": 5.0, "BLEU": 1.0}
CEILING = {"%": 90.0, "BLEU": 90.0}
# points of next-token accuracy a repeated sentence must gain to call a model a copier
COPY_GAIN = 20.0


def no_signal(a, b, unit, noise: Noise | None, level: float | None = None,
              what="both models") -> tuple[str, str] | None:
    """("inconclusive", why) when a and b cannot be compared at all, else None."""
    if noise is None:
        return "inconclusive", (f"no noise term for {what} ({a:.1f} vs {b:.1f} {unit}): one seed "
                                "and no per-item scores, so a difference cannot be told from noise")
    if level is not None and max(a, b) <= level + noise.half:
        if max(a, b) - level >= FLOOR[unit]:  # skill, but a noise term wider than it (one seed)
            return "inconclusive", (f"the noise (±{noise.half:.1f}) is wider than {what}' distance "
                                    f"from chance ({a:.1f} and {b:.1f} {unit}; chance "
                                    f"{level:.1f}): not resolved at this size")
        return "inconclusive", (f"{what} are at chance level ({a:.1f} and {b:.1f} {unit}; chance "
                                f"{level:.1f}, noise ±{noise.half:.1f}): no skill to compare")
    if level is None and max(a, b) < FLOOR[unit]:
        return "inconclusive", (f"{what} are at the floor ({a:.1f} and {b:.1f} {unit}): the models "
                                "are too small or trained too briefly for this task, so there is "
                                "no signal to compare (more training steps, or a larger model)")
    if min(a, b) > CEILING[unit]:
        return "inconclusive", (f"{what} are at the ceiling ({a:.1f} and {b:.1f} {unit}): the task "
                                "is too easy to separate them")
    return None


def judge(a: float, b: float, unit: str, noise: Noise | None, chance: float | None = None,
          what: str = "both models") -> tuple[str, str]:
    """Verdict on 'b is better than a' and, when it is not clearly so, the likely reason from the
    numbers."""
    if stop := no_signal(a, b, unit, noise, chance, what):
        return stop
    if abs(b - a) <= noise.half:
        return "inconclusive", (f"the difference ({b - a:+.1f} {unit}) is within noise "
                                f"(±{noise.half:.1f}: {noise.source}): not resolved at this size")
    return ("reproduces", "") if b > a else ("does not reproduce", "")


@dataclass
class Comparison:
    langs: list            # the languages both sides have
    a: dict                # per-language seed means of the baseline
    b: dict                # ... and of the model said to be better
    ma: float              # means over `langs`
    mb: float
    noise: Noise | None
    chance: float | None   # mean chance level over `langs` (accuracies), None when unknown

    def judge(self, unit: str, what="both models") -> tuple[str, str]:
        return judge(self.ma, self.mb, unit, self.noise, self.chance, what)

    def diff(self, unit: str) -> str:
        d = f"difference {self.mb - self.ma:+.1f} {unit}"
        return d + (f" ± {self.noise.half:.1f} ({self.noise.source})" if self.noise
                    else ", noise unknown")

    def at(self) -> str:
        return "" if self.chance is None else f" (chance {self.chance:.1f})"


def compare(results, ga, gb, task, langs, direction="en-X", name="contain") -> Comparison | None:
    """gb against ga on the languages both have, with its noise term and chance level; None if
    none."""
    m = [{l: v for l in langs
          if (v := mean(values(results, g, task, l, direction, name))) is not None}
         for g in (ga, gb)]
    both = [l for l in langs if l in m[0] and l in m[1]]
    if not both:
        return None
    levels = [chance(results, task, l) for l in both] if name in ACCURACIES else [None]
    return Comparison(both, *m, statistics.fmean(m[0][l] for l in both),
                      statistics.fmean(m[1][l] for l in both),
                      noise(results, ga, gb, task, both, direction, name),
                      None if None in levels else statistics.fmean(levels))


# ----------------------------------------------------------------------------- the paper's claims

def comparison_claim(claim, paper, results, ga, gb, task, langs, labels=("a", "b"),
                     name="contain", kind="claim") -> Claim:
    """The generic 'gb beats ga on task' claim (accuracy; BLEU for flores)."""
    c = Claim(claim, paper, kind=kind)
    unit = "BLEU" if task == "flores" else "%"
    cmp = compare(results, ga, gb, task, langs, name="bleu" if task == "flores" else name)
    if cmp:
        c.here = (f"mean {cmp.ma:.1f} ({labels[0]}) → {cmp.mb:.1f} ({labels[1]}){cmp.at()} over "
                  f"{', '.join(cmp.langs)}; {cmp.diff('BLEU' if unit == 'BLEU' else 'points')}")
        c.verdict, c.reason = cmp.judge(unit)
    return c


def equivalence_claim(claim, paper, results, ga, gb, task, langs,
                      labels=("x-LLaMAs", "m-LLaMA"), name="contain") -> Claim:
    """'gb is comparable to ga': within a margin of 10 % of ga (at least 1 point), noise
    included."""
    c = Claim(claim, paper)
    cmp = compare(results, ga, gb, task, langs, name=name)
    if not cmp:
        return c
    margin = max(0.1 * cmp.ma, 1.0)
    c.here = (f"mean {dict(contain='containment', em='EM').get(name, name)} {cmp.ma:.1f} "
              f"({labels[0]}) vs {cmp.mb:.1f} ({labels[1]}){cmp.at()} "
              f"over {', '.join(cmp.langs)}; {cmp.diff('points')}; "
              f"comparable = at most {margin:.1f} points lower")
    if stop := no_signal(cmp.ma, cmp.mb, "%", cmp.noise, cmp.chance, "the models"):
        c.verdict, c.reason = stop
        return c
    d, h = cmp.mb - cmp.ma, cmp.noise.half
    if d - h >= -margin:
        c.verdict = "reproduces"
    elif d + h < -margin:
        c.verdict = "does not reproduce"
        c.reason = (f"{labels[1]} trains for the same number of steps as one x-LLaMA but shares "
                    f"them across {len(cmp.langs)} languages, so each language gets a fraction of "
                    "the updates; a miniature model also has little spare capacity")
    else:
        gap = ("level with" if abs(d) < 0.05
               else f"{abs(d):.1f} points {'below' if d < 0 else 'above'}")
        c.verdict, c.reason = "inconclusive", (
            f"{labels[1]} is {gap} {labels[0]}, but the noise (±{h:.1f}) is too wide to tell "
            f"whether it is within the {margin:.1f}-point margin")
    return c


def claim_qa_gain(results, langs) -> Claim:
    c = Claim("x-LLaMA beats English-only Alpaca on non-English QA (XQuAD)",
              "+27.83% mean relative gain, 6 languages")
    cmp = compare(results, "alpaca", "xllama", "xquad", langs)
    if not cmp:
        return c
    wins = sum(cmp.b[l] > cmp.a[l] for l in cmp.langs)
    gain = gain_summary(results, "xllama", cmp.langs)
    c.here = (f"XQuAD containment: {gain + '; ' if gain else ''}mean {cmp.ma:.1f} → "
              f"{cmp.mb:.1f}{cmp.at()}, {cmp.diff('points')}; "
              f"better in {wins}/{len(cmp.langs)} languages")
    c.verdict, c.reason = cmp.judge("%")
    if c.verdict == "reproduces" and 2 * wins < len(cmp.langs):
        c.verdict, c.reason = "partly reproduces", (f"better on average but in only {wins} of "
                                                    f"{len(cmp.langs)} languages")
    en = mean(values(results, "alpaca", "xquad", "en"))
    if c.verdict == "does not reproduce" and en and cmp.ma >= 0.8 * en:
        c.reason = (f"Alpaca already answers the other languages almost as well as English "
                    f"({cmp.ma:.1f} vs {en:.1f}): the miniature languages render the same facts "
                    "exactly, leaving little language gap for CoIT to close")
    return c


FLORES_BASELINES = (("instr", "translated instructions, no translation pairs"),
                    ("mllama-uniform", "m-LLaMA"))


def claim_flores(results, langs) -> Claim:
    """Against a model that also sees X outputs (so the comparison can fail), as the paper compares
    with other LLaMA-based models; Alpaca, which never sees X outputs, is a sanity check."""
    for group, label in FLORES_BASELINES:
        if cmp := compare(results, group, "xllama", "flores", langs, name="bleu"):
            break
    else:
        return Claim("x-LLaMA translates en→X better than another LLaMA-based model trained on X "
                     "(Flores)", "+18.89% over earlier LLaMA-based models")
    c = Claim("x-LLaMA translates en→X better than another LLaMA-based model trained on X "
              "(Flores)", f"+18.89% over earlier LLaMA-based models (here: over {label})")
    # a ratio needs a baseline off the floor
    clear = cmp.noise is not None and cmp.ma - cmp.noise.half >= FLOOR["BLEU"]
    rel = (f"{(cmp.mb - cmp.ma) / cmp.ma * 100:+.1f}% relative" if clear else
           f"{cmp.mb - cmp.ma:+.1f} BLEU (the baseline is not clearly above "
           f"{FLOOR['BLEU']:.0f} BLEU: no relative gain)")
    c.here = (f"mean en→X BLEU {cmp.ma:.1f} ({label}) → {cmp.mb:.1f} (x-LLaMA) over "
              f"{', '.join(cmp.langs)}: {rel}; {cmp.diff('BLEU')}")
    c.verdict, c.reason = cmp.judge("BLEU")
    return c


def claim_mllama(results, langs) -> Claim:
    return equivalence_claim("m-LLaMA is comparable to the per-language x-LLaMAs",
                             "qualitative (comparable XQuAD/MLQA)", results, "xllama",
                             "mllama-uniform", "xquad", langs, ("x-LLaMAs", "m-LLaMA, uniform"))


def _rise(results, pts, lang) -> tuple[float, Noise | None]:
    """BLEU of the largest minus the smallest sweep size, with the paired bootstrap of those two
    runs."""
    (_, s0, r0), (_, s1, r1) = pts[0], pts[-1]
    boot = (bootstrap_term(results, [(eval_key("flores", lang, "en-X"), [r0], [r1])], "bleu")
            if r0 and r1 else None)
    return s1 - s0, Noise(boot[0], f"paired bootstrap over {boot[1]} sentences") if boot else None


def claim_scaling(results) -> Claim:
    c = Claim("translation quality follows a fitted law in the amount of translation data",
              "qualitative (Eq. 2; fits not published)")
    fit = results["runs"].get("fit", {})
    if not fit.get("fits"):
        return c
    parts, state = [], {}
    for l, forms in sorted(fit["fits"].items()):
        pts = sorted((p["size"], p["score"], p.get("run")) for p in fit["points"] if p["lang"] == l)
        r2 = max((f["r2"] for f in forms.values() if f.get("r2") is not None), default=None)
        rise, nz = _rise(results, pts, l)
        # rises by 1 BLEU, beyond noise
        up = nz is not None and rise - nz.half > 0 and rise >= FLOOR["BLEU"]
        state[l] = ("floor" if max(p[1] for p in pts) < FLOOR["BLEU"] else
                    "no noise" if nz is None else
                    ("fits" if r2 is not None and r2 >= 0.8 else "rises") if up else
                    "flat" if rise + nz.half < FLOOR["BLEU"] else "unresolved")
        parts.append(f"{l}: {pts[0][1]:.1f}→{pts[-1][1]:.1f} BLEU ({pts[0][0]}→{pts[-1][0]} pairs"
                     + (f", rise ±{nz.half:.1f}" if nz else ", noise unknown")
                     + f"), best R²={'n/a' if r2 is None else f'{r2:.2f}'}")
    c.here = "; ".join(parts)
    s = list(state.values())
    rising = sum(x in ("fits", "rises") for x in s)
    c.verdict = ("reproduces" if s.count("fits") == len(s) else
                 "partly reproduces" if rising else
                 "does not reproduce" if s.count("flat") == len(s) else "inconclusive")
    if c.verdict == "does not reproduce":
        c.reason = ("BLEU hardly changes across the swept sizes, beyond noise: at equal steps the "
                    "model sees only part of the mixture, so the number of distinct pairs matters "
                    "little")
    elif c.verdict != "reproduces":
        c.reason = "; ".join(f"{l}: " + {
            "rises": "rises beyond noise, but the law fits loosely (R² < 0.8)",
            "floor": f"BLEU stays below {FLOOR['BLEU']:.0f} at every size (the models barely "
                     "translate)",
            "no noise": "no per-item scores, so the rise cannot be told from noise",
            "unresolved": "the rise is within noise", "flat": "rises less than 1 BLEU, beyond noise"
        }[x] for l, x in state.items() if x != "fits")
    return c


def claim_allocation(results, langs) -> Claim:
    c = Claim("allocating a translation budget by the fitted laws beats a uniform split",
              "qualitative (numbers not published)")
    fit = results["runs"].get("fit", {})
    if results["runs"].get("mllama-fitted", {}).get("status") == "skipped":
        c.reason = results["runs"]["mllama-fitted"]["reason"]
        return c
    cmp = compare(results, "mllama-uniform", "mllama-fitted", "flores", langs, name="bleu")
    if not cmp or len(cmp.langs) < len(langs) or "allocation" not in fit:
        return c
    pu, pf = (statistics.fmean(fit["predicted"][k].values()) for k in ("uniform", "allocation"))
    c.here = (f"mean en→X BLEU {cmp.ma:.1f} (uniform) vs {cmp.mb:.1f} (allocated), "
              f"{cmp.diff('BLEU')}; the laws predicted {pu:.1f} vs {pf:.1f}")
    c.verdict, c.reason = cmp.judge("BLEU")
    dev = max(abs(fit["allocation"][l] - fit["uniform"][l]) / fit["uniform"][l] for l in langs)
    if c.verdict != "inconclusive" and cmp.noise and pf - pu < cmp.noise.half:
        # no effect to detect: whatever the two models differ by is not the laws' doing
        c.verdict, c.reason = "inconclusive", (
            f"the laws predict a gain of only {pf - pu:+.2f} BLEU (the allocation is within "
            f"{dev:.0%} of uniform), below the noise (±{cmp.noise.half:.1f}): the two models "
            "differ by training noise, not by the allocation, so the claim is not tested")
    elif c.verdict == "does not reproduce":
        c.reason = ("the fitted laws extrapolate poorly at the allocated sizes, so the predicted "
                    "gain did not materialise")
    elif c.verdict == "inconclusive":
        c.reason += f"; the laws predicted a gain of only {pf - pu:+.2f} BLEU"
    return c


def claim_direction(results, lang) -> Claim:
    return comparison_claim(f"en→X translation data helps more than X→en data ({lang}, XQuAD "
                            "containment)", "qualitative (ablation)", results, "x2en", "xllama",
                            "xquad", [lang], ("X→en data", "en→X data"))


MIN_PROBE_BLOCKS = 3  # fewer blocks leave no middle layer distinct from the ends


def claim_probe(results) -> Claim:
    c = Claim("hidden states align across languages, most strongly in the middle layers of "
              "m-LLaMA", "qualitative (figure)")
    probe = results["runs"].get("probe", {}).get("probe", {})
    m, base = probe_curves(probe.get("mllama-uniform", {})), probe_curves(probe.get("base", {}))
    if "gap" not in m:
        return c
    k, n = best_layer(m["gap"]), len(m["gap"]) - 1
    c.here = (f"m-LLaMA's strongest layer is {k} of {n} (pair−non-pair cosine gap "
              f"{m['gap'][k]:.3f}"
              + (f", base {base['gap'][k]:.3f})" if "gap" in base else "; no base model probed)"))
    if "gap" not in base:
        c.verdict, c.reason = "inconclusive", ("no base model was probed, so alignment cannot be "
                                               "credited to fine-tuning")
    elif n < MIN_PROBE_BLOCKS:
        c.verdict, c.reason = "inconclusive", (f"with only {n} blocks there is no middle layer "
                                               "distinct from the ends")
    elif k == 0:
        c.verdict, c.reason = "inconclusive", (
            f"alignment is strongest at layer 0, the embeddings (gap {m['gap'][0]:.3f}), before "
            "any block mixes context: the blocks have not built a shared representation, so "
            "where it peaks cannot be tested")
    else:
        mg, bg = _lang_gaps(probe["mllama-uniform"]), _lang_gaps(probe["base"])
        per = [mg[l][k] - bg[l][k] for l in mg if l in bg]
        gain, h = (m["gap"][k] - base["gap"][k],
                   1.96 * statistics.stdev(per) / math.sqrt(len(per)) if len(per) > 1 else None)
        middle = 0.25 <= k / n <= 0.75
        raised = None if h is None or abs(gain) <= h else gain > 0.1 * abs(base["gap"][k])
        c.here += f"; gain over base {gain:+.3f}" + (
            f" ± {h:.3f} (spread over {len(per)} languages)" if h is not None else "")
        if raised is None:
            c.verdict, c.reason = "inconclusive", (
                "fewer than two probed languages: no noise term for the gain over the base"
                if h is None else "the gain over the base model is within the spread over "
                "languages")
        else:
            c.verdict = {2: "reproduces", 1: "partly reproduces", 0: "does not reproduce"}[
                middle + raised]
            c.reason = "; ".join(
                ([] if middle else [f"alignment peaks at layer {k} of {n}, not in the middle"])
                + ([] if raised else
                   ["fine-tuning did not raise alignment clearly (>10%) above the base model"]))
    return c


def _lang_gaps(rec) -> dict[str, list]:
    per_lang = rec.get("langs", rec)
    return {l: v["gap"] for l, v in per_lang.items()
            if isinstance(v, dict) and isinstance(v.get("gap"), list)}


def claim_response_lang(results, langs) -> Claim:
    c = Claim("m-LLaMA responds in the question's language (language ID of the response)",
              "qualitative (MI-Eval: a GPT judge of instruction following, which also checks the "
              "language)")
    # undecidable rates are missing
    cmp = compare(results, "alpaca", "mllama-uniform", "xquad", langs, name="resp_lang")
    if not cmp:
        return c
    c.here = (f"XQuAD responses whose detected language is the question's: {cmp.ma:.1f}% "
              f"(Alpaca) vs {cmp.mb:.1f}% (m-LLaMA), mean over {', '.join(cmp.langs)}"
              + (f" ({len(cmp.langs)} of {len(langs)}: the rest undecidable)"
                 if len(cmp.langs) < len(langs) else "") + f"; {cmp.diff('points')}")
    c.verdict, c.reason = cmp.judge("%", "both response-language rates")
    if cmp.noise and cmp.mb - cmp.noise.half >= CEILING["%"]:
        c.verdict, c.reason = "reproduces", ""
    elif c.verdict == "reproduces":
        c.verdict, c.reason = "partly reproduces", (f"above Alpaca, but not clearly above "
                                                    f"{CEILING['%']:.0f}%")
    elif c.verdict == "does not reproduce":
        c.reason = ("Alpaca answers by copying spans of the non-English passage, so it already "
                    "responds in the passage's language")
    return c


def sanity_checks(results, langs, lang) -> list[Claim]:
    """Comparisons that are true by construction: they test the pipeline (passes / fails), not
    the paper."""
    rows = [comparison_claim("x-LLaMA translates en→X better than Alpaca, which never sees X "
                             "outputs", "by construction", results, "alpaca", "xllama", "flores",
                             langs, ("Alpaca", "x-LLaMA"), kind="sanity"),
            comparison_claim(f"x-LLaMA translates en→{lang} better than the model tuned on "
                             f"{lang}→en pairs, which never outputs {lang} translations",
                             "by construction (the en→X half of the ablation)", results, "x2en",
                             "xllama", "flores", [lang], ("X→en data", "en→X data"),
                             kind="sanity")]
    for c in rows:
        c.verdict = {"reproduces": "passes", "does not reproduce": "fails"}.get(c.verdict,
                                                                                c.verdict)
    return rows


NO_PASSAGE = "-nopassage"   # results key suffix of a QA test asked without its passage


def control_checks(results, langs) -> list[Claim]:
    """The no-passage control, per model group: the same XQuAD/MLQA questions without the passage
    must sit at chance (their answers are names only the passage holds), or the QA numbers measure
    memory, not reading."""
    rows = []
    groups = dict.fromkeys(r.get("group") for r in results["runs"].values())
    for group in groups:
        for task in ("xquad", "mlqa"):
            cells = {l: v for l in ["en", *langs]
                     if (v := values(results, group, task + NO_PASSAGE, l))}
            if not cells:
                continue
            m = statistics.fmean(x for v in cells.values() for x in v)
            levels = [chance(results, task + NO_PASSAGE, l) or chance(results, task, l)
                      for l in cells]
            n = n_items(results, group, task + NO_PASSAGE, list(cells))
            c = Claim(f"{group}: {task} without the passage sits at chance", "the control",
                      kind="sanity")
            if None in levels:
                rows.append(c)
                continue
            level = statistics.fmean(levels)
            c.here = (f"{m:.1f}% without the passage (chance {level:.1f}, {n} questions over "
                      f"{', '.join(cells)})")
            c.verdict = "passes" if at_chance(m, level, n) else "fails"
            c.reason = "" if c.verdict == "passes" else ("answered without reading: the test "
                                                          "leaks its answers")
            rows.append(c)
    return rows


# ----------------------------------------------------------------------------- closed-book
# knowledge transfer (hooks) Facts stated only in English pretraining; closed-book QA tuning on half
# of them; the test asks about the other half (evaluate.py --task closedbook / cloze).
CLOSED_BOOK, CLOZE = "closedbook", "cloze"
# or "em": both carry the test's chance level (1 / size of the answer class)
CLOSED_BOOK_METRIC = "contain"


def gate(results, group, task, lang, what, name=CLOSED_BOOK_METRIC) -> Claim:
    """A precondition: `group` scores above chance on task:lang beyond the binomial margin
    (at_chance)."""
    c = Claim(what, "precondition", kind="gate")
    v, level = values(results, group, task, lang, name=name), chance(results, task, lang)
    if not v or level is None:
        return c
    n = n_items(results, group, task, [lang])
    c.here = f"{fmt(v)}% (chance {level:.1f}, {n} questions, {len(v)} seed{'s' * (len(v) > 1)})"
    c.verdict = "fails" if at_chance(statistics.fmean(v), level, n) else "passes"
    c.reason = "" if c.verdict == "passes" else "at chance: the claims built on it cannot be tested"
    return c


def closed_book_claims(results, langs, mlangs, task=CLOSED_BOOK,
                       name=CLOSED_BOOK_METRIC) -> list[Claim]:
    """Gates, then the issue's claims on the closed-book test ([] when results.json has none)."""
    if not any(k.startswith(task + ":") for r in results["runs"].values()
               for k in r.get("scores", {})):
        return []
    gates = [gate(results, "alpaca", task, "en", "Alpaca answers held-out facts in English above "
                  "chance", name)]
    claims = [comparison_claim("x-LLaMA beats Alpaca on closed-book QA in X about facts seen only "
                               "in English", "the paper's mechanism (qualitative)", results,
                               "alpaca", "xllama", task, langs, ("Alpaca", "x-LLaMA"), name),
              comparison_claim("translation pairs carry the alignment: CoIT beats translated "
                               "instructions alone (closed-book, X)", "ablation (qualitative)",
                               results, "instr", "xllama", task, langs, ("instr_only", "CoIT"),
                               name),
              equivalence_claim("m-LLaMA is comparable to the x-LLaMAs on closed-book QA in X",
                                "qualitative", results, "xllama", "mllama-uniform", task, mlangs,
                                name=name)]
    right = [v for l in langs for v in values(results, "alpaca", task, l, name="right_in_en")]
    if right and claims[0].here != "not measured":
        claims[0].here += (f"; Alpaca gives the right answer in English to "
                           f"{statistics.fmean(right):.1f}% of the X questions")
    untestable(claims, [g for g in gates if g.verdict == "fails"])
    return gates + claims


# ----------------------------------------------------------------------------- the study's gates
# What the miniature must be able to do before the paper's claims can be tested on it, each with
# a threshold (issue 24; docs/world.md says why each matters). A failed gate is printed first in
# RESULTS.md, and the claims built on it are "untestable", not "inconclusive": no verdict of theirs
# would say anything about the paper.

@dataclass(frozen=True)
class Gate:
    key: str            # the claims that depend on it name it in DEPENDS
    what: str           # what must hold
    group: str          # results group and score it reads
    task: str
    langs: str          # "en" or "X": the study's languages, mean over them and their seeds
    name: str
    threshold: float
    unit: str


GATES = (
    Gate("copy", "the base copies from its context: next-token accuracy on the second copy of a "
         "sentence of fresh names and values (probe.copy_test)", "base", "copy", "en", "second",
         80.0, "%"),
    Gate("cloze", "the base completes held-out English facts (cloze, contain)", "base", CLOZE,
         "en", "contain", 90.0, "%"),
    Gate("read", "Alpaca reads: English XQuAD containment with the passage", "alpaca", "xquad",
         "en", "contain", 60.0, "%"),
    Gate("translate", "x-LLaMA translates: Flores en→X BLEU, mean over X", "xllama", "flores",
         "X", "bleu", 20.0, "BLEU"),
)
# which gates each claim needs (by the start of its text); the rest need none
DEPENDS = {"x-LLaMA beats English-only Alpaca on non-English QA": ("copy", "read"),
           "m-LLaMA is comparable to the per-language x-LLaMAs": ("copy", "read"),
           "en→X translation data helps more than X→en data": ("copy", "read"),
           "x-LLaMA translates en→X better than another": ("translate",),
           "translation quality follows a fitted law": ("translate",),
           "allocating a translation budget": ("translate",),
           "x-LLaMA beats Alpaca on closed-book QA": ("cloze",),
           "translation pairs carry the alignment": ("cloze",),
           "m-LLaMA is comparable to the x-LLaMAs on closed-book": ("cloze",)}


def study_gate(results, g: Gate) -> Claim:
    """One gate: passes when the mean (over its languages and seeds) reaches the threshold."""
    c = Claim(g.what, f"≥ {g.threshold:g}{' ' if g.unit == 'BLEU' else ''}{g.unit}", kind="gate")
    langs = ["en"] if g.langs == "en" else list(results.get("config", {}).get("langs", XLANGS))
    direction = "en-X"
    cells = {l: v for l in langs if (v := values(results, g.group, g.task, l, direction, g.name))}
    if not cells:
        return c
    m = statistics.fmean(x for v in cells.values() for x in v)
    per = [f"{l} {statistics.fmean(v):.1f}" for l, v in cells.items()] if len(cells) > 1 else []
    seeds = max(len(v) for v in cells.values())
    if seeds > 1:  # the seeds behind a mean near the threshold
        per.append(("seeds " if len(cells) == 1 else "per seed ") + " / ".join(
            f"{statistics.fmean(v[i] for v in cells.values() if i < len(v)):.1f}"
            for i in range(seeds)))
    c.here = f"{m:.1f} {g.unit}" + (f" ({'; '.join(per)})" if per else "")
    c.verdict = "passes" if m >= g.threshold else "fails"
    return c


def study_gates(results) -> dict[str, Claim]:
    return {g.key: study_gate(results, g) for g in GATES}


def untestable(claims: list[Claim], failed: list[Claim]) -> None:
    """Mark claims whose gate failed: their verdict would say nothing about the paper."""
    for c in claims:
        if failed and c.verdict != "not measured":
            c.verdict, c.reason = "untestable", "gate failed: " + "; ".join(
                f"{g.claim} — {g.here}" for g in failed)


# ----------------------------------------------------------------------------- all of them

def copy_evidence(results) -> str:
    """Why QA sits at chance, when the probe shows it: a model that cannot copy from its context
    cannot look an answer up in the passage (probe.repeat_accuracy on a sentence given twice)."""
    probe = results["runs"].get("probe", {}).get("probe", {})
    for name in ("alpaca-s0", "base"):
        rep = probe.get(name, {}).get("repeat") if isinstance(probe.get(name), dict) else None
        if rep and rep["second"] - rep["first"] < COPY_GAIN:
            return (f"the probe shows why: on a test sentence given twice, {name}'s next-token "
                    f"accuracy goes from {rep['first']:.1f}% on the first copy to only "
                    f"{rep['second']:.1f}% on the second (a model that copies from its context "
                    "nears 100%), so answers cannot be looked up in the passage")
    return ""


BIND_MARGIN = 10.0  # points over chance below which a model is said to barely bind


def bind_evidence(results) -> str:
    """Why Alpaca reads or misses, when the binding probe ran (probe.bind_test): of the spans the
    passage gives for the asked relation, is the asked person's the likeliest?"""
    alp, base = values(results, "alpaca", "bind", "en", name="bind"), \
        values(results, "base", "bind", "en", name="bind")
    recs = [r["scores"]["bind:en"] for r in results["runs"].values()
            if (r.get("scores") or {}).get("bind:en")]
    if not alp or not recs:
        return ""
    level = recs[0]["chance"]
    seeds = f" (seeds {' / '.join(f'{v:.1f}' for v in alp)})" if len(alp) > 1 else ""
    text = (f"binding (probe.bind_test: the asked person's span likelier than another person's "
            f"span of the same relation, {recs[0]['n']} fresh questions, chance {level:.1f} %): "
            f"Alpaca {mean(alp):.1f} %{seeds}")
    if base:
        text += f", the base {base[0]:.1f} %"
        if base[0] - level < BIND_MARGIN:
            text += ("; the base barely binds, so whether Alpaca reads rests on what fine-tuning "
                     "teaches it")
    return text


def check_claims(results: dict, gated: bool = True) -> list[Claim]:
    """The paper's claims, then the sanity checks, then (when measured) the closed-book gates and
    claims. gated=False: a claim keeps its own verdict when its gate fails (study.report
    --compare shows both)."""
    cfg = results.get("config", {})
    langs, mlangs, lang = (cfg.get("langs", XLANGS), cfg.get("muit_langs", ()),
                           cfg.get("ablation_lang", "zh"))
    qa = [claim_qa_gain(results, langs), claim_mllama(results, mlangs),
          claim_direction(results, lang)]
    claims = [qa[0], claim_flores(results, langs), qa[1], claim_scaling(results),
              claim_allocation(results, mlangs), qa[2], claim_probe(results),
              claim_response_lang(results, mlangs)]
    evidence = copy_evidence(results)
    for c in qa:                                         # the claims judged on extractive QA
        if evidence and ("floor" in c.reason or "chance" in c.reason):
            c.reason += "; " + evidence
    gates = study_gates(results)
    if gates["read"].verdict == "fails":
        gates["read"].reason = bind_evidence(results)
    closed = closed_book_claims(results, langs, mlangs)
    for c in claims + closed if gated else ():
        need = next((keys for start, keys in DEPENDS.items() if c.claim.startswith(start)), ())
        untestable([c], [gates[k] for k in need if gates[k].verdict == "fails"])
    return (list(gates.values()) + claims + sanity_checks(results, langs, lang)
            + control_checks(results, langs) + closed)
