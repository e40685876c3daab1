"""The sections of RESULTS.md, each a function of results.json alone (report.py puts them in order).

    python -c "from study import report, tables
    print(tables.headline_table(report.load_results('runs/study')))"

One function per table or section (headline, claims, setup, QA, gains, translation, response
language, scaling, alignment, copying), the notes printed under them, and the cell helpers they
share: "—" for a missing run, mean±std over seeds (noise.fmt), † on a QA score within noise of its
chance level. report.py's docstring lists what each section holds.
"""
from __future__ import annotations

import json
import statistics

from study.claims import MLQA_XLANGS, NO_PASSAGE, XLANGS, best_layer, gains, probe_curves
from study.noise import at_chance, chance, fmt, mean, n_items, values

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


def _control(results, group, task, langs) -> str:
    """' ‖ 0.0': the same questions without the passage (the control), beside a QA cell."""
    v = [x for l in langs for x in values(results, group, task + NO_PASSAGE, l)]
    return f" ‖ {statistics.fmean(v):.1f}" if v else ""


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
                         + _mark(results, group, task, [l], mean(acc))
                         + _control(results, group, task, [l]))
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
            # the share of responses in the target language: a model that answers X→en in X
            # (x-LLaMA has only seen translations into X) scores ~0 BLEU for that reason alone
            rate = mean(values(results, group, "flores", l, direction, "resp_lang"))
            tgt = "en" if direction == "X-en" else l
            bleus.append(mean(b))
            cells.append("—" if not b else f"{fmt(b)} / {fmt(c)}"
                         + ("" if rate is None else f" ({rate:.0f}% {tgt})"))
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
    return _table(["model"] + langs, cells) + bind_section(results)


def bind_section(results) -> str:
    """Binding (probe.bind_test) of every run that measured it, after the copying table."""
    rows = [[name, f"{s['bind']:.1f}", f"{s['chance']:.1f}", str(s["n"])]
            for name, r in results["runs"].items() if (s := (r.get("scores") or {}).get("bind:en"))]
    head = ["model", "binds %", "chance %", "questions"]
    return "\n\n" + BIND_NOTE + "\n\n" + _table(head, rows) if rows else ""


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
            + f"Preset: {cfg.get('preset') or ('quick' if cfg.get('quick') else 'default')} "
            f"({cfg.get('arch', '?')} base"
            + (f", {cfg['base_steps']} pretraining steps" if cfg.get("base_steps") else "") + ", "
            f"{cfg.get('steps', '?')} steps per fine-tuning run, "
            f"{cfg.get('replay', 0):.0%} of its examples ask documents: train.py --replay). "
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
             + _control(results, g, "xquad", [l]) for g, _ in HEAD_MODELS]
        c = chance(results, "xquad", l)
        b = [fmt(values(results, g, "flores", l, "en-X", "bleu")) for g, _ in HEAD_MODELS]
        rows.append([l] + q + ["—" if c is None else f"{c:.1f}"] + b)
    return _table(["lang", "XQuAD contain: Alpaca", "x-LLaMA", "m-LLaMA", "chance",
                   "Flores en→X BLEU: Alpaca", "x-LLaMA", "m-LLaMA"], rows)


INTRO = ("Every number below was produced by the run described in *Setup*, on the miniature world "
         "(world.py), not on real LLaMA-7B or the real benchmarks: they test whether the paper's "
         "*mechanisms* show up at toy scale, not its absolute numbers.")
CHANCE_NOTE = ("‖ x: the no-passage control, the same questions without their passage (it must "
               "sit at chance: the answers are names only the passage holds). "
               f"{MARK}: within noise of the chance level (or below it). Chance = containment "
               "expected from answering with the gold answer of another test question of the same "
               "kind (evaluate.qa_chance).")
GATE_NOTE = ("A claim is tested only on a miniature that can do what the claim needs: read its "
             "passage (copy and Alpaca's English QA), remember its facts (cloze) and translate "
             "(x-LLaMA's en→X). A claim whose gate failed is **untestable**: its numbers are "
             "shown, but no verdict is drawn from them.")
NOISE_NOTE = ("Every comparison is judged against a noise term: seed spread (t × pooled standard "
              "error) and a paired bootstrap over the test items (binomial without predictions), "
              "combined. A difference within it, or two models at chance, is **inconclusive**, "
              "never a reproduction (claims.py, noise.py).")
METRIC_NOTES = [
    "- **contain**: containment accuracy (%), the paper's QA metric — the lower-cased first gold "
    "answer is a substring of the lower-cased response. **EM/F1** (in parentheses): SQuAD-style "
    "exact match and token F1 (×100) on the extracted answer with MLQA's per-language "
    "normalisation (evaluate.py).",
    "- **(n% xx)** after a Flores cell: the share of responses written in the target language "
    "(metrics.in_language). x-LLaMA's X→en is near 0 BLEU because it answers in X: its only "
    "translation data go en→X, and the miniature base, unlike LLaMA, cannot translate into "
    "English by itself; the X→en-data ablation model answers in English (docs/reproducing.md).",
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
BIND_NOTE = ("Binding (probe.bind_test): on fresh passages like the XQuAD test's, the share of "
             "questions whose answer is likelier than the span of the same relation for another "
             "person of the passage (the base in its reading documents' \"Q: … A:\" format, "
             "Alpaca in the evaluation's prompt). Copying finds a span of the right relation; "
             "binding picks the right person's.")
PROBE_NOTE = ("Cell = mean over languages of (mean cosine of translation pairs − mean cosine of "
              "non-pairs) of mean-pooled hidden states / top-1 retrieval accuracy English→X; the "
              "layer with the largest gap is the strongest alignment.")
COPY_NOTE = ("Cell = greedy next-token accuracy (%) on tokens 2..L of a Flores-style test "
             "sentence, first copy → second copy, when the sentence is fed twice. A model that can "
             "copy from "
             "its context scores near 100% on the second copy; extractive QA (the answer is a span "
             "of the passage) needs that ability.")


def gates_part(results: dict, checked: list) -> list[str]:
    """The gates first (claims.GATES and the closed-book gate): a failed one is named before the
    table, with the claims it makes untestable."""
    rows = [[c.claim, c.paper, c.here, f"**{c.verdict}**"] for c in checked if c.kind == "gate"]
    failed = [c for c in checked if c.kind == "gate" and c.verdict == "fails"]
    lost = [c.claim for c in checked if c.verdict == "untestable"]
    head = (["**Gate failed:** " + "; ".join(f"{c.claim} ({c.here}; needs {c.paper})"
                                             for c in failed)
             + (f". Untestable because of it: {'; '.join(lost)}." if lost else ".")
             + "".join(f" Why: {c.reason}." for c in failed
                       if c.reason), ""]
            if failed else ["Every gate passed." if all(c.verdict == "passes" for c in checked
                                                         if c.kind == "gate")
                            else "Not every gate was measured.", ""])
    return ["## Gates (what the miniature must do before a claim can be tested)", "", GATE_NOTE,
            "", *head, _table(["what must hold", "needs", "here", "verdict"], rows), ""]


def claims_part(results: dict, checked: list) -> list[str]:
    """The claims table, then the sanity checks (incl. the no-passage controls), each its own."""
    kinds = {k: [[c.claim, c.paper, c.here, f"**{c.verdict}**", c.reason or "—"]
                 for c in checked if c.kind == k]
             for k in ("claim", "sanity")}
    return [
        "## Claims of the paper, checked", "", NOISE_NOTE, "",
        _table(["claim", "paper", "here", "verdict", "likely reason"], kinds["claim"]), "",
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
