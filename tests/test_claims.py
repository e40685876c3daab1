"""claims.py and noise.py: every verdict rule, noise term and chance rule on numbers chosen by the test.

Per-item scores are fake predictions.jsonl files written here, laid out as reproduce.py lays out a study
(OUT/models/<run>/eval/<task>-<lang>[-<direction>]/predictions.jsonl), so the paired bootstrap reads them
the way it reads a real study.
"""
import inspect
import json

import pytest

from study import claims as C
from study import noise as N
from metrics import qa_chance, question_frames
from metrics import corpus_bleu

NZ = N.Noise  # Noise(half, source)


# ----------------------------------------------------------------------------- fake studies

class Study:
    """A results.json under construction, with the predictions.jsonl of every run it adds."""

    def __init__(self, folder, langs=("ar",), muit=("ar",)):
        self.folder = folder
        self.res = {"config": {"out": str(folder), "langs": list(langs), "muit_langs": list(muit), "ablation_lang": "ar"},
                    "runs": {}, "stages": {}}

    def _run(self, name, group, lang, seed, key, scores, rows):
        d = self.folder / "models" / name
        if rows is not None:
            out = d / "eval" / key.replace(":", "-")
            out.mkdir(parents=True, exist_ok=True)
            (out / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        r = self.res["runs"].setdefault(name, {"group": group, "status": "done", "langs": [lang], "seed": seed,
                                               "model_dir": str(d), "scores": {}})
        r["scores"][key] = scores
        return self

    def qa(self, name, group, lang, correct, seed=0, chance=None, task="xquad", files=True):
        """correct: one bool per question (the prediction contains the gold answer or not)."""
        rows = [{"id": f"q{i}", "question": f"What is the favorite color of N{i}?", "answers": ["red"],
                 "prediction": "red" if c else "blue"} for i, c in enumerate(correct)]
        scores = {"n": len(rows), "contain": 100.0 * sum(correct) / len(rows), "lang_rate": None}
        if chance is not None:
            scores["chance"] = chance
        return self._run(name, group, lang, seed, f"{task}:{lang}", scores, rows if files else None)

    def flores(self, name, group, lang, hyps, refs, seed=0, files=True):
        rows = [{"id": f"f{i}", "tgt_lang": lang, "reference": r, "prediction": h} for i, (h, r) in enumerate(zip(hyps, refs))]
        scores = {"n": len(rows), "bleu": corpus_bleu(hyps, refs).score}
        return self._run(name, group, lang, seed, f"flores:{lang}:en-X", scores, rows if files else None)

    def value(self, name, group, lang, key, scores, seed=0):
        return self._run(name, group, lang, seed, key, scores, None)

    @property
    def results(self):
        return N.with_predictions(self.res, self.folder)


def bools(n_true, n):
    return [i < n_true for i in range(n)]


REFS = [f"the favorite color of person {i} is green and {i} eats grapes" for i in range(60)]


def hyps(n_right):
    """The first n_right hypotheses are the references, the rest are wrong words of the same length."""
    return [r if i < n_right else " ".join("zz" for _ in r.split()) for i, r in enumerate(REFS)]


# ----------------------------------------------------------------------------- judge

def test_judge_takes_a_noise_term_always():
    assert inspect.signature(C.judge).parameters["noise"].default is inspect.Parameter.empty
    v, why = C.judge(30.0, 60.0, "%", None)
    assert v == "inconclusive" and "no noise term" in why            # one seed, no items: never "reproduces"


def test_judge_rules():
    assert C.judge(30.0, 40.0, "%", NZ(2.0, "seeds")) == ("reproduces", "")
    assert C.judge(40.0, 30.0, "%", NZ(2.0, "seeds")) == ("does not reproduce", "")
    v, why = C.judge(30.0, 32.0, "%", NZ(2.5, "seeds 2 vs 2"))      # a win inside the noise: not "partly"
    assert v == "inconclusive" and "within noise (±2.5: seeds 2 vs 2)" in why
    v, why = C.judge(1.0, 6.5, "%", NZ(1.0, "x"), chance=6.0)      # both at chance
    assert v == "inconclusive" and "chance level" in why and "chance 6.0" in why
    assert C.judge(0.0, 20.0, "%", NZ(2.0, "x"), chance=6.0) == ("reproduces", "")   # one clearly above chance
    assert "floor" in C.judge(1.0, 3.0, "%", NZ(0.5, "x"))[1]      # no chance level known: the 5 % floor
    v, why = C.judge(22.6, 23.0, "%", NZ(68.9, "x"), chance=0.1)    # skill, but one seed's huge noise
    assert v == "inconclusive" and "chance level" not in why and "noise (±68.9) is wider" in why
    assert "floor" in C.judge(0.2, 0.8, "BLEU", NZ(0.1, "x"))[1]
    assert "ceiling" in C.judge(95.0, 99.0, "%", NZ(1.0, "x"))[1]


# ----------------------------------------------------------------------------- noise terms

def test_seed_term_is_t_times_pooled_standard_error():
    # a = 1, 3 and b = 5, 7: pooled variance 2, standard error sqrt(2 · (1/2 + 1/2)), t(df 2) = 4.30
    assert N.seed_term([1.0, 3.0], [5.0, 7.0]) == pytest.approx(4.30 * 2 ** 0.5)
    assert N.seed_term([1.0], [5.0]) is None                        # one seed each: no spread to measure
    assert N.seed_term([1.0], [5.0, 7.0]) == pytest.approx(12.71 * (2 * 1.5) ** 0.5)   # df 1
    assert N.t95(7) == N.T95[6] and N.t95(1000) == 1.96             # rounded toward caution


def test_binomial_term_is_not_zero_at_zero():
    assert N.binomial_term(0.0, 0.0, 200, 200) > 1.0
    assert N.binomial_term(50.0, 50.0, 200, 200) == pytest.approx(196 * (2 * 0.5 * 0.5 / 200) ** 0.5, rel=0.02)


def test_paired_bootstrap_reads_predictions_and_pairs_items(tmp_path):
    # both models right on the same 90 of 200 questions; b also on 10 more: +5 points, paired noise ~3
    s = Study(tmp_path).qa("a", "alpaca", "ar", bools(90, 200)).qa("b", "xllama", "ar", bools(100, 200))
    nz = N.noise(s.results, "alpaca", "xllama", "xquad", ["ar"])
    assert "paired bootstrap over 200 items" in nz.source and 2.0 < nz.half < 4.0
    assert nz.half < N.binomial_term(45.0, 50.0, 200, 200) / 2      # pairing removes the shared items' noise
    assert N.noise(s.results, "alpaca", "xllama", "xquad", ["ar"]) == nz                   # seeded: the same every time
    assert C.judge(45.0, 50.0, "%", nz) == ("reproduces", "")
    nz = N.noise(s.res, "alpaca", "xllama", "xquad", ["ar"])       # no study folder: the binomial term instead
    assert nz.source == "binomial over 200 and 200 questions" and nz.half > 9


def test_items_that_do_not_give_back_the_recorded_score_are_not_used(tmp_path):
    s = Study(tmp_path).qa("a", "alpaca", "ar", bools(90, 200)).qa("b", "xllama", "ar", bools(100, 200))
    s.res["runs"]["b"]["scores"]["xquad:ar"]["contain"] = 70.0     # re-evaluated since: predictions are stale
    assert N.items(s.results, "b", "xquad:ar", "contain") is None
    assert "binomial" in N.noise(s.results, "alpaca", "xllama", "xquad", ["ar"]).source


def test_bleu_from_item_statistics_is_corpus_bleu(tmp_path):
    s = Study(tmp_path).flores("m", "mllama-uniform", "ar", hyps(20), REFS)
    ids, st = N.items(s.results, "m", "flores:ar:en-X", "bleu")
    assert len(ids) == 60 and float(N._value("bleu", st.sum(0))) == pytest.approx(corpus_bleu(hyps(20), REFS).score)


# ----------------------------------------------------------------------------- chance level

def test_question_frames_drop_names_and_chance_is_the_answer_class():
    qs = [f"What is the favorite color of {n}?" for n in ("Ana", "Bo", "Cy", "Di")] + [f"How old is {n}?" for n in ("Ed", "Fa")]
    frames = question_frames(qs, "en", min_share=0.3)
    assert frames[0] == frames[3] == ("color", "favorite", "is", "of", "what") and frames[4] == frames[5] == ("how", "is", "old")
    golds = [["red"], ["red"], ["blue"], ["green"], ["30"], ["41"]]
    # colour questions draw from the 3 other colours: red 1/3, red 1/3, blue 0, green 0; ages: 0, 0
    assert qa_chance(qs, golds, "en") == pytest.approx(100 * (2 / 3) / 6)
    zh = ["塞西拉最喜欢的颜色是什么？", "特蒂马最喜欢的颜色是什么？", "米比波今年多少岁？", "洛苏巴今年多少岁？"]
    f = question_frames(zh, "zh", min_share=0.4)                     # character bigrams: names drop out
    assert f[0] == f[1] and f[2] == f[3] and f[0] != f[2]


def test_at_chance_and_the_chance_of_a_study(tmp_path):
    assert N.at_chance(7.0, 6.0, 200) and not N.at_chance(12.0, 6.0, 200)   # margin ~3 points over 200 questions
    assert N.at_chance(1.0, 0.0, 200) and N.at_chance(3.0, 6.0, None) and N.at_chance(3.0, None, 200) is None
    s = Study(tmp_path).qa("a", "alpaca", "ar", bools(10, 40), chance=6.5)
    assert N.chance(s.results, "xquad", "ar") == 6.5                # stored by evaluate.py
    del s.res["runs"]["a"]["scores"]["xquad:ar"]["chance"]          # an older study: from its predictions
    assert N.chance(s.results, "xquad", "ar") == pytest.approx(100 * 39 / 39)   # every gold is "red"
    assert N.chance(s.res, "xquad", "ar") is None                   # neither


def test_qa_claim_at_chance_is_inconclusive(tmp_path):
    s = Study(tmp_path).qa("a", "alpaca", "ar", bools(0, 200), chance=6.0).qa("x", "xllama", "ar", bools(9, 200), chance=6.0)
    c = C.claim_qa_gain(s.results, ["ar"])
    assert c.verdict == "inconclusive" and "chance level" in c.reason and "(chance 6.0)" in c.here


# ----------------------------------------------------------------------------- relative gain

def test_no_percentage_over_a_baseline_at_chance(tmp_path):
    s = Study(tmp_path, langs=("ar", "zh"))
    s.qa("a-ar", "alpaca", "ar", bools(40, 200), chance=6.0).qa("x-ar", "xllama", "ar", bools(60, 200), chance=6.0)
    s.qa("a-zh", "alpaca", "zh", bools(14, 200), chance=6.0).qa("x-zh", "xllama", "zh", bools(40, 200), chance=6.0)
    g = C.gains(s.results, "xllama", ["ar", "zh"])
    assert g == {"ar": ("%", pytest.approx(50.0)), "zh": ("points", pytest.approx(13.0))}   # 7 % is at chance 6 %
    assert C.relative_gains(s.results, "xllama", ["ar", "zh"]) == {"ar": pytest.approx(50.0)}
    here = C.claim_qa_gain(s.results, ["ar", "zh"]).here
    assert "+50.0% mean relative gain (over the 1 of 2 languages where Alpaca is above chance)" in here
    assert "+13.0 points in zh, where Alpaca is at chance" in here and "+185" not in here   # (20 − 7) / 7


def test_relative_gain_without_a_chance_level_divides_only_by_nonzero(tmp_path):
    s = Study(tmp_path).qa("a", "alpaca", "ar", bools(0, 200), files=False).qa("x", "xllama", "ar", bools(20, 200), files=False)
    assert C.gains(s.results, "xllama", ["ar"]) == {"ar": ("points", 10.0)}


# ----------------------------------------------------------------------------- the claims

def fitted_study(folder, uniform, fitted, files=True):
    s = Study(folder, muit=("ar",))
    s.flores("u", "mllama-uniform", "ar", hyps(uniform), REFS, files=files).flores("f", "mllama-fitted", "ar", hyps(fitted), REFS, files=files)
    s.res["runs"]["fit"] = {"group": "fit", "status": "done", "allocation": {"ar": 3000}, "uniform": {"ar": 3000},
                            "predicted": {"uniform": {"ar": 1.3}, "allocation": {"ar": 1.6}}, "form": "power", "minimum": 300,
                            "fits": {}, "points": []}
    return s


def test_allocation_needs_a_noise_term(tmp_path):
    # one seed each and no per-item scores (the "1.3 vs 1.6 BLEU reproduces"): inconclusive
    c = C.claim_allocation(fitted_study(tmp_path / "a", 20, 21, files=False).results, ["ar"])
    assert c.verdict == "inconclusive" and "no noise term" in c.reason
    c = C.claim_allocation(fitted_study(tmp_path / "b", 20, 21).results, ["ar"])     # one more sentence right
    assert c.verdict == "inconclusive" and "within noise" in c.reason and "paired bootstrap over 60 items" in c.here
    # the laws predict +0.3 BLEU: a large measured difference either way is not the laws' doing
    for name, u, f in (("c", 10, 50), ("d", 50, 10)):
        c = C.claim_allocation(fitted_study(tmp_path / name, u, f).results, ["ar"])
        assert c.verdict == "inconclusive" and "predict a gain of only +0.30 BLEU" in c.reason, c.reason
    for name, u, f, verdict in (("e", 10, 50, "reproduces"), ("g", 50, 10, "does not reproduce")):
        s = fitted_study(tmp_path / name, u, f)
        s.res["runs"]["fit"]["predicted"]["allocation"]["ar"] = 40.0          # a gain the laws promise
        c = C.claim_allocation(s.results, ["ar"])
        assert c.verdict == verdict and (c.reason or verdict == "reproduces"), (c.verdict, c.reason)


def test_sanity_checks_are_kept_apart(tmp_path):
    s = Study(tmp_path).flores("a", "alpaca", "ar", hyps(0), REFS).flores("x", "xllama", "ar", hyps(40), REFS)
    s.flores("r", "x2en", "ar", hyps(0), REFS)
    rows = C.sanity_checks(s.results, ["ar"], "ar")
    assert [c.kind for c in rows] == ["sanity", "sanity"] and [c.verdict for c in rows] == ["passes", "passes"]
    flores = C.claim_flores(s.results, ["ar"])                     # only Alpaca to compare with: no claim
    assert flores.verdict == "not measured" and "Alpaca" not in flores.paper
    s.flores("m", "mllama-uniform", "ar", hyps(45), REFS)           # a model that also outputs X: can fail
    flores = C.claim_flores(s.results, ["ar"])
    assert flores.verdict == "does not reproduce" and "over m-LLaMA" in flores.paper
    s.flores("i", "instr", "ar", hyps(10), REFS)                    # translated instructions only: preferred
    assert C.claim_flores(s.results, ["ar"]).verdict == "reproduces"
    s.res["runs"]["x"]["scores"]["flores:ar:en-X"]["bleu"] = 0.0    # a pipeline that lost x-LLaMA's outputs
    s.flores("x", "xllama", "ar", hyps(0), REFS)
    s.flores("a", "alpaca", "ar", hyps(40), REFS)
    assert C.sanity_checks(s.results, ["ar"], "ar")[0].verdict == "fails"
    kinds = [c.kind for c in C.check_claims(s.results)]
    assert set(kinds) == {"gate", "claim", "sanity"} and kinds[:len(C.GATES)] == ["gate"] * len(C.GATES)


def test_direction_claim_is_judged_on_qa(tmp_path):
    s = Study(tmp_path).qa("x", "xllama", "ar", bools(80, 200), chance=6.0).qa("r", "x2en", "ar", bools(40, 200), chance=6.0)
    c = C.claim_direction(s.results, "ar")
    assert c.verdict == "reproduces" and "BLEU" not in c.here
    s.qa("r", "x2en", "ar", bools(100, 200), chance=6.0)
    assert C.claim_direction(s.results, "ar").verdict == "does not reproduce"


def test_mllama_equivalence(tmp_path):
    def verdict(x, m, folder):
        s = Study(tmp_path / folder).qa("x", "xllama", "ar", bools(x, 400), chance=2.0).qa("m", "mllama-uniform", "ar", bools(m, 400), chance=2.0)
        return C.claim_mllama(s.results, ["ar"])
    assert verdict(200, 200, "same").verdict == "reproduces"
    c = verdict(240, 80, "far")
    assert c.verdict == "does not reproduce" and "languages" in c.reason
    c = verdict(200, 180, "near")                                     # 5 points lower ± ~2: straddles the 5-point margin
    assert c.verdict == "inconclusive" and "margin" in c.reason and "5.0 points below" in c.reason and "over ar;" in c.here


def scaling_study(folder, small, large, files=True):
    s = Study(folder).flores("s", "sweep", "ar", hyps(small), REFS, files=files).flores("l", "xllama", "ar", hyps(large), REFS, files=files)
    b = lambda r: s.res["runs"][r]["scores"]["flores:ar:en-X"]["bleu"]  # noqa: E731
    s.res["runs"]["fit"] = {"group": "fit", "status": "done", "fits": {"ar": {"power": {"params": {"alpha": 1, "beta": 1}, "r2": 0.9}}},
                            "points": [{"lang": "ar", "size": 300, "score": b("s"), "run": "s"},
                                       {"lang": "ar", "size": 5000, "score": b("l"), "run": "l"}]}
    return s


def test_scaling_rise_against_noise(tmp_path):
    assert C.claim_scaling(scaling_study(tmp_path / "a", 10, 50).results).verdict == "reproduces"
    c = C.claim_scaling(scaling_study(tmp_path / "b", 30, 30).results)
    assert c.verdict == "does not reproduce" and "hardly changes" in c.reason
    c = C.claim_scaling(scaling_study(tmp_path / "c", 10, 50, files=False).results)
    assert c.verdict == "inconclusive" and "no per-item scores" in c.reason


def probe_results(peaks, base=True, depth=5, langs=("ar", "zh"), lift=(0.2, 0.2)):
    curve = lambda peak, h: [h - 0.01 * (k - peak) ** 2 for k in range(depth)]  # noqa: E731
    probe = {"mllama-uniform": {"langs": {l: {"gap": curve(p, 0.1 + d)} for l, p, d in zip(langs, peaks, lift)}}}
    if base:
        probe["base"] = {"langs": {l: {"gap": curve(p, 0.1)} for l, p in zip(langs, peaks)}}
    return {"runs": {"probe": {"probe": probe}}}


def test_probe_verdicts():
    assert C.claim_probe(probe_results((2, 2))).verdict == "reproduces"                # layer 2 of 4, raised
    c = C.claim_probe(probe_results((2, 2), base=False))
    assert c.verdict == "inconclusive" and "no base model" in c.reason
    c = C.claim_probe(probe_results((1, 1), depth=3))                                   # a 2-block model
    assert c.verdict == "inconclusive" and "only 2 blocks" in c.reason and "layer is 1 of 2" in c.here
    c = C.claim_probe(probe_results((0, 0)))
    assert c.verdict == "inconclusive" and "layer 0, the embeddings" in c.reason and "0 of 4" in c.here
    c = C.claim_probe(probe_results((2, 2), lift=(0.3, -0.1)))                          # languages disagree
    assert c.verdict == "inconclusive" and "spread over languages" in c.reason
    assert C.claim_probe(probe_results((4, 4))).verdict == "partly reproduces"         # raised, but at the last layer


def test_response_language_row_names_what_it_measures(tmp_path):
    s = Study(tmp_path)
    for name, group, rate in (("a", "alpaca", 0.0), ("m", "mllama-uniform", 100.0)):
        s.value(name, group, "ar", "xquad:ar", {"lang_rate": rate, "n": 200})
    c = C.claim_response_lang(s.res, ["ar"])
    assert "language ID" in c.claim and "instruction following" not in c.claim
    assert c.verdict == "inconclusive" and "no noise term" in c.reason              # one seed, no predictions
    for m, verdict in ((98.0, "reproduces"), (60.0, "partly reproduces")):       # seeds: 100 ± 4.3 and 62 ± 4.3
        s.value("a1", "alpaca", "ar", "xquad:ar", {"lang_rate": 0.0}, seed=1)
        s.value("m1", "mllama-uniform", "ar", "xquad:ar", {"lang_rate": m}, seed=1)
        s.value("m", "mllama-uniform", "ar", "xquad:ar", {"lang_rate": m + 2})
        assert C.claim_response_lang(s.res, ["ar"]).verdict == verdict


# ----------------------------------------------------------------------------- closed-book hooks

def closed_book(folder, base, alpaca_en, alpaca_x, xllama_x):
    s = Study(folder, langs=("de",), muit=("de",))
    s.value("base", "", "en", "cloze:en", {"n": 60, "contain": base, "chance": 10.0})
    s.res["runs"]["base"]["kind"] = "base"
    s.value("a", "alpaca", "en", "closedbook:en", {"n": 60, "contain": alpaca_en, "chance": 10.0})
    s.value("a", "alpaca", "de", "closedbook:de", {"n": 60, "contain": alpaca_x, "chance": 10.0, "right_in_en": 30.0})
    return s.value("x", "xllama", "de", "closedbook:de", {"n": 60, "contain": xllama_x, "chance": 10.0})


def test_closed_book_gates_and_claims(tmp_path):
    assert C.closed_book_claims(Study(tmp_path).res, ["ar"], ["ar"]) == []           # not in this study
    rows = C.closed_book_claims(closed_book(tmp_path, 90.0, 60.0, 0.0, 60.0).res, ["de"], ["de"])
    assert rows[0].kind == "gate" and rows[0].verdict == "passes"
    assert rows[1].verdict == "reproduces" and "right answer in English to 30.0%" in rows[1].here
    assert rows[2].verdict == rows[3].verdict == "not measured"                       # no instr_only, no m-LLaMA
    rows = C.closed_book_claims(closed_book(tmp_path, 90.0, 12.0, 0.0, 60.0).res, ["de"], ["de"])
    assert rows[0].verdict == "fails" and rows[1].verdict == "untestable" and "gate failed" in rows[1].reason
    assert "12.0% (chance 10.0" in rows[1].reason
    # the base's cloze gate (>= 90 %): below it the closed-book claims are untestable
    found = C.check_claims(closed_book(tmp_path, 85.0, 60.0, 0.0, 60.0).res)
    cloze = next(c for c in found if c.claim.startswith("the base completes"))
    assert cloze.kind == "gate" and cloze.verdict == "fails" and cloze.here.startswith("85.0 %")
    cb = next(c for c in found if c.claim.startswith("x-LLaMA beats Alpaca on closed-book"))
    assert cb.verdict == "untestable" and "cloze" in cb.reason


def test_study_gates_make_their_claims_untestable(tmp_path):
    s = Study(tmp_path).qa("a", "alpaca", "ar", bools(20, 200), chance=6.0).qa("x", "xllama", "ar", bools(60, 200), chance=6.0)
    s.value("a", "alpaca", "en", "xquad:en", {"contain": 70.0, "n": 200})
    s.value("base", "", "en", "copy:en", {"first": 50.0, "second": 85.0, "n": 200})
    s.res["runs"]["base"]["kind"] = "base"
    gates = {c.claim.split(":")[0]: c for c in C.check_claims(s.results) if c.kind == "gate"}
    assert gates["the base copies from its context"].verdict == "passes"
    assert gates["Alpaca reads"].verdict == "passes" and gates["x-LLaMA translates"].verdict == "not measured"
    s.value("a1", "alpaca", "en", "xquad:en", {"contain": 48.0, "n": 200})  # a second seed: mean 59
    s.res["runs"]["a1"]["seed"] = 1
    read = next(c for c in C.check_claims(s.results) if c.claim.startswith("Alpaca reads"))
    assert read.verdict == "fails" and read.here == "59.0 % (seeds 70.0 / 48.0)", read.here
    del s.res["runs"]["a1"]
    qa = next(c for c in C.check_claims(s.results) if c.claim.startswith("x-LLaMA beats English-only"))
    assert qa.verdict == "reproduces"
    s.res["runs"]["base"]["scores"]["copy:en"]["second"] = 79.0          # just under the 80 % gate
    found = C.check_claims(s.results)
    copy = next(c for c in found if c.claim.startswith("the base copies"))
    qa = next(c for c in found if c.claim.startswith("x-LLaMA beats English-only"))
    assert copy.verdict == "fails" and "79.0 %" in copy.here
    assert qa.verdict == "untestable" and "gate failed: the base copies" in qa.reason
    assert "10.0 → 30.0" in qa.here                                       # its numbers are still shown


def test_a_failed_read_gate_says_why_from_the_binding_probe(tmp_path):
    """probe.bind_test's numbers explain a failed read gate; without them no reason is made up."""
    from study import tables
    s = Study(tmp_path)
    s.value("a", "alpaca", "en", "xquad:en", {"contain": 50.0, "n": 200})
    read = next(c for c in C.check_claims(s.results) if c.claim.startswith("Alpaca reads"))
    assert read.verdict == "fails" and read.reason == ""
    s.value("base", "", "en", "bind:en", {"bind": 52.0, "chance": 46.5, "n": 200})
    s.res["runs"]["base"]["kind"] = "base"
    s.value("a", "alpaca", "en", "bind:en", {"bind": 48.0, "chance": 46.5, "n": 200})
    checked = C.check_claims(s.results)
    read = next(c for c in checked if c.claim.startswith("Alpaca reads"))
    assert "Alpaca 48.0 %, the base 52.0 %" in read.reason and "chance 46.5 %" in read.reason
    assert "barely binds" in read.reason                                 # 5.5 points over chance
    assert f"Why: {read.reason}." in "\n".join(tables.gates_part(s.results, checked))
    assert "| a | 48.0 | 46.5 | 200 |" in tables.bind_section(s.results)
    s.res["runs"]["base"]["scores"]["bind:en"]["bind"] = 80.0               # a base that binds
    read = next(c for c in C.check_claims(s.results) if c.claim.startswith("Alpaca reads"))
    assert "the base 80.0 %" in read.reason and "barely" not in read.reason


def test_no_passage_control_must_sit_at_chance(tmp_path):
    s = Study(tmp_path).qa("x", "xllama", "ar", bools(60, 200), chance=6.0)
    s.value("x", "xllama", "ar", "xquad-nopassage:ar", {"contain": 0.5, "n": 200, "chance": 0.1})
    row = next(c for c in C.check_claims(s.results) if "without the passage" in c.claim)
    assert row.kind == "sanity" and row.verdict == "passes" and "0.5%" in row.here
    s.res["runs"]["x"]["scores"]["xquad-nopassage:ar"]["contain"] = 30.0    # answered from memory
    row = next(c for c in C.check_claims(s.results) if "without the passage" in c.claim)
    assert row.verdict == "fails" and "leaks" in row.reason


