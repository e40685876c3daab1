"""reproduce.py: the study plan, resume, and the report and claim verdicts it writes, with fake train/evaluate.

Nothing here trains a model: train_model / evaluate_model / probe_models / prepare_world are
replaced by fakes whose scores are chosen by the test, so every verdict below is known in advance.
"""
import json
from pathlib import Path

import pytest
import torch

from study import claims as C
import device
from cli import UsageError
from study import report as Rep
from study import reproduce as R

AVAILABLE = {"ar": 2000, "el": 2000, "hi": 2000, "tr": 2000, "vi": 2000, "zh": 2000}


def tiny_cfg(tmp_path, **over):
    over = {"seeds": 3, "instr_langs": ("ar", "zh"), **over}  # the seed noise and ablations tested here
    return R.preset(True, out=str(tmp_path / "study"), **over)


class Fakes:
    """Stands in for train.py / evaluate.py / probe.py; records every call."""

    def __init__(self, qa=None, bleu=None, fail_at=None, copy=None, dtype="fp32", closedbook=None,
                 copy_gate=90.0, read=70.0):
        self.read = read  # Alpaca's English XQuAD: the reading gate (claims.GATES)
        self.trained, self.evaluated, self.fail_at, self.copy = [], [], fail_at, copy
        self.copy_gate = copy_gate
        self.dtype, self.decided, self.runtimes = dtype, [], []   # what decide_runtime was asked; (threads, dtype) per call
        self.qa = qa or (lambda group, lang, seed: {"alpaca": 30.0, "xllama": 45.0}.get(group, 40.0) + seed)
        # translation score rises with the data: a saturating curve, so the power law fits well
        self.bleu = bleu or (lambda group, lang, n: 100 - 80 * (n or 2000) ** -0.3 * (1.2 if lang == "zh" else 1.0))
        self.closedbook = closedbook or (lambda group, lang, seed: {"alpaca": 5.0 if lang != "en" else 60.0,
                                                                    "xllama": 40.0, "instr": 30.0}.get(group, 20.0) + seed)

    def install(self, monkeypatch):
        monkeypatch.setattr(R, "prepare_world", self.prepare_world)
        monkeypatch.setattr(R, "train_model", self.train_model)
        monkeypatch.setattr(R, "evaluate_model", self.evaluate_model)
        monkeypatch.setattr(R, "probe_models", self.probe_models)
        monkeypatch.setattr(R, "copy_model", self.copy_model)
        monkeypatch.setattr(R, "bind_model", self.bind_model)
        monkeypatch.setattr(R, "machine_info", lambda: {"cpu": "fake cpu", "cores": 2, "torch": "x"})
        monkeypatch.setattr(R, "decide_runtime", self.decide_runtime)
        return self

    def decide_runtime(self, cfg, saved):
        self.decided.append((cfg.threads, dict(saved)))
        threads, dtype = cfg.threads or 3, saved.get("dtype", self.dtype)  # 0 = "measured": 3 here
        return device.Runtime(torch.device("cpu"), dtype, threads, 1e9, f"device cpu (fake cpu), {threads} thread(s), {dtype}")

    def prepare_world(self, ctx):
        return ctx.out / "world", ctx.out / "base", dict(AVAILABLE), "python train.py --recipe base"

    def train_model(self, run, ctx, allocation):
        if self.fail_at is not None and len(self.trained) == self.fail_at:
            raise KeyboardInterrupt  # the study is killed in the middle of a run
        self.trained.append(run.name)
        self.runtimes.append((ctx.threads, ctx.dtype))
        d = ctx.out / "models" / run.name
        d.mkdir(parents=True, exist_ok=True)
        (d / "run.json").write_text(json.dumps({"group": run.group, "seed": run.seed, "n": run.n_translation}))
        return d, f"python train.py --recipe {run.recipe}"

    def evaluate_model(self, model_dir, task, lang, direction, ctx):
        self.evaluated.append((Path(model_dir).name, task, lang, direction))
        self.runtimes.append((ctx.threads, ctx.dtype))
        if task == "cloze":  # the base's gate
            return {"n": 44, "em": 80.0, "contain": 81.0, "chance": 9.2, "majority": 2.3}, "python evaluate.py --task cloze"
        r = json.loads((Path(model_dir) / "run.json").read_text())
        if task == "closedbook":
            acc = self.closedbook(r["group"], lang, r["seed"])
            extra = {"right_in_en": 50.0} if lang != "en" else {}
            return {"n": 44, "em": acc, "contain": acc + 2, "chance": 9.2, "majority": 2.3, **extra}, "python evaluate.py"
        if task == "flores":
            b = self.bleu(r["group"], lang, r["n"])
            return {"bleu": b, "chrf++": b + 10}, "python evaluate.py --task flores"
        if task.endswith("-nopassage"):  # the control: the passage holds the answers
            return {"contain": 0.0, "em": 0.0, "f1": 0.0, "n": 120, "chance": 0.1}, "python evaluate.py --no-passage"
        acc = self.qa(r["group"], lang, r["seed"])
        if (r["group"], task, lang) == ("alpaca", "xquad", "en"):
            acc = self.read + r["seed"]
        return {"contain": acc, "em": acc / 2, "f1": acc / 1.5, "lang_rate": 95.0}, "python evaluate.py"

    def copy_model(self, model_dir, ctx):
        return {"first": 55.0, "second": self.copy_gate, "n": 200}, "python -c probe.copy_test"

    def bind_model(self, model_dir, ctx, template):
        self.evaluated.append((Path(model_dir).name, "bind", template, ""))
        return {"bind": 60.0, "chance": 46.5, "n": ctx.cfg.bind_questions}, "python -c probe.bind_test"

    def probe_models(self, models, langs, ctx):
        self.runtimes.append((ctx.threads, ctx.dtype))

        def curve(peak, height):
            return [height - 0.01 * (k - peak) ** 2 for k in range(5)]
        rep = {"first": 40.0, "second": 45.0 if self.copy is None else self.copy}
        out = {n: {"langs": {l: {"gap": curve(2, 0.3 if n != "base" else 0.1), "retrieval": [50.0] * 5, "repeat": rep}
                             for l in langs}, "repeat": rep} for n in models}
        return out, "python probe.py"


# ----------------------------------------------------------------------------- the plan

def test_plan_has_every_part_of_the_study():
    cfg = R.preset("full")
    plan = R.build_plan(cfg, AVAILABLE)
    names = [r.name for r in plan]
    groups = {r.group for r in plan}
    assert {"alpaca", "xllama", "sweep", "fit", "mllama-uniform", "mllama-fitted", "x2en", "probe"} <= groups
    assert names[0] == "base"
    assert sum(r.group == "alpaca" for r in plan) == cfg.seeds
    assert {r.langs[0] for r in plan if r.group == "xllama"} == set(R.XLANGS)
    assert sum(r.group == "xllama" for r in plan) == 6 * cfg.seeds
    assert len({r.langs[0] for r in plan if r.group == "sweep"}) >= 2
    m = [r for r in plan if r.recipe == "muit"]
    assert len(m) == 2 and m[0].budget == m[1].budget and {r.allocation for r in m} == {"uniform", "fitted"}
    probe = next(r for r in plan if r.kind == "probe")
    assert {"base", "alpaca-s0", "mllama-uniform"} <= set(probe.needs) and any(n.startswith("xllama") for n in probe.needs)
    for i, r in enumerate(plan):  # every run comes after what it reads
        assert set(r.needs) <= set(names[:i]), r.name
    # every x-LLaMA language is evaluated on XQuAD and both Flores directions; MLQA only where it exists
    keys = {(r.langs[0], t, d) for r in plan if r.group == "xllama" for t, _, d in r.evals}
    assert ("el", "mlqa", "en-X") not in keys and ("ar", "mlqa", "en-X") in keys and ("tr", "flores", "X-en") in keys


def test_plan_has_the_closed_book_test():
    cfg = R.preset(False)
    plan = {r.name: r for r in R.build_plan(cfg, AVAILABLE)}
    assert cfg.seeds >= 2                                          # the closed-book claims need a spread
    # the gate: does the base store the facts? and the binding probe, of the base and every Alpaca
    assert plan["base"].evals == (("cloze", "en", "en-X"), ("bind", "en", "en-X"))
    assert all(("bind", "en", "en-X") in r.evals for r in plan.values() if r.group == "alpaca")
    cb = lambda r: [l for t, l, _ in r.evals if t == "closedbook"]
    assert cb(plan["alpaca-s0"]) == ["en", *cfg.langs]
    assert cb(plan["xllama-ar-s1"]) == ["ar", "en"]
    instr = [r for r in plan.values() if r.group == "instr"]
    assert {(r.langs[0], r.seed) for r in instr} == {(l, s) for l in cfg.instr_langs for s in range(cfg.seeds)}
    assert all(r.recipe == "instr_only" and cb(r) == [r.langs[0], "en"] for r in instr)
    assert cb(plan["mllama-uniform"]) == list(cfg.muit_langs) and cb(plan[f"x2en-{cfg.ablation_lang}"]) == [cfg.ablation_lang]
    with pytest.raises(ValueError, match="instr_only languages"):
        R.build_plan(R.preset(False, langs=("ar",), sweep_langs=("ar", "hi"), muit_langs=("ar",), instr_langs=("zh",)))


def test_closedbook_scores_gathered_for_the_claims(tmp_path, monkeypatch):
    f = Fakes().install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path))
    assert ("base", "cloze", "en", "en-X") in f.evaluated
    assert ("base", "bind", "doc", "") in f.evaluated and ("alpaca-s0", "bind", "alpaca", "") in f.evaluated
    res = Rep.load_results(tmp_path / "study")
    assert res["runs"]["base"]["scores"]["cloze:en"]["em"] == 80.0
    assert res["runs"]["instr-zh-s1"]["scores"]["closedbook:zh"]["em"] == 31.0
    cb = res["closedbook"]
    assert cb["gate"] == {"run": "base", "lang": "en", "n": 44, "em": 80.0, "contain": 81.0, "chance": 9.2, "majority": 2.3}
    assert set(cb["groups"]) == {"alpaca", "xllama", "instr", "mllama-uniform", "mllama-fitted", "x2en"}
    x = cb["groups"]["xllama"]["zh"]
    assert x["runs"] == ["xllama-zh-s0", "xllama-zh-s1", "xllama-zh-s2"] and x["seeds"] == [0, 1, 2]
    assert x["em"] == [40.0, 41.0, 42.0] and x["contain"] == [42.0, 43.0, 44.0] and x["right_in_en"] == [50.0] * 3
    assert (x["chance"], x["majority"], x["n"]) == (9.2, 2.3, 44)
    assert cb["groups"]["alpaca"]["en"]["em"] == [60.0, 61.0, 62.0] and "right_in_en" not in cb["groups"]["alpaca"]["en"]
    assert cb["groups"]["alpaca"]["ar"]["em"] == [5.0, 6.0, 7.0]
    assert cb["groups"]["instr"]["ar"]["runs"] == ["instr-ar-s0", "instr-ar-s1", "instr-ar-s2"]
    assert R.closedbook_summary({"alpaca-s0": {"status": "failed", "group": "alpaca"}}) == {"gate": None, "groups": {}}


def test_quick_plan_is_smaller_but_complete():
    full, quick = R.build_plan(R.preset(False), AVAILABLE), R.build_plan(R.preset(True), AVAILABLE)
    assert len(quick) < len(full)
    assert {r.group for r in quick} == {r.group for r in full}


def test_sweep_skips_sizes_beyond_the_data():
    plan = R.build_plan(R.preset(False, sweep_sizes=(100, 500, 5000)), {**AVAILABLE, "zh": 400})
    sizes = {(r.langs[0], r.n_translation) for r in plan if r.group == "sweep"}
    assert ("zh", 100) in sizes and ("zh", 500) not in sizes and ("ar", 5000) not in sizes and ("ar", 500) in sizes


def test_plan_rejects_bad_configs():
    with pytest.raises(ValueError, match="at least 2"):
        R.build_plan(R.preset(False, sweep_langs=("ar",), muit_langs=("ar",)))
    with pytest.raises(ValueError, match="no sweep"):
        R.build_plan(R.preset(False, muit_langs=("ar", "tr")))


# ----------------------------------------------------------------------------- running, resuming

def test_study_runs_resumes_and_refuses_to_overwrite(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path)
    plan_trains = [r.name for r in R.build_plan(cfg, AVAILABLE) if r.kind == "train"]
    Fakes(fail_at=4).install(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        R.run_study(cfg)
    saved = json.loads((tmp_path / "study" / "results.json").read_text())
    assert [n for n, r in saved["runs"].items() if r["kind"] == "train"] == plan_trains[:4]
    assert not (tmp_path / "study" / "RESULTS.md").exists()

    f2 = Fakes().install(monkeypatch)
    report = R.run_study(cfg)
    assert f2.trained == plan_trains[4:]                  # finished runs were not trained again
    assert not any(e[0] in plan_trains[:4] for e in f2.evaluated)
    text = report.read_text()
    assert "## Claims of the paper, checked" in text

    with pytest.raises(ValueError, match="--overwrite"):
        R.run_study(cfg)
    stale = tmp_path / "study" / "models" / "alpaca-s0" / "stale-checkpoint"
    stale.write_text("from the first study")
    f3 = Fakes().install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path, overwrite=True))
    assert f3.trained == plan_trains and not stale.exists()   # old checkpoints are not reused


def test_changed_config_is_not_mixed_into_old_results(tmp_path, monkeypatch):
    Fakes(fail_at=2).install(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        R.run_study(tiny_cfg(tmp_path))
    Fakes().install(monkeypatch)
    with pytest.raises(ValueError, match="different configuration"):
        R.run_study(tiny_cfg(tmp_path, steps=7))


def test_fit_and_allocation_use_the_sweep(tmp_path, monkeypatch):
    Fakes().install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path))
    res = Rep.load_results(tmp_path / "study")
    fit = res["runs"]["fit"]
    assert {p["lang"] for p in fit["points"]} == {"ar", "zh"}
    assert max(p["size"] for p in fit["points"]) == AVAILABLE["ar"]   # the full x-LLaMA run is a point
    assert fit["fits"]["ar"]["power"]["r2"] > 0.999                   # fakes follow a power law exactly
    assert sum(fit["allocation"].values()) == sum(fit["uniform"].values()) == res["config"]["budget"]
    assert fit["allocation"]["zh"] > fit["allocation"]["ar"]          # zh's curve is further from saturation
    assert res["runs"]["mllama-fitted"]["sizes"] == fit["allocation"]
    assert res["runs"]["mllama-uniform"]["sizes"] == fit["uniform"] == {"ar": 300, "zh": 300}
    # the files the recorded scaling.py commands name are there and agree with results.json
    assert json.loads((tmp_path / "study" / "allocation.json").read_text()) == fit["allocation"]
    assert set(json.loads((tmp_path / "study" / "fits.json").read_text())) == {"ar", "zh"}


# ----------------------------------------------------------------------------- claims and report

def qa_claim(results):
    return next(c for c in C.check_claims(results) if c.claim.startswith("x-LLaMA beats English-only"))


def verdicts(results):
    return {c.claim.split(" ")[0] + " " + c.claim.split(" ")[1]: c for c in C.check_claims(results)}


def test_report_says_reproduces_when_xllama_beats_alpaca(tmp_path, monkeypatch):
    Fakes(qa=lambda g, l, s: {"alpaca": 40.0, "xllama": 50.0}.get(g, 45.0)).install(monkeypatch)
    text = R.run_study(tiny_cfg(tmp_path)).read_text()
    c = qa_claim(Rep.load_results(tmp_path / "study"))
    assert c.verdict == "reproduces" and "+25.0%" in c.here        # (50 - 40) / 40 in every language
    assert "+25.0%" in text and "**reproduces**" in text
    for head in ("QA — XQuAD", "QA — MLQA", "Relative gain over Alpaca", "en→X, BLEU / chrF++", "X→en, BLEU / chrF++",
                 "Response language ID", "Scaling law", "Fitted laws", "Allocation of the m-LLaMA budget",
                 "Layer-wise alignment", "strongest", "fake cpu", "wall time"):
        assert head in text, head
    assert "50.0±0.0 (25.0/33.3)" in text                          # contain mean±std over 2 seeds (EM/F1)


def test_report_says_not_reproduced_with_a_reason(tmp_path, monkeypatch):
    Fakes(qa=lambda g, l, s: {"alpaca": 50.0, "xllama": 40.0}.get(g, 45.0), read=60.0).install(monkeypatch)
    text = R.run_study(tiny_cfg(tmp_path)).read_text()
    c = qa_claim(Rep.load_results(tmp_path / "study"))
    assert c.verdict == "does not reproduce" and "-20.0%" in c.here and c.reason
    assert "**does not reproduce**" in text


def test_floor_and_seed_noise_reasons(tmp_path, monkeypatch):
    Fakes(qa=lambda g, l, s: {"alpaca": 1.0, "xllama": 0.5}.get(g, 1.0)).install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path / "a"))
    c = qa_claim(Rep.load_results(tmp_path / "a" / "study"))
    assert c.verdict == "inconclusive" and "floor" in c.reason
    assert "40.0% on the first copy to only 45.0%" in c.reason    # the probe's copying test says why
    Fakes(qa=lambda g, l, s: {"alpaca": 1.0, "xllama": 0.5}.get(g, 1.0), copy=95.0).install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path / "c"))
    c = qa_claim(Rep.load_results(tmp_path / "c" / "study"))
    assert "floor" in c.reason and "copy" not in c.reason         # a model that copies: no such excuse
    assert "40.0 → 95.0" in Rep.write_report(Rep.load_results(tmp_path / "c" / "study"))
    # x-LLaMA better by 1 point, but seeds differ by 10 points: not resolved
    Fakes(qa=lambda g, l, s: {"alpaca": 40.0, "xllama": 41.0}.get(g, 40.0) + 10 * s).install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path / "b", seeds=2))
    c = qa_claim(Rep.load_results(tmp_path / "b" / "study"))
    assert c.verdict == "inconclusive"                             # a win inside the noise
    text = Rep.write_report(Rep.load_results(tmp_path / "b" / "study"))
    assert "±7.1" in text                                          # stdev of (40, 50) shown as spread


def test_other_claims_follow_the_numbers(tmp_path, monkeypatch):
    # allocation worse than uniform, flat scaling, m-LLaMA far below x-LLaMA
    Fakes(qa=lambda g, l, s: {"xllama": 60.0, "mllama-uniform": 20.0}.get(g, 30.0),
          bleu=lambda g, l, n: 20.0 if g != "mllama-fitted" else 10.0).install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path))
    found = C.check_claims(Rep.load_results(tmp_path / "study"))
    claims = {k: next(c for c in found if c.claim.startswith(k))  # the closed-book claims share some openings
              for k in ("m-LLaMA is c", "translation quality", "hidden state", "en→X transla")}
    assert claims["m-LLaMA is c"].verdict == "does not reproduce" and "languages" in claims["m-LLaMA is c"].reason
    # flat BLEU, but the fakes write no per-item predictions: the rise cannot be told from noise
    # (the flat -> "does not reproduce" rule is tested on per-item scores in test_claims.py)
    assert claims["translation quality"].verdict == "inconclusive" and "per-item" in claims["translation quality"].reason
    assert claims["hidden state"].verdict == "reproduces"          # peak at layer 2 of 4, above base
    c = claims["en→X transla"]      # QA 60 vs 30; en→X BLEU is a sanity row (X→en data never shows X outputs)
    assert c.verdict == "reproduces" and "XQuAD" in c.claim
    assert [s.kind for s in found if "pairs, which never outputs" in s.claim] == ["sanity"]


def test_cli_misuse_exits_2_one_line(tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    for argv, needle in ((["--seeds", "0", "--out", str(tmp_path)], "--seeds"),
                         (["--threads", "-1", "--out", str(tmp_path)], "--threads -1: expected a value in [0, inf)"),
                         (["--threads", "two"], "--threads"),
                         (["--report-only", "--out", str(tmp_path / "none")], "no results in"),
                         (["--out", str(a_file)], f"--out {a_file} is a file"),
                         (["--report-only", "--out", str(a_file)], "is a file")):
        try:
            code = R.main(argv)
        except SystemExit as e:  # argparse's own errors (a flag's type) exit from parse_args
            code = e.code
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0], (argv, err)
    assert a_file.read_text() == "mine"
    # a finished study is not overwritten: one line naming --overwrite, exit 2
    Fakes().install(monkeypatch)
    out = tmp_path / "study"
    assert R.main(["--quick", "--out", str(out)]) == 0
    before = (out / "RESULTS.md").read_text()
    assert R.main(["--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0], err
    assert (out / "RESULTS.md").read_text() == before


def test_threads_decided_once_recorded_and_passed_to_every_run(tmp_path, monkeypatch):
    f = Fakes(fail_at=3, dtype="bf16").install(monkeypatch)
    cfg = tiny_cfg(tmp_path)
    assert cfg.threads == 0                                           # default: measured
    with pytest.raises(KeyboardInterrupt):
        R.run_study(cfg)
    assert f.decided == [(0, {})]
    saved = json.loads((tmp_path / "study" / "results.json").read_text())
    assert saved["runtime"] == {"threads": 3, "dtype": "bf16", "why": "device cpu (fake cpu), 3 thread(s), bf16"}
    f2 = Fakes(dtype="fp32").install(monkeypatch)                     # this session would measure fp32 ...
    text = R.run_study(cfg).read_text()
    assert f2.decided == [(0, saved["runtime"])]                      # ... but the resumed study keeps bf16
    assert set(f2.runtimes) == {(3, "bf16")} and len(f2.runtimes) > 20  # every train, evaluate and probe call
    assert "decided once for every run (device.py): device cpu (fake cpu), 3 thread(s), bf16." in text
    assert "on fake cpu" in text


def test_decide_runtime_measures_at_the_base_shapes():
    rt = R.decide_runtime(R.preset(True, threads=1), {"dtype": "fp32"})
    assert (rt.threads, rt.dtype) == (1, "fp32") and "device cpu (" in rt.why and device.cpu_name() in rt.why
    assert R.machine_info()["cpu"] == device.cpu_name()
    rt = R.decide_runtime(R.preset(True, threads=1, dtype="fp32"), {})   # --dtype fp32: no measurement decides
    assert rt.dtype == "fp32" and "fp32 (--dtype)" in rt.why
    assert R.study_config(R.ReproduceConfig(dtype="bf16")).dtype == "bf16"
    assert R.study_config(R.ReproduceConfig(dtype="float32")).dtype == "fp32"   # train.py's spellings too
    with pytest.raises(UsageError, match="--dtype 'fp64'"):
        R.study_config(R.ReproduceConfig(dtype="fp64"))


def test_runtime_reaches_evaluate_and_probe(tmp_path, monkeypatch):
    import evaluate
    import probe
    seen = {}
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **kw: seen.setdefault("evaluate", kw) and {"bleu": 1.0})
    monkeypatch.setattr(probe, "probe", lambda models, langs, data, **kw: seen.setdefault("probe", kw) and
                        {m: {"mean": {"gap": [0.1, 0.2]}} for m in models})
    monkeypatch.setattr(probe, "plot", lambda results, out: str(out.with_suffix(".txt")))
    ctx = R.Context(R.preset(True), tmp_path, data_dir=tmp_path / "world", threads=3, dtype="bf16")
    _, cmd = R.evaluate_model(tmp_path / "m", "flores", "ar", "en-X", ctx)
    assert (seen["evaluate"]["threads"], seen["evaluate"]["dtype"]) == (3, "bf16")
    assert "--threads 3" in cmd and "--dtype bf16" in cmd
    _, cmd = R.probe_models({"base": tmp_path / "base"}, ["ar"], ctx)
    assert (seen["probe"]["threads"], seen["probe"]["dtype"]) == (3, "bf16")
    assert "--threads 3" in cmd and "--dtype bf16" in cmd


def test_evaluations_stay_in_the_study_folder(tmp_path, monkeypatch):
    """The shipped base lives in the repository: its cloze evaluation is written under OUT/base, and the
    no-passage control reaches evaluate.py as passage=False in a folder of its own."""
    import evaluate
    seen = []
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **kw: seen.append(kw) or {"contain": 1.0})
    ctx = R.Context(R.preset(True), tmp_path / "study", data_dir=tmp_path / "world")
    R.evaluate_model(tmp_path / "assets" / "base", "cloze", "en", "en-X", ctx)
    assert seen[-1]["out_dir"] == tmp_path / "study" / "base" / "eval" / "cloze-en"
    R.evaluate_model(tmp_path / "study" / "models" / "x", "xquad-nopassage", "ar", "en-X", ctx)
    assert seen[-1]["passage"] is False
    assert seen[-1]["out_dir"] == tmp_path / "study" / "models" / "x" / "eval" / "xquad-ar-nopassage"


def test_fit_allocates_over_the_mllama_languages_only(tmp_path, monkeypatch):
    """m-LLaMA may cover fewer languages than the sweep: the allocation and the uniform split are over its
    languages, since train.py refuses an allocation whose languages differ from --langs."""
    Fakes().install(monkeypatch)
    cfg = tiny_cfg(tmp_path, sweep_langs=("ar", "zh"), muit_langs=("zh",))
    R.run_study(cfg)
    res = Rep.load_results(tmp_path / "study")
    fit = res["runs"]["fit"]
    assert set(fit["fits"]) == {"ar", "zh"}
    assert fit["allocation"] == fit["uniform"] == {"zh": cfg.budget}
    assert res["runs"]["mllama-fitted"]["sizes"] == {"zh": cfg.budget}


def test_a_failing_run_is_reported_and_retried(tmp_path, monkeypatch):
    f = Fakes().install(monkeypatch)
    real = f.train_model

    def flaky(run, ctx, allocation):
        if run.name == "x2en-zh":
            raise RuntimeError("loss became nan at step 3")
        return real(run, ctx, allocation)
    monkeypatch.setattr(R, "train_model", flaky)
    text = R.run_study(tiny_cfg(tmp_path)).read_text()
    assert "`x2en-zh` failed: RuntimeError: loss became nan at step 3" in text
    assert "**not measured**" in text                               # the ablation claim has no numbers
    f2 = Fakes().install(monkeypatch)
    R.run_study(tiny_cfg(tmp_path))                                 # not finished, so no --overwrite needed
    assert f2.trained == ["x2en-zh"]


def test_recorded_train_commands_are_exact(tmp_path, monkeypatch):
    """The train.py command written into the report parses (with train.py's own parser) to the very
    TrainConfig that reproduce.py passed to train.train, for every kind of run and for the base."""
    import shlex
    import dataclasses
    import train
    import world
    seen = []
    monkeypatch.setattr(train, "run", lambda cfg: seen.append(cfg) or Path(cfg.out))
    ctx = R.Context(R.preset(False), tmp_path, data_dir=tmp_path / "world", base_dir=tmp_path / "base",
                    threads=3, dtype="bf16")
    plan = [r for r in R.build_plan(ctx.cfg, AVAILABLE) if r.kind == "train"]
    for run in plan:
        _, cmd = R.train_model(run, ctx, {"ar": 1000, "hi": 1000, "zh": 1000} if run.allocation else None)
        argv = shlex.split(cmd)
        assert argv[:2] == ["python", "train.py"]
        parsed = train.config_from_args(argv[2:])
        assert dataclasses.replace(parsed, reuse=True) == seen[-1], run.name
        assert (seen[-1].threads, seen[-1].dtype) == (3, "bf16")   # the study's one decision
    assert {c.recipe for c in seen} == {"alpaca", "coit", "muit", "coit_x2en", "instr_only"}
    import mixture  # every fine-tuning run mixes in ask documents at train.py's default share
    assert {c.replay for c in seen} == {mixture.REPLAY_SHARE} == {R.StudyConfig().replay}
    assert "--replay 0.0" in R.train_model(plan[0], dataclasses.replace(
        ctx, cfg=dataclasses.replace(ctx.cfg, replay=0.0)), None)[1]  # --replay 0: the paper's mixtures alone
    # the base: the recorded pretraining commands equal the phases ensure_base runs, in order
    monkeypatch.setattr(world, "ensure", lambda d, seed=0, **kw: Path(d))
    monkeypatch.setattr(train, "ensure_base", lambda d, out, **kw: seen.append(
        train.base_phases(d, out, **kw)) or Path(out))
    monkeypatch.setattr(R, "_count_pairs", lambda data_dir, langs: dict(AVAILABLE))
    for read in (False, True):  # a world with ask documents gets the read phase
        if read:
            (ctx.out / "world" / "read").mkdir(parents=True)
            (ctx.out / "world" / "read" / "en.txt").write_text("Ki is here. Q: Who? A: Ki.\n")
        _, _, _, cmd = R.prepare_world(ctx)
        base_cmds = [shlex.split(c)[2:] for c in cmd.split(" && ")[1:]]
        assert [train.config_from_args(c) for c in base_cmds] == seen[-1] and len(seen[-1]) == 1 + read
    assert seen[-1][1].base == seen[-1][0].out and seen[-1][1].replay == train.BASE_READ["replay"]


def test_response_language_claim_uses_the_decidable_languages(tmp_path, monkeypatch):
    class Rates(Fakes):  # Alpaca answers in English; its Chinese answers are undecidable (no letters)
        def evaluate_model(self, model_dir, task, lang, direction, ctx):
            scores, cmd = super().evaluate_model(model_dir, task, lang, direction, ctx)
            group = json.loads((Path(model_dir) / "run.json").read_text())["group"]
            if task == "xquad" and group == "alpaca":
                scores["lang_rate"] = None if lang == "zh" else 10.0
            return scores, cmd
    Rates().install(monkeypatch)
    cfg = tiny_cfg(tmp_path)
    R.run_study(cfg)
    c = [c for c in C.check_claims(Rep.load_results(tmp_path / "study")) if "question's language" in c.claim][0]
    others = [l for l in cfg.muit_langs if l != "zh"]
    assert c.verdict == "reproduces" and "10.0% (Alpaca) vs 95.0% (m-LLaMA)" in c.here
    assert f"mean over {', '.join(others)} ({len(others)} of {len(cfg.muit_langs)}" in c.here


def test_ctrl_c_is_one_line_exit_130(tmp_path):
    # a real SIGINT while the study works (after its first line): no traceback, the resume hint, exit 130
    import signal
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "study.reproduce",
                             "--quick", "--threads", "1", "--out", str(tmp_path / "study")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a suite started in the background inherits SIGINT ignored, and Python then
                            # installs no KeyboardInterrupt handler: give the child the default disposition
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert first.startswith("study:"), first
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and "interrupted" in lines[-1] and "continue with: python -m study.reproduce --quick" in lines[-1], err


def test_ctrl_c_inside_a_training_run_stops_the_study_at_once(tmp_path, monkeypatch):
    # train.loop turns Ctrl-C into train.Interrupted: the study must stop, not record a failed run
    # and go on (it did while Interrupted was a RuntimeError)
    import train
    f = Fakes().install(monkeypatch)

    def killed(run, ctx, allocation):
        if run.name == "alpaca-s1":
            raise train.Interrupted("interrupted at step 3; the last resumable state is step 2")
        return f.train_model(run, ctx, allocation)
    monkeypatch.setattr(R, "train_model", killed)
    with pytest.raises(KeyboardInterrupt):
        R.run_study(tiny_cfg(tmp_path))
    runs = json.loads((tmp_path / "study" / "results.json").read_text())["runs"]
    assert "alpaca-s1" not in runs and f.trained == ["alpaca-s0"]


def test_presets_are_sized_for_their_machines():
    """docs/reproducing.md: on 2 AVX2 cores a micro fine-tuning step takes about 0.12-0.15 s and
    an evaluation of 200 items 3-10 s, so the default study (17 runs of 1000 steps, 140
    evaluations) fits in 60 min and --quick (11 runs of 250 steps) in 10; --full is for a GPU."""
    def size(name):
        cfg = R.preset(name)
        plan = R.build_plan(cfg, AVAILABLE)
        return cfg, sum(cfg.steps for r in plan if r.kind == "train"), sum(len(r.evals) for r in plan)
    cfg, steps, evals = size("default")
    assert steps <= 17_000 and evals <= 150 and cfg.seeds >= 2
    assert {"vi", "ar", "zh"} <= set(cfg.langs)        # a Latin-script, a non-Latin and a CJK language
    assert cfg.world == {} and cfg.arch == "micro"     # the shipped base's world: no pretraining
    cfg, steps, evals = size("quick")
    assert steps <= 3_000 and evals <= 80 and cfg.world == {}
    cfg, steps, evals = size("full")
    assert set(cfg.langs) == set(R.XLANGS) and cfg.seeds == 3 and cfg.steps >= 2 * R.preset().steps
    for name in ("quick", "default", "full"):           # every QA test has its no-passage control
        evs = [e for r in R.build_plan(R.preset(name), AVAILABLE) for e in r.evals]
        qa = {(t, l) for t, l, _ in evs if t in ("xquad", "mlqa")}
        assert qa == {(t.removesuffix(C.NO_PASSAGE), l) for t, l, _ in evs if t.endswith(C.NO_PASSAGE)}


def test_quick_and_full_are_two_presets(capsys):
    assert R.main(["--quick", "--full"]) == 2
    assert "--quick and --full" in capsys.readouterr().err
