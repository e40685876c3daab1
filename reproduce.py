"""The paper's study in miniature, end to end, and an honest RESULTS.md written from it.

    python reproduce.py                      # default study (<= 60 min on 2 CPU cores)
    python reproduce.py --quick              # every table, smaller world and runs (<= 10 min)
    python reproduce.py --out runs/study --seeds 3
    python reproduce.py --report-only        # rewrite RESULTS.md from OUT/results.json

What runs (the study plan, `build_plan`, is plain data: a list of `Run`s):
  base        the English-dominant miniature LLaMA (train.ensure_base), probed only
  alpaca      English-only Alpaca baseline, one per seed
  xllama-X    x-LLaMA (CoIT) for X in ar el hi tr vi zh, one per seed
  sweep-X-N   x-LLaMA trained on the first N en->X pairs, for >= 2 languages (Flores en->X only)
  fit         scaling laws (scaling.fit, both forms) on the sweep + allocation (scaling.allocate)
  mllama-uniform / mllama-fitted   m-LLaMA (MuIT), one translation budget split uniformly and
              by the fitted laws
  x2en-X      the en->X vs X->en ablation (compared with xllama-X)
  probe       layer-wise alignment (probe.py) for base, Alpaca, x-LLaMA and m-LLaMA
Results go to OUT/results.json after every run (atomic), so an interrupted study resumes and
skips what is finished; OUT/RESULTS.md is written from results.json only (`write_report`),
and a finished report is never overwritten without --overwrite. The paper's claims are
checked by `check_claims`: the verdict and the likely reason are chosen from the numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

XLANGS = ("ar", "el", "hi", "tr", "vi", "zh")      # the paper's six languages
MLQA_LANGS = ("ar", "hi", "vi", "zh")               # MLQA covers these of the six


@dataclass
class StudyConfig:
    out: str = "runs/study"              # results.json, RESULTS.md and every checkpoint go here
    quick: bool = False                  # the small preset (every table, fewer runs)
    seeds: int = 2                       # seeds for the headline runs (Alpaca, x-LLaMA)
    langs: tuple = XLANGS                # x-LLaMA languages
    muit_langs: tuple = ("ar", "hi", "zh")  # m-LLaMA languages (each needs a fitted law)
    sweep_langs: tuple = ("ar", "hi", "zh")  # scaling-law sweep languages (>= 2)
    sweep_sizes: tuple = (300, 1500)     # first-N pairs per sweep run (+ the full x-LLaMA run)
    budget: int = 3000                   # m-LLaMA's total translation pairs (uniform vs allocated)
    ablation_lang: str = "zh"            # en->X vs X->en ablation language
    probe_langs: tuple = ("ar", "hi", "zh")
    law_form: str = "power"              # law used for allocation ("power" or "log"); both are fitted
    world: dict = field(default_factory=dict)  # world.py size flags ({} = its defaults)
    arch: str = "mini"                   # model.PRESETS size of the miniature base
    base_steps: int | None = 1000        # pretraining steps (None: train.py's one epoch)
    steps: int = 250                     # optimizer steps per fine-tuning run (equal compute for all)
    eval_limit: int = 200                # questions / sentences per evaluation
    eval_batch: int = 16                 # prompts per generate() call
    max_new_tokens: int = 48             # generation cap (world's Flores lines are <= 34 tokens)
    probe_limit: int = 100               # parallel sentences per probed language
    world_seed: int = 0                  # seed of the miniature world
    threads: int = 1                     # torch CPU threads; 1 measured 10-17x faster than 2 on a loaded 2-core box
    overwrite: bool = False              # replace a finished study in OUT


QUICK = dict(quick=True, seeds=2, langs=("ar", "zh"), muit_langs=("ar", "zh"), sweep_langs=("ar", "zh"),
             sweep_sizes=(100, 300), budget=600, probe_langs=("ar", "zh"), arch="nano", base_steps=1000, steps=300,
             world=dict(pretrain_chars=600_000, alpaca=800, parallel=1000, xquad_passages=30, mlqa_passages=30,
                        flores=120), eval_limit=120, probe_limit=100)


def preset(quick: bool, **over) -> StudyConfig:
    """The default study or the --quick one; keyword arguments override single fields."""
    cfg = replace(StudyConfig(), **QUICK) if quick else StudyConfig()
    return replace(cfg, **{k: v for k, v in over.items() if v is not None})


@dataclass(frozen=True)
class Run:
    """One unit of the study: train (and evaluate) one model, or fit laws, or probe models."""
    name: str                            # unique key in results.json and checkpoint folder name
    kind: str                            # "base" | "train" | "fit" | "probe"
    group: str = ""                      # table row: alpaca, xllama, sweep, mllama-uniform, ...
    recipe: str = ""                     # train.py --recipe
    langs: tuple = ()
    seed: int = 0
    n_translation: int | None = None     # first-N translation pairs (sweep)
    budget: int | None = None            # MuIT total translation pairs
    allocation: str | None = None        # "uniform" or "fitted" (resolved from the fit run)
    evals: tuple = ()                    # ((task, lang, direction), ...)
    needs: tuple = ()                    # names of runs whose outputs this run reads


def _evals(langs, qa=True, flores=("en-X", "X-en")):
    ev = []
    for lang in langs:
        if qa:
            ev.append(("xquad", lang, "en-X"))
            if lang in MLQA_LANGS:
                ev.append(("mlqa", lang, "en-X"))
        ev += [("flores", lang, d) for d in flores]
    return tuple(ev)


def build_plan(cfg: StudyConfig, available: dict[str, int] | None = None) -> list[Run]:
    """The whole study as data, in execution order (every run after the runs it needs)."""
    if len(cfg.sweep_langs) < 2:
        raise ValueError("--sweep-langs: the scaling study needs at least 2 languages")
    if missing := set(cfg.muit_langs) - set(cfg.sweep_langs):
        raise ValueError(f"m-LLaMA languages {sorted(missing)} have no sweep, so no fitted law to allocate by")
    avail = available or {}
    plan = [Run("base", "base")]
    for s in range(cfg.seeds):
        plan.append(Run(f"alpaca-s{s}", "train", "alpaca", "alpaca", ("en",), s,
                        evals=(("xquad", "en", "en-X"),) + _evals(cfg.langs)))
    for s in range(cfg.seeds):
        for lang in cfg.langs:
            plan.append(Run(f"xllama-{lang}-s{s}", "train", "xllama", "coit", (lang,), s, evals=_evals([lang])))
    for lang in cfg.sweep_langs:
        for n in cfg.sweep_sizes:
            if lang in avail and n >= avail[lang]:
                continue                   # the full-data point comes from xllama-<lang>-s0
            plan.append(Run(f"sweep-{lang}-{n}", "train", "sweep", "coit", (lang,), 0, n_translation=n,
                            evals=_evals([lang], qa=False, flores=("en-X",))))
    sweep = tuple(r.name for r in plan if r.group == "sweep")
    full = tuple(f"xllama-{l}-s0" for l in cfg.sweep_langs if l in cfg.langs)
    plan.append(Run("fit", "fit", "fit", langs=tuple(cfg.sweep_langs), budget=cfg.budget, needs=sweep + full))
    for alloc in ("uniform", "fitted"):
        plan.append(Run(f"mllama-{alloc}", "train", f"mllama-{alloc}", "muit", tuple(cfg.muit_langs), 0,
                        budget=cfg.budget, allocation=alloc, evals=_evals(cfg.muit_langs),
                        needs=("fit",)))
    plan.append(Run(f"x2en-{cfg.ablation_lang}", "train", "x2en", "coit_x2en", (cfg.ablation_lang,), 0,
                    evals=_evals([cfg.ablation_lang])))
    probed = ("base", "alpaca-s0") + tuple(f"xllama-{l}-s0" for l in cfg.probe_langs if l in cfg.langs) + ("mllama-uniform",)
    plan.append(Run("probe", "probe", "probe", langs=tuple(cfg.probe_langs), needs=probed))
    names = [r.name for r in plan]
    assert len(names) == len(set(names)), "run names must be unique"
    return plan


# ----------------------------------------------------------------------------- results store

def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load_results(out: Path) -> dict:
    path = out / "results.json"
    if not path.exists():
        return {"runs": {}, "stages": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SystemExit(f"{path} line {e.lineno}: not valid JSON ({e.msg}); remove it or use --overwrite")


def save_results(out: Path, results: dict) -> None:
    atomic_write(out / "results.json", json.dumps(results, indent=1, ensure_ascii=False, default=str))


def machine_info() -> dict:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True,  # noqa: E731
                                        cwd=Path(__file__).parent, timeout=10).stdout.strip()
        commit = git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if git("status", "--porcelain", "-uno") else "")
    except (OSError, subprocess.SubprocessError):
        commit = ""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "git_commit": commit}


# ----------------------------------------------------------------------------- backends
# Thin wrappers over train.py / evaluate.py / scaling.py / probe.py: the only places that know
# their signatures (tests replace them with fakes). Each returns (result, exact command).

@dataclass
class Context:
    cfg: StudyConfig
    out: Path
    data_dir: Path | None = None
    base_dir: Path | None = None
    available: dict = field(default_factory=dict)   # translation pairs per language in the world


def _q(v) -> str:
    s = ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
    return s if s and all(c.isalnum() or c in "-_./,=:" for c in s) else "'" + s.replace("'", "'\\''") + "'"


def cli(script: str, kw: dict) -> str:
    """The command line equivalent to calling `script`'s entry point with `kw` (None = left out)."""
    flags = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            flags.append(flag if v else "--no-" + flag[2:])
        elif v is not None:
            flags.append(f"{flag} {_q(v)}")
    return f"python {script} " + " ".join(flags)


def prepare_world(ctx: Context) -> tuple[Path, Path, dict, str]:
    """The miniature world and its pretrained base (both cached).
    Returns (data dir, base dir, {lang: translation pairs available}, command)."""
    import train
    data_dir = train.ensure_world(ctx.out / "world", seed=ctx.cfg.world_seed, **ctx.cfg.world)
    kw = dict(arch=ctx.cfg.arch, max_steps=ctx.cfg.base_steps, seed=ctx.cfg.world_seed, threads=ctx.cfg.threads,
              progress=False)
    kw = {k: v for k, v in kw.items() if v is not None}
    base_dir = train.ensure_base(data_dir, ctx.out / "base", **kw)
    cmd = (cli("world.py", dict(out=str(data_dir), seed=ctx.cfg.world_seed, **ctx.cfg.world)) + " && "
           + cli("train.py", {**train.BASE_PRETRAIN, **kw, "data": str(data_dir), "out": str(base_dir)}))
    langs = set(ctx.cfg.langs) | set(ctx.cfg.sweep_langs) | set(ctx.cfg.muit_langs)
    return Path(data_dir), Path(base_dir), _count_pairs(data_dir, sorted(langs)), cmd


def _count_pairs(data_dir, langs) -> dict[str, int]:
    import data
    return {l: len(data.read_parallel(data_dir, l)) for l in langs}


def train_model(run: Run, ctx: Context, allocation: dict | None) -> tuple[Path, str]:
    import train
    out_dir = ctx.out / "models" / run.name
    kw = dict(recipe=run.recipe, data=str(ctx.data_dir), base=str(ctx.base_dir), out=str(out_dir),
              seed=run.seed, max_steps=ctx.cfg.steps, threads=ctx.cfg.threads)
    if run.recipe == "muit":
        kw.update(langs=",".join(run.langs), budget=run.budget, allocation="uniform")
    elif run.recipe != "alpaca":
        kw["lang"] = run.langs[0]
    kw["n_translation"] = run.n_translation
    if allocation is not None:
        path = ctx.out / "models" / f"{run.name}.allocation.json"
        atomic_write(path, json.dumps(allocation))
        kw["allocation"] = str(path)
    kw.update(progress=False, samples=False)
    cmd = cli("train.py", kw)
    # an interrupted study resumes the run it was in; a finished one is returned as it is
    state = dict(resume=train.status(out_dir) == "unfinished", reuse=True)
    return Path(train.train(train.TrainConfig(**{k: v for k, v in kw.items() if v is not None}, **state))), cmd


def evaluate_model(model_dir: Path, task: str, lang: str, direction: str, ctx: Context) -> tuple[dict, str]:
    import evaluate
    out_dir = Path(model_dir) / "eval" / (f"{task}-{lang}" + (f"-{direction}" if task == "flores" else ""))
    kw = dict(limit=ctx.cfg.eval_limit, batch_size=ctx.cfg.eval_batch, max_new_tokens=ctx.cfg.max_new_tokens)
    cmd = cli("evaluate.py", dict(model=str(model_dir), task=task, lang=lang, direction=direction,
                                  data=str(ctx.data_dir), out=str(out_dir), **kw))
    scores = evaluate.evaluate(model_dir, task, lang, ctx.data_dir, direction=direction, out_dir=out_dir, **kw)
    return dict(scores), cmd


def probe_models(models: dict[str, Path], langs, ctx: Context) -> tuple[dict, str]:
    import probe
    out = ctx.out / "probe.json"
    kw = dict(langs=",".join(langs), data=str(ctx.data_dir), limit=ctx.cfg.probe_limit, out=str(out))
    cmd = cli("probe.py", dict(models=",".join(str(p) for p in models.values()), **kw))
    res = probe.probe([str(p) for p in models.values()], list(langs), ctx.data_dir, limit=ctx.cfg.probe_limit)
    atomic_write(out, json.dumps({"models": res}, indent=1))
    named = {name: res[str(p)] for name, p in models.items()}
    named_chart = {"chart": probe.text_chart(named, "gap"), "plot": Path(probe.plot(named, out)).name}
    return {**named, "_chart": named_chart}, cmd


def fit_and_allocate(points: list[dict], langs, budget: int, ctx: Context) -> tuple[dict, list[str]]:
    """Fit both law forms per language; allocate the m-LLaMA budget by cfg.law_form (the other
    form if that one is not increasing, recorded); the uniform split of the same budget."""
    import scaling
    pts = {l: ([p["size"] for p in points if p["lang"] == l], [p["score"] for p in points if p["lang"] == l])
           for l in langs}
    fits, notes = {}, []
    for l in langs:
        try:
            fits[l] = {f: scaling.fit(*pts[l], f, what=f"sweep {l}") for f in scaling.FORMS}
        except ValueError as e:
            notes.append(f"no law for {l}: {e}")
    minimum = min(ctx.cfg.sweep_sizes)       # never allocate below the fitted range
    avail = {l: ctx.available[l] for l in langs if l in ctx.available} or None
    rec = {"points": points, "fits": {l: {f: v.to_json() for f, v in d.items()} for l, d in fits.items()},
           "uniform": scaling.uniform_split(langs, budget, minimum, avail), "minimum": minimum, "notes": notes}
    for form in (ctx.cfg.law_form,) + tuple(f for f in scaling.FORMS if f != ctx.cfg.law_form) if not notes else ():
        chosen = {l: fits[l][form] for l in langs}
        try:
            rec["allocation"] = scaling.allocate(chosen, budget, minimum, avail)
        except ValueError as e:
            rec["notes"].append(f"{form} law cannot allocate: {e}")
            continue
        rec["form"] = form
        rec["predicted"] = {k: {l: float(chosen[l].predict(rec[k][l])) for l in langs} for k in ("uniform", "allocation")}
        break
    rec["charts"], rec["plots"] = {}, {}
    for l in fits:   # PNG when matplotlib is installed, else a text chart (kept for the report either way)
        rec["charts"][l] = scaling.text_chart(*pts[l], list(fits[l].values()))
        rec["plots"][l] = Path(scaling.save_plot(l, *pts[l], list(fits[l].values()), ctx.out / f"scaling-{l}")).name
    pfile, ffile, afile = ctx.out / "sweep_points.csv", ctx.out / "fits.json", ctx.out / "allocation.json"
    atomic_write(pfile, "lang,size,score\n" + "".join(f"{p['lang']},{p['size']},{p['score']}\n" for p in points))
    cmds = [f"python scaling.py fit --points {_q(pfile)} --form both --out {_q(ffile)}"]
    if "form" in rec:
        atomic_write(ffile, json.dumps({l: fits[l][rec["form"]].to_json() for l in langs}, indent=1))
        atomic_write(afile, json.dumps(rec["allocation"]))
        cmds[0] = cmds[0].replace("--form both", f"--form {rec['form']}")
        cmds.append(f"python scaling.py allocate --fits {_q(ffile)} --budget {budget} --min {minimum} "
                    f"--available {_q(ctx.data_dir)} --out {_q(afile)}")
    return rec, cmds


# ----------------------------------------------------------------------------- running the study

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


def execute(run: Run, ctx: Context, results: dict) -> dict:
    """Run one plan entry; returns its record for results.json."""
    rec = {"kind": run.kind, "group": run.group, "recipe": run.recipe, "langs": list(run.langs), "seed": run.seed,
           "n_translation": run.n_translation, "budget": run.budget, "allocation": run.allocation,
           "commands": [], "wall_s": {}, "scores": {}}
    done = results["runs"]
    t0 = time.time()
    if run.kind == "base":
        rec["model_dir"] = str(ctx.base_dir)
        rec["commands"].append(results["stages"].get("prepare", {}).get("command", ""))
    elif run.kind == "train":
        fit, alloc = done.get("fit", {}), None
        if run.allocation == "fitted":
            if "allocation" not in fit:
                return {**rec, "status": "skipped", "reason": "no increasing law to allocate by: "
                        + "; ".join(fit.get("notes", ["fit run missing"]))}
            alloc = fit["allocation"]
        elif run.allocation == "uniform":
            alloc = fit.get("uniform")    # the same split the allocation is compared against
        rec["sizes"] = alloc
        model_dir, cmd = train_model(run, ctx, alloc)
        rec["model_dir"], rec["wall_s"]["train"] = str(model_dir), time.time() - t0
        rec["commands"].append(cmd)
        t1 = time.time()
        for task, lang, direction in run.evals:
            scores, cmd = evaluate_model(model_dir, task, lang, direction, ctx)
            rec["scores"][eval_key(task, lang, direction)] = scores
            rec["commands"].append(cmd)
        rec["wall_s"]["eval"] = time.time() - t1
    elif run.kind == "fit":
        points = []
        for name in run.needs:
            r = done.get(name, {})
            lang = r.get("langs", [None])[0]
            score = metric(r.get("scores", {}).get(eval_key("flores", lang, "en-X")), "bleu")
            if score is not None:
                size = r["n_translation"] or ctx.available.get(lang)
                points.append({"lang": lang, "size": size, "score": score, "run": name})
        fit, cmds = fit_and_allocate(points, run.langs, run.budget, ctx)
        rec.update(fit)
        rec["commands"] += cmds
    elif run.kind == "probe":
        models = {n: Path(done[n]["model_dir"]) for n in run.needs if done.get(n, {}).get("status") == "done"}
        rec["probe"], cmd = probe_models(models, run.langs, ctx)
        rec["commands"].append(cmd)
    rec["wall_s"]["total"] = time.time() - t0
    return {**rec, "status": "done"}


def run_study(cfg: StudyConfig) -> Path:
    out = Path(cfg.out)
    results = load_results(out)
    report = out / "RESULTS.md"
    if results.get("finished") and report.exists() and not cfg.overwrite:
        raise SystemExit(f"{report} is a finished report; pass --overwrite to run the study again, or another --out")
    conf = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items() if k != "overwrite"}
    if cfg.overwrite:       # train.py and evaluate.py would otherwise reuse the old checkpoints and predictions
        for sub in ("models", "base", "world"):
            shutil.rmtree(out / sub, ignore_errors=True)
    if cfg.overwrite or not results["runs"]:
        results = {"runs": {}, "stages": {}}
    elif results.get("config") != conf:
        raise SystemExit(f"{out / 'results.json'} was made with a different configuration; "
                         "pass the same flags to resume, --overwrite to start again, or another --out")
    import torch
    torch.set_num_threads(cfg.threads)
    results.pop("report_only", None)
    results.update(config=conf, machine=machine_info(), finished=False,
                   argv=" ".join(["python reproduce.py"] + [_q(a) for a in sys.argv[1:]]))
    results.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    ctx = Context(cfg, out)
    t0 = time.time()
    ctx.data_dir, ctx.base_dir, ctx.available, cmd = prepare_world(ctx)
    if "prepare" not in results["stages"]:
        results["stages"]["prepare"] = {"wall_s": time.time() - t0, "command": cmd}
    results["available"] = ctx.available
    plan = build_plan(cfg, ctx.available)
    results["plan"] = [r.name for r in plan]
    save_results(out, results)
    bar = tqdm(plan, desc="study", unit="run", file=sys.stdout)
    for run in bar:
        if results["runs"].get(run.name, {}).get("status") in ("done", "skipped"):
            bar.write(f"{run.name}: finished earlier, skipped")
            continue
        bar.set_postfix_str(run.name)
        bar.write(f"== {run.name} ({run.kind} {run.recipe} {','.join(run.langs)})")
        try:
            results["runs"][run.name] = execute(run, ctx, results)
        except Exception as e:  # recorded, shown in the report, retried on the next resume
            results["runs"][run.name] = {"kind": run.kind, "group": run.group, "langs": list(run.langs),
                                         "status": "failed", "error": f"{type(e).__name__}: {e}"}
            bar.write(f"{run.name} FAILED: {type(e).__name__}: {e}")
        save_results(out, results)
    failed = [n for n, r in results["runs"].items() if r.get("status") == "failed"]
    results["finished"] = not failed      # a report with failed runs can be completed by rerunning
    results["total_wall_s"] = sum(r.get("wall_s", {}).get("total", 0) for r in results["runs"].values()) + \
        results["stages"]["prepare"]["wall_s"]
    save_results(out, results)
    atomic_write(report, write_report(results))
    print(f"wrote {report}" + (f"; {len(failed)} run(s) failed ({', '.join(failed)}): rerun the same command to retry them"
                               if failed else ""))
    return report


# ----------------------------------------------------------------------------- reading results

ROWS = (("alpaca", "Alpaca (English only)"), ("xllama", "x-LLaMA (its own language)"),
        ("mllama-uniform", "m-LLaMA, uniform budget"), ("mllama-fitted", "m-LLaMA, law allocation"),
        ("x2en", "x-LLaMA, X→en data (ablation)"))


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
    verdict: str = "not measured"  # reproduces | partly reproduces | does not reproduce | not measured
    reason: str = ""           # why not, chosen from the numbers


FLOOR = {"%": 5.0, "BLEU": 1.0}   # below this for both sides there is no signal to compare
CEILING = {"%": 90.0, "BLEU": 90.0}


def judge(a: float, b: float, unit: str, spread: float | None = None, what: str = "both models",
          n: int | None = None) -> tuple[str, str]:
    """Verdict on 'b is better than a' and, when it is not clearly so, the likely reason from the numbers.
    n: questions behind each accuracy (unit "%"): differences within two standard errors of the
    difference of two proportions, 100·sqrt(2p(1-p)/n), are sampling noise."""
    if max(a, b) < FLOOR[unit]:
        return "does not reproduce", (
            f"{what} are at the floor ({a:.1f} and {b:.1f} {unit}): the miniature models are too small or trained "
            "too briefly for this task, so there is no signal to compare (raise --steps / --base-steps)")
    if min(a, b) > CEILING[unit]:
        return "does not reproduce", f"{what} are at the ceiling ({a:.1f} and {b:.1f} {unit}): the task is too easy to separate them"
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


def claim_qa_gain(results, langs) -> Claim:
    c = Claim("x-LLaMA beats English-only Alpaca on non-English QA (XQuAD)", "+27.83% mean relative gain, 6 languages")
    a, x = _means(results, "alpaca", "xquad", langs), _means(results, "xllama", "xquad", langs)
    both = [l for l in langs if l in a and l in x]
    if not both:
        return c
    ma, mx = statistics.fmean(a[l] for l in both), statistics.fmean(x[l] for l in both)
    wins = sum(x[l] > a[l] for l in both)
    gains = relative_gains(results, "xllama", both)
    rel = f"{statistics.fmean(gains.values()):+.1f}% mean relative gain" if gains else "relative gain undefined (Alpaca 0)"
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
    a, x = _means(results, "alpaca", "flores", langs, name="bleu"), _means(results, "xllama", "flores", langs, name="bleu")
    both = [l for l in langs if l in a and l in x]
    if not both:
        return c
    ma, mx = statistics.fmean(a[l] for l in both), statistics.fmean(x[l] for l in both)
    c.here = f"mean en→X BLEU {ma:.1f} (Alpaca) → {mx:.1f} (x-LLaMA) over {len(both)} languages"
    c.verdict, c.reason = judge(ma, mx, "BLEU", seed_spread(results, "xllama", "flores", both, name="bleu"))
    return c


def claim_mllama(results, langs) -> Claim:
    c = Claim("m-LLaMA is comparable to the per-language x-LLaMAs", "qualitative (comparable XQuAD/MLQA)")
    x, m = _means(results, "xllama", "xquad", langs), _means(results, "mllama-uniform", "xquad", langs)
    both = [l for l in langs if l in x and l in m]
    if not both:
        return c
    mx, mm = statistics.fmean(x[l] for l in both), statistics.fmean(m[l] for l in both)
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
    a = _means(results, "alpaca", "xquad", langs, name="resp_lang")
    m = _means(results, "mllama-uniform", "xquad", langs, name="resp_lang")
    if len(a) < len(langs) or len(m) < len(langs) or not langs:
        return c
    ma, mm = statistics.fmean(a.values()), statistics.fmean(m.values())
    c.here = f"XQuAD responses in the question's language: {ma:.1f}% (Alpaca) vs {mm:.1f}% (m-LLaMA)"
    c.verdict, c.reason = judge(ma, mm, "%", what="both response-language rates")
    if mm >= CEILING["%"]:
        c.verdict, c.reason = "reproduces", ""
    elif c.verdict == "does not reproduce" and not c.reason:
        c.reason = ("Alpaca answers by copying spans of the non-English passage, so it already responds in the "
                    "passage's language" if ma >= mm else "")
    return c


def check_claims(results: dict) -> list[Claim]:
    cfg = results.get("config", {})
    langs, mlangs = cfg.get("langs", XLANGS), cfg.get("muit_langs", ())
    return [claim_qa_gain(results, langs), claim_flores(results, langs), claim_mllama(results, mlangs),
            claim_scaling(results), claim_allocation(results, mlangs),
            claim_direction(results, cfg.get("ablation_lang", "zh")), claim_probe(results), claim_response_lang(results, mlangs)]


# ----------------------------------------------------------------------------- RESULTS.md

def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows])


def _avg_cell(cells: list[float | None], n: int) -> str:
    have = [c for c in cells if c is not None]
    return "—" if not have else f"{statistics.fmean(have):.1f}" + ("" if len(have) == n else f" ({len(have)} langs)")


def qa_table(results, task, langs) -> str:
    rows = []
    for group, label in ROWS:
        cells, accs = [], []
        for l in langs:
            acc = values(results, group, task, l)
            em, f1 = mean(values(results, group, task, l, name="em")), mean(values(results, group, task, l, name="f1"))
            accs.append(mean(acc))
            cells.append("—" if not acc else fmt(acc) + ("" if em is None else f" ({em:.1f}/{f1:.1f})"))
        if any(a is not None for a in accs):
            rows.append([label] + cells + [_avg_cell(accs, len(langs))])
    return _table(["model"] + list(langs) + ["avg contain"], rows)


def flores_table(results, langs, direction) -> str:
    rows = []
    for group, label in ROWS:
        cells, bleus = [], []
        for l in langs:
            b, c = values(results, group, "flores", l, direction, "bleu"), values(results, group, "flores", l, direction, "chrf")
            bleus.append(mean(b))
            cells.append("—" if not b else f"{fmt(b)} / {fmt(c)}")
        if any(b is not None for b in bleus):
            rows.append([label] + cells + [_avg_cell(bleus, len(langs))])
    return _table(["model"] + list(langs) + ["avg BLEU"], rows)


def gain_table(results, langs) -> str:
    rows = []
    for group, label in ROWS[1:4]:
        g = relative_gains(results, group, langs)
        if g:
            rows.append([label] + [f"{g[l]:+.1f}%" if l in g else "—" for l in langs] + [f"{statistics.fmean(g.values()):+.1f}%"])
    if not rows:
        return "Undefined here: Alpaca's containment is 0 (or missing) in every language, and the gain divides by it."
    return _table(["model"] + list(langs) + ["mean"], rows)


def resp_table(results, langs) -> str:
    rows = []
    for group, label in ROWS[:4]:
        v = [mean(values(results, group, "xquad", l, name="resp_lang")) for l in langs]
        if any(x is not None for x in v):
            rows.append([label] + ["—" if x is None else f"{x:.1f}" for x in v] + [_avg_cell(v, len(langs))])
    return _table(["model"] + list(langs) + ["avg"], rows)


def scaling_section(results) -> str:
    fit = results["runs"].get("fit", {})
    if not fit.get("fits"):
        return "Not measured (no fit run in results.json)."
    pts = _table(["lang", "translation pairs", "en→X BLEU", "run"],
                 [[p["lang"], str(p["size"]), f"{p['score']:.2f}", p.get("run", "")] for p in sorted(fit["points"], key=lambda p: (p["lang"], p["size"]))])
    rows = []
    for l, forms in sorted(fit["fits"].items()):
        for f, d in forms.items():
            r2 = d.get("r2")
            rows.append([l, f, f"{d['params']['alpha']:.4g}", f"{d['params']['beta']:.4g}",
                         "n/a" if r2 is None else f"{r2:.3f}", f"{d.get('rmse', 0):.2f}", str(d.get("n", ""))])
    out = [pts, "", "Fitted laws (least squares on the points above; power: S = 100 − α·X^(−β), log: S = α·ln X + β; γ folded into α):",
           "", _table(["lang", "form", "α", "β", "R²", "RMSE (BLEU)", "points"], rows)]
    if "allocation" in fit:
        out += ["", f"Allocation of the m-LLaMA budget ({sum(fit['uniform'].values())} pairs, {fit['form']} law, "
                f"at least {fit['minimum']} per language) against the uniform split, with the measured scores of both m-LLaMAs:", ""]
        rows = []
        for l in sorted(fit["allocation"]):
            mu = fmt(values(results, "mllama-uniform", "flores", l, "en-X", "bleu"))
            mf = fmt(values(results, "mllama-fitted", "flores", l, "en-X", "bleu"))
            rows.append([l, str(fit["uniform"][l]), str(fit["allocation"][l]), f"{fit['predicted']['uniform'][l]:.2f}",
                         f"{fit['predicted']['allocation'][l]:.2f}", mu, mf])
        out.append(_table(["lang", "uniform pairs", "allocated pairs", "predicted BLEU (uniform)", "predicted BLEU (allocated)",
                           "measured BLEU (uniform)", "measured BLEU (allocated)"], rows))
    out += [f"\n{n}" for n in fit.get("notes", [])]
    for l, chart in sorted(fit.get("charts", {}).items()):
        out += ["", f"{l}: en→X BLEU against translation pairs (plot `{fit['plots'][l]}` beside results.json)", "",
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
    rows = [[str(k)] + [f"{curves[n]['gap'][k]:.3f}" + (f" / {curves[n]['retrieval'][k]:.0f}%" if "retrieval" in curves[n] else "")
                        if k < len(curves[n]["gap"]) else "—" for n in names] for k in range(depth)]
    rows.append(["**strongest**"] + [f"layer {best_layer(curves[n]['gap'])}" for n in names])
    text = _table(["layer (0 = embeddings)"] + names, rows)
    chart = probe.get("_chart", {})
    if chart:
        text += f"\n\nPlot: `{chart['plot']}` beside results.json.\n\n```\n{chart['chart']}\n```"
    return text


def setup_section(results) -> str:
    m, cfg = results.get("machine", {}), results.get("config", {})
    runs = results["runs"]
    stage = {"prepare (world + tokenizer + base)": results.get("stages", {}).get("prepare", {}).get("wall_s", 0)}
    for r in runs.values():
        for part in ("train", "eval"):
            if part in r.get("wall_s", {}):
                key = f"{r['group']} {part}"
                stage[key] = stage.get(key, 0) + r["wall_s"][part]
        if r.get("kind") in ("fit", "probe"):
            stage[r["kind"]] = r["wall_s"].get("total", 0)
    total = sum(stage.values())
    lines = [f"Generated by `{results.get('argv', 'python reproduce.py')}` (started {results.get('started', '?')}, "
             f"git {m.get('git_commit', '?')}) on {m.get('cpu', '?')}, {m.get('cores', '?')} cores"
             + (f", GPU {m['gpu']} (train.py/evaluate.py use it)" if m.get("gpu") else " (no GPU)") + ", "
             f"torch {m.get('torch', '?')} (threads: {m.get('torch_threads', '?')}), Python {m.get('python', '?')}. "
             f"Preset: {'--quick' if cfg.get('quick') else 'default'} ({cfg.get('arch', '?')} base, "
             f"{cfg.get('base_steps')} pretraining steps, {cfg.get('steps', '?')} steps per fine-tuning run). "
             f"Seeds: {cfg.get('seeds', '?')} for Alpaca and x-LLaMA (cells show mean±std over seeds when >1), "
             f"seed 0 for the rest; world seed {cfg.get('world_seed', '?')}. Total wall time {total / 60:.1f} min."
             + (" This text was regenerated from that run's results.json by `{argv}` at {time} (git {git_commit}); "
                "the numbers are unchanged.".format(**results["report_only"]) if "report_only" in results else ""),
             "", _table(["stage", "wall time (s)"], [[k, f"{v:.0f}"] for k, v in stage.items()] + [["total", f"{total:.0f}"]]),
             "", "<details><summary>Configuration and the exact command of every stage</summary>", "",
             "```json", json.dumps(cfg), "```", "", "```"]
    lines.append(results.get("stages", {}).get("prepare", {}).get("command", ""))
    for name, r in runs.items():
        lines += [f"# {name}"] + [c for c in r.get("commands", []) if c]
    lines += ["```", "</details>"]
    failed = {n: r for n, r in runs.items() if r.get("status") in ("failed", "skipped")}
    if failed:
        lines += ["", "**Runs that did not finish** (their cells show —):", ""]
        lines += [f"- `{n}` {r['status']}: {r.get('error') or r.get('reason')}" for n, r in failed.items()]
    return "\n".join(lines)


def headline_table(results: dict) -> str:
    """Per language: XQuAD containment and Flores en→X BLEU of Alpaca, x-LLaMA and m-LLaMA (the README's table)."""
    langs = list(results.get("config", {}).get("langs", XLANGS))
    rows = []
    for l in langs:
        q = [fmt(values(results, g, "xquad", l)) for g in ("alpaca", "xllama", "mllama-uniform")]
        b = [fmt(values(results, g, "flores", l, "en-X", "bleu")) for g in ("alpaca", "xllama", "mllama-uniform")]
        rows.append([l] + q + b)
    return _table(["lang", "XQuAD contain: Alpaca", "x-LLaMA", "m-LLaMA", "Flores en→X BLEU: Alpaca", "x-LLaMA", "m-LLaMA"], rows)


def write_report(results: dict) -> str:
    cfg = results.get("config", {})
    langs, mlangs = list(cfg.get("langs", XLANGS)), list(cfg.get("muit_langs", ()))
    claims = check_claims(results)
    mlqa = [l for l in langs if l in MLQA_LANGS]
    parts = [
        "# Results: the paper in miniature", "",
        "Every number below was produced by the run described in *Setup*, on the miniature world (world.py), "
        "not on real LLaMA-7B or the real benchmarks: they test whether the paper's *mechanisms* show up at toy "
        "scale, not its absolute numbers.", "",
        "## Headline", "", headline_table(results), "",
        "## Claims of the paper, checked", "",
        _table(["claim", "paper", "here", "verdict", "likely reason"],
               [[c.claim, c.paper, c.here, f"**{c.verdict}**", c.reason or "—"] for c in claims]), "",
        "## Setup", "", setup_section(results), "",
        "## Metrics", "",
        "- **contain**: containment accuracy (%), the paper's QA metric — the lower-cased first gold answer is a "
        "substring of the lower-cased response. **EM/F1** (in parentheses): SQuAD-style exact match and token F1 (×100) "
        "on the extracted answer with MLQA's per-language normalisation (evaluate.py).",
        "- **BLEU**: corpus BLEU of evaluate.py (sacreBLEU-compatible: 13a tokenization, `zh` for Chinese, exp smoothing; "
        "not spBLEU); **chrF++**: character 6-grams + word bigrams, β=2. On the miniature world's Flores-style devtest.",
        "- **relative gain over Alpaca** = mean over languages of (x − alpaca) / alpaca × 100, where x and alpaca are "
        "XQuAD containment accuracies (seed means); languages where Alpaca scores 0 are left out.",
        "- **response language**: % of XQuAD responses whose language (evaluate.response_language: script and "
        "character statistics) is the question's language.", "",
        f"## QA — XQuAD-style, contain (EM/F1), {cfg.get('eval_limit', '?')} questions per language", "",
        qa_table(results, "xquad", ["en"] + langs), "",
    ]
    if mlqa:
        parts += ["## QA — MLQA-style, contain (EM/F1)", "", qa_table(results, "mlqa", mlqa), ""]
    parts += [
        "## Relative gain over Alpaca (XQuAD containment)", "", gain_table(results, langs), "",
        f"## Translation — Flores-style en→X, BLEU / chrF++, {cfg.get('eval_limit', '?')} sentences", "",
        flores_table(results, langs, "en-X"), "",
        "## Translation — Flores-style X→en, BLEU / chrF++", "", flores_table(results, langs, "X-en"), "",
        "## Response-language rate (% of XQuAD responses in the question's language)", "", resp_table(results, langs), "",
        "## Scaling law of translation data and budget allocation", "", scaling_section(results), "",
        "## Layer-wise alignment (probe.py)", "",
        "Cell = mean over languages of (mean cosine of translation pairs − mean cosine of non-pairs) of mean-pooled hidden "
        "states / top-1 retrieval accuracy English→X; the layer with the largest gap is the strongest alignment.", "",
        probe_section(results), "",
    ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- command line

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Run the paper's study in miniature and write RESULTS.md.")
    ap.add_argument("--quick", action="store_true", help="small preset: fewer languages, sizes and steps (<= 10 min)")
    ap.add_argument("--out", default=None, help="output folder (default runs/study, runs/study-quick with --quick)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds for the Alpaca and x-LLaMA runs (default 2)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per fine-tuning run (preset default)")
    ap.add_argument("--eval-limit", type=int, default=None, help="questions / sentences per evaluation (preset default)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1: much faster than 2 for these small models on a shared CPU)")
    ap.add_argument("--overwrite", action="store_true", help="start again even if OUT holds a finished study")
    ap.add_argument("--report-only", action="store_true", help="only rewrite OUT/RESULTS.md from OUT/results.json")
    a = ap.parse_args(argv)
    for flag in ("seeds", "steps", "eval_limit", "threads"):
        if getattr(a, flag) is not None and getattr(a, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(a, flag)}")
    cfg = preset(a.quick, out=a.out or ("runs/study-quick" if a.quick else "runs/study"), seeds=a.seeds,
                 steps=a.steps, eval_limit=a.eval_limit, threads=a.threads, overwrite=a.overwrite or None)
    if a.report_only:
        results = load_results(Path(cfg.out))
        if not results["runs"]:
            ap.error(f"--report-only: no results in {Path(cfg.out) / 'results.json'}")
        results["report_only"] = {"argv": " ".join(["python reproduce.py"] + [_q(x) for x in sys.argv[1:]]),
                                  "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                                  "git_commit": machine_info()["git_commit"]}
        save_results(Path(cfg.out), results)
        atomic_write(Path(cfg.out) / "RESULTS.md", write_report(results))
        print(f"wrote {Path(cfg.out) / 'RESULTS.md'}")
        return 0
    run_study(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
