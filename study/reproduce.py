"""The paper's study in miniature, end to end, and an honest RESULTS.md written from it.

    python -m study.reproduce                      # default study (<= 60 min on 2 CPU cores)
    python -m study.reproduce --quick              # every table and gate, fewer runs (<= 10 min)
    python -m study.reproduce --full               # six languages, 3 seeds, 2000 steps (a GPU)
    python -m study.reproduce --out runs/study --seeds 3
    python -m study.reproduce --report-only        # rewrite RESULTS.md from OUT/results.json
    python -m study.reproduce --threads 1          # CPU threads for every run (default: measured)
    python -m study.reproduce --dtype fp32         # compute dtype of every run (default: measured)

What runs (the study plan, `build_plan`, is plain data: a list of `Run`s):
  base        the English-dominant miniature LLaMA (train.ensure_base); cloze on the held-out facts
              (the gate: does the base store what only English pretraining states?), probed
  alpaca      English-only Alpaca baseline, one per seed
  xllama-X    x-LLaMA (CoIT) for X in ar el hi tr vi zh, one per seed
  instr-X     instr_only ablation (English + translated Alpaca, no translation pairs), one per seed,
              for X in StudyConfig.instr_langs: does translation data carry the alignment?
  sweep-X-N   x-LLaMA trained on the first N en->X pairs, for >= 2 languages (Flores en->X only)
  fit         scaling laws (scaling.fit, both forms) on the sweep + allocation (scaling.allocate)
  mllama-uniform / mllama-fitted   m-LLaMA (MuIT), one translation budget split uniformly and
              by the fitted laws
  x2en-X      the en->X vs X->en ablation (compared with xllama-X)
  probe       layer-wise alignment (probe.py) for base, Alpaca, x-LLaMA and m-LLaMA
Closed-book QA (evaluate.py --task closedbook: questions without context about the world's
held-out encyclopedia facts, docs/world.md) is scored for Alpaca (English and every X), x-LLaMA
and instr-X (X and English), m-LLaMA and the X->en ablation; results.json["closedbook"] gathers
it per group and language over seeds, beside the base's cloze gate and the chance level.
Device, dtype and CPU threads are decided once per study (device.decide at the base's shapes;
--threads 0 and the dtype are measured) and passed to every train/evaluate/probe call, so all
runs of a study compute alike; the decision, its reason and the CPU are recorded in the Setup
section, and a resumed study keeps the dtype it started with.
Results go to OUT/results.json after every run (atomic), so an interrupted study resumes and
skips what is finished; a finished report is never overwritten without --overwrite.
OUT/RESULTS.md is written from results.json only, by report.py (its tables, and the paper's
claims checked with a verdict and the likely reason chosen from the numbers; its docstring
says how); --report-only is `python -m study.report --results OUT/results.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from study.claims import MLQA_XLANGS, NO_PASSAGE, XLANGS
from study.noise import eval_key, metric
from cli import Parser, UsageError, add_config_flags, check_config, guard, opt
from cli import write_atomic
from study.report import git_commit, load_results, regenerate, save_report, save_results


PROG = "python -m study.reproduce"


@dataclass
class StudyConfig:
    """The default study: sized for <= 60 min on 2 CPU cores without fast bf16 (docs/study.md):
    one Latin-script, one non-Latin and one CJK language, 2 seeds, 1000 steps per run."""
    out: str = "runs/study"              # results.json, RESULTS.md and every checkpoint go here
    preset: str = "default"              # default | quick | full (PRESETS)
    seeds: int = 2                       # seeds for the headline runs (Alpaca, x-LLaMA, instr_only)
    langs: tuple = ("ar", "vi", "zh")    # x-LLaMA languages
    muit_langs: tuple = ("ar", "zh")     # m-LLaMA languages (each needs a fitted law)
    sweep_langs: tuple = ("ar", "zh")    # scaling-law sweep languages (>= 2)
    sweep_sizes: tuple = (300, 1500)     # first-N pairs per sweep run (+ the full x-LLaMA run)
    budget: int = 3000                   # m-LLaMA's total translation pairs (uniform vs allocated)
    ablation_lang: str = "zh"            # en->X vs X->en ablation language
    # instr_only ablation languages (each a subset of langs, every seed)
    instr_langs: tuple = ("zh",)
    probe_langs: tuple = ("ar", "vi", "zh")
    # law used for allocation ("power" or "log"); both are fitted
    law_form: str = "power"
    # world.py size flags ({} = its defaults: the world the shipped base was pretrained on, so
    # the study starts from assets/base; any other world pretrains its own base first)
    world: dict = field(default_factory=dict)
    # model.PRESETS size of a base pretrained here (only for a world other than the default)
    arch: str = "micro"
    base_steps: int | None = None        # its pretraining steps (None: train.BASE_PRETRAIN's)
    # optimizer steps per fine-tuning run (equal compute for all)
    steps: int = 1000
    # share of ask documents in every fine-tuning run (train.py --replay; mixture.REPLAY_SHARE)
    replay: float = 0.3
    eval_limit: int = 200                # questions / sentences per evaluation
    eval_batch: int = 16                 # prompts per generate() call
    max_new_tokens: int = 48             # generation cap (world's Flores lines are <= 34 tokens)
    # closed-book and cloze cap (answers are one word, <= 8 tokens)
    cb_max_new_tokens: int = 16
    probe_limit: int = 100               # parallel sentences per probed language
    copy_sentences: int = 200            # fresh-name sentences of the base's copy gate
    bind_questions: int = 200            # fresh-passage questions of the binding probe
    world_seed: int = 0                  # seed of the miniature world
    # CPU threads for every run; 0 = measured once (device.decide)
    threads: int = 0
    # compute dtype of every run; auto = measured once (device.decide)
    dtype: str = "auto"
    overwrite: bool = False              # replace a finished study in OUT


PRESETS = {
    "default": {},
    # every table and gate, one seed, two languages, a quarter of the steps: <= 10 min on 2 cores
    "quick": dict(seeds=1, langs=("ar", "zh"), muit_langs=("ar", "zh"), probe_langs=("ar", "zh"),
                  sweep_sizes=(100, 300), budget=600, steps=250, eval_limit=100,
                  copy_sentences=100, bind_questions=100, probe_limit=60),
    # the paper's six languages, 3 seeds, twice the steps: for a GPU
    "full": dict(seeds=3, langs=XLANGS, muit_langs=("ar", "hi", "zh"),
                 sweep_langs=("ar", "hi", "zh"), instr_langs=("ar", "hi", "zh"),
                 probe_langs=("ar", "hi", "zh"), steps=2000, eval_limit=218),
}


def preset(name: str | bool = "default", **over) -> StudyConfig:
    """A preset (True: "quick", for older callers); keyword arguments override single fields."""
    name = "quick" if name is True else "default" if name is False else name
    cfg = replace(StudyConfig(), preset=name, **PRESETS[name])
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


def _qa(task, lang):
    """A QA test and its control: the same questions without the passage (claims.NO_PASSAGE)."""
    return ((task, lang, "en-X"), (task + NO_PASSAGE, lang, "en-X"))


def _evals(langs, qa=True, flores=("en-X", "X-en")):
    ev = []
    for lang in langs:
        if qa:
            ev += _qa("xquad", lang)
            if lang in MLQA_XLANGS:
                ev += _qa("mlqa", lang)
        ev += [("flores", lang, d) for d in flores]
    return tuple(ev)


BIND = ("bind", "en", "en-X")  # probe.bind_test: why Alpaca's English reading passes or fails


def _closedbook(langs):
    return tuple(("closedbook", lang, "en-X") for lang in langs)


def build_plan(cfg: StudyConfig, available: dict[str, int] | None = None) -> list[Run]:
    """The whole study as data, in execution order (every run after the runs it needs)."""
    if len(cfg.sweep_langs) < 2:
        raise ValueError("--sweep-langs: the scaling study needs at least 2 languages")
    if missing := set(cfg.muit_langs) - set(cfg.sweep_langs):
        raise ValueError(f"m-LLaMA languages {sorted(missing)} have no sweep, "
                         "so no fitted law to allocate by")
    if missing := set(cfg.instr_langs) - set(cfg.langs):
        raise ValueError(f"instr_only languages {sorted(missing)} have no x-LLaMA to compare with")
    avail = available or {}
    plan = [Run("base", "base", "base", evals=(("cloze", "en", "en-X"), BIND))]
    for s in range(cfg.seeds):
        plan.append(Run(f"alpaca-s{s}", "train", "alpaca", "alpaca", ("en",), s,
                        evals=_qa("xquad", "en") + (BIND,) + _evals(cfg.langs)
                        + _closedbook(("en",) + tuple(cfg.langs))))
    for s in range(cfg.seeds):
        for lang in cfg.langs:
            plan.append(Run(f"xllama-{lang}-s{s}", "train", "xllama", "coit", (lang,), s,
                            evals=_evals([lang]) + _closedbook((lang, "en"))))
    for s in range(cfg.seeds):
        for lang in cfg.instr_langs:
            plan.append(Run(f"instr-{lang}-s{s}", "train", "instr", "instr_only", (lang,), s,
                            evals=_closedbook((lang, "en"))))
    for lang in cfg.sweep_langs:
        for n in cfg.sweep_sizes:
            if lang in avail and n >= avail[lang]:
                continue                   # the full-data point comes from xllama-<lang>-s0
            plan.append(Run(f"sweep-{lang}-{n}", "train", "sweep", "coit", (lang,), 0,
                            n_translation=n,
                            evals=_evals([lang], qa=False, flores=("en-X",))))
    sweep = tuple(r.name for r in plan if r.group == "sweep")
    full = tuple(f"xllama-{l}-s0" for l in cfg.sweep_langs if l in cfg.langs)
    plan.append(Run("fit", "fit", "fit", langs=tuple(cfg.sweep_langs), budget=cfg.budget,
                    needs=sweep + full))
    for alloc in ("uniform", "fitted"):
        plan.append(Run(f"mllama-{alloc}", "train", f"mllama-{alloc}", "muit",
                        tuple(cfg.muit_langs), 0, budget=cfg.budget, allocation=alloc,
                        evals=_evals(cfg.muit_langs) + _closedbook(cfg.muit_langs),
                        needs=("fit",)))
    plan.append(Run(f"x2en-{cfg.ablation_lang}", "train", "x2en", "coit_x2en",
                    (cfg.ablation_lang,), 0,
                    evals=_evals([cfg.ablation_lang]) + _closedbook([cfg.ablation_lang])))
    probed = (("base", "alpaca-s0")
              + tuple(f"xllama-{l}-s0" for l in cfg.probe_langs if l in cfg.langs)
              + ("mllama-uniform",))
    plan.append(Run("probe", "probe", "probe", langs=tuple(cfg.probe_langs), needs=probed))
    names = [r.name for r in plan]
    assert len(names) == len(set(names)), "run names must be unique"
    return plan


# ----------------------------------------------------------------------------- results store

def machine_info() -> dict:
    import torch

    import device
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": device.cpu_name(), "cores": os.cpu_count(), "gpu": gpu,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "git_commit": git_commit()}


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
    # decided once per study (device.decide), passed to every run
    threads: int = 0
    dtype: str = "auto"


def _q(v) -> str:
    s = ",".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
    if s and all(c.isalnum() or c in "-_./,=:" for c in s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


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
    import checkpoint
    import train
    import world
    data_dir = world.ensure(ctx.out / "world", seed=ctx.cfg.world_seed, **ctx.cfg.world)
    kw = dict(arch=ctx.cfg.arch, max_steps=ctx.cfg.base_steps, seed=ctx.cfg.world_seed,
              threads=ctx.threads,
              dtype=ctx.dtype, progress=False)
    kw = {k: v for k, v in kw.items() if v is not None}
    world_flags = dict(out=str(data_dir), seed=ctx.cfg.world_seed, **ctx.cfg.world)
    cmd = cli("world.py", world_flags)
    # the shipped base when this world's pretraining text is the one it was trained on (the
    # default world's); otherwise a base pretrained here with the study's own steps
    base_dir = checkpoint.shipped_base(data_dir)
    if base_dir is not None and base_dir.resolve().is_relative_to(Path.cwd()):
        base_dir = base_dir.resolve().relative_to(Path.cwd())   # commands a clone can rerun
    if base_dir is None:  # its phases: the text, then reading (train.base_phases)
        base_dir = train.ensure_base(data_dir, ctx.out / "base", **kw)
        keys = [*train.BASE_PRETRAIN, *train.BASE_READ, *kw, "data", "base", "out"]
        for phase in train.base_phases(data_dir, ctx.out / "base", **kw):
            cmd += " && " + cli("train.py", {k: getattr(phase, k) for k in dict.fromkeys(keys)})
    else:
        cmd += f"  # base: the shipped {base_dir.parent.name}/{base_dir.name} (its README.md)"
    langs = set(ctx.cfg.langs) | set(ctx.cfg.sweep_langs) | set(ctx.cfg.muit_langs)
    return Path(data_dir), Path(base_dir), _count_pairs(data_dir, sorted(langs)), cmd


def _count_pairs(data_dir, langs) -> dict[str, int]:
    import data
    return {l: len(data.read_parallel(data_dir, l)) for l in langs}


def train_model(run: Run, ctx: Context, allocation: dict | None) -> tuple[Path, str]:
    import checkpoint
    import train
    out_dir = ctx.out / "models" / run.name
    kw = dict(recipe=run.recipe, data=str(ctx.data_dir), base=str(ctx.base_dir), out=str(out_dir),
              seed=run.seed, max_steps=ctx.cfg.steps, threads=ctx.threads, dtype=ctx.dtype)
    if run.recipe == "muit":
        kw.update(langs=",".join(run.langs), budget=run.budget, allocation="uniform")
    elif run.recipe != "alpaca":
        kw["lang"] = run.langs[0]
    kw["n_translation"] = run.n_translation
    kw["replay"] = ctx.cfg.replay
    if allocation is not None:
        path = ctx.out / "models" / f"{run.name}.allocation.json"
        write_atomic(path, json.dumps(allocation))
        kw["allocation"] = str(path)
    kw.update(progress=False, samples=False)
    cmd = cli("train.py", kw)
    # an interrupted study resumes the run it was in; a finished one is returned as it is
    state = dict(resume=checkpoint.run_status(out_dir) == "unfinished", reuse=True)
    cfg = train.TrainConfig(**{k: v for k, v in kw.items() if v is not None}, **state)
    return Path(train.run(cfg)), cmd


def evaluate_model(model_dir: Path, task: str, lang: str, direction: str,
                   ctx: Context) -> tuple[dict, str]:
    import evaluate
    task, control = task.removesuffix(NO_PASSAGE), task.endswith(NO_PASSAGE)
    name = (f"{task}-{lang}" + (f"-{direction}" if task == "flores" else "")
            + (NO_PASSAGE if control else ""))
    # beside the model, or (the shipped base, outside the study) in OUT/base
    inside = Path(model_dir).resolve().is_relative_to(ctx.out.resolve())
    out_dir = (Path(model_dir) if inside else ctx.out / "base") / "eval" / name
    closed = task in ("closedbook", "cloze")
    kw = dict(limit=ctx.cfg.eval_limit, batch_size=ctx.cfg.eval_batch, dtype=ctx.dtype,
              threads=ctx.threads,
              max_new_tokens=ctx.cfg.cb_max_new_tokens if closed else ctx.cfg.max_new_tokens)
    if control:
        kw["passage"] = False
    cmd = cli("evaluate.py", dict(model=str(model_dir), task=task, lang=lang, direction=direction,
                                  data=str(ctx.data_dir), out=str(out_dir), **kw))
    scores = evaluate.evaluate(model_dir, task, lang, ctx.data_dir, direction=direction,
                               out_dir=out_dir, **kw)
    return dict(scores), cmd


def _probe_call(name: str, model_dir: Path, ctx: Context, **kw) -> tuple[dict, str]:
    """probe.<name>(model_dir, data_dir, **kw) with the study's dtype and threads, and the
    command that repeats it."""
    import probe
    kw.update(dtype=ctx.dtype, threads=ctx.threads)
    args = ", ".join([repr(str(model_dir)), repr(str(ctx.data_dir))]
                     + [f"{k}={v!r}" for k, v in kw.items()])
    cmd = f'python -c "import probe; print(probe.{name}({args}))"'
    return getattr(probe, name)(model_dir, ctx.data_dir, **kw), cmd


def copy_model(model_dir: Path, ctx: Context) -> tuple[dict, str]:
    """The copy gate: probe.copy_test on sentences of fresh names (claims.GATES)."""
    return _probe_call("copy_test", model_dir, ctx, n=ctx.cfg.copy_sentences)


def bind_model(model_dir: Path, ctx: Context, template: str) -> tuple[dict, str]:
    """The binding probe (probe.bind_test): the base in its reading documents' format, a tuned
    model in the evaluation's prompt."""
    return _probe_call("bind_test", model_dir, ctx, n=ctx.cfg.bind_questions, template=template)


def probe_models(models: dict[str, Path], langs, ctx: Context) -> tuple[dict, str]:
    import probe
    out = ctx.out / "probe.json"
    # the study's own probe.json is replaced (overwrite)
    kw = dict(langs=",".join(langs), data=str(ctx.data_dir), limit=ctx.cfg.probe_limit,
              dtype=ctx.dtype, threads=ctx.threads, out=str(out), overwrite=True)
    cmd = cli("probe.py", dict(models=",".join(str(p) for p in models.values()), **kw))
    res = probe.probe([str(p) for p in models.values()], list(langs), ctx.data_dir,
                      limit=ctx.cfg.probe_limit,
                      dtype=ctx.dtype, threads=ctx.threads)
    write_atomic(out, json.dumps({"models": res}, indent=1))
    named = {name: res[str(p)] for name, p in models.items()}
    named_chart = {"chart": probe.text_chart(named, "gap"),
                   "plot": Path(probe.plot(named, out)).name}
    return {**named, "_chart": named_chart}, cmd


def fit_and_allocate(points: list[dict], langs, budget: int,
                     ctx: Context) -> tuple[dict, list[str]]:
    """Fit both law forms per swept language; allocate the m-LLaMA budget over the m-LLaMA languages
    by cfg.law_form (the other form if that one is not increasing, recorded); the uniform split of
    the same budget."""
    import scaling
    pts = {l: ([p["size"] for p in points if p["lang"] == l],
               [p["score"] for p in points if p["lang"] == l])
           for l in langs}
    fits, notes = {}, []
    for l in langs:
        try:
            fits[l] = {f: scaling.fit(*pts[l], f, what=f"sweep {l}") for f in scaling.FORMS}
        except ValueError as e:
            notes.append(f"no law for {l}: {e}")
    muit = list(ctx.cfg.muit_langs)          # a subset of the swept languages (build_plan checks)
    minimum = min(ctx.cfg.sweep_sizes)       # never allocate below the fitted range
    avail = {l: ctx.available[l] for l in muit if l in ctx.available} or None
    rec = {"points": points,
           "fits": {l: {f: v.to_json() for f, v in d.items()} for l, d in fits.items()},
           "uniform": scaling.uniform_split(muit, budget, minimum, avail), "minimum": minimum,
           "notes": notes}
    lawful = all(l in fits for l in muit)
    forms = (ctx.cfg.law_form,) + tuple(f for f in scaling.FORMS if f != ctx.cfg.law_form)
    for form in forms if lawful else ():
        chosen = {l: fits[l][form] for l in muit}
        try:
            rec["allocation"] = scaling.allocate(chosen, budget, minimum, avail)
        except ValueError as e:
            rec["notes"].append(f"{form} law cannot allocate: {e}")
            continue
        rec["form"] = form
        rec["predicted"] = {k: {l: float(chosen[l].predict(rec[k][l])) for l in muit}
                            for k in ("uniform", "allocation")}
        break
    rec["charts"], rec["plots"] = {}, {}
    # PNG when matplotlib is installed, else a text chart (kept for the report either way)
    for l in fits:
        rec["charts"][l] = scaling.text_chart(*pts[l], list(fits[l].values()))
        plot = scaling.save_plot(l, *pts[l], list(fits[l].values()), ctx.out / f"scaling-{l}")
        rec["plots"][l] = Path(plot).name
    pfile, ffile = ctx.out / "sweep_points.csv", ctx.out / "fits.json"
    afile = ctx.out / "allocation.json"
    write_atomic(pfile, "lang,size,score\n"
                 + "".join(f"{p['lang']},{p['size']},{p['score']}\n" for p in points))
    cmds = [f"python scaling.py fit --points {_q(pfile)} --form both --out {_q(ffile)}"]
    if "form" in rec:
        write_atomic(ffile, json.dumps({l: fits[l][rec["form"]].to_json() for l in fits}, indent=1))
        write_atomic(afile, json.dumps(rec["allocation"]))
        cmds[0] = cmds[0].replace("--form both", f"--form {rec['form']}")
        cmds.append(f"python scaling.py allocate --fits {_q(ffile)} --langs {_q(muit)} "
                    f"--budget {budget} "
                    f"--min {minimum} --available {_q(ctx.data_dir)} --out {_q(afile)}")
    return rec, cmds


# ----------------------------------------------------------------------------- running the study

def run_evals(run: Run, model_dir: Path, ctx: Context, rec: dict) -> None:
    t0 = time.time()
    for task, lang, direction in run.evals:
        scores, cmd = (bind_model(model_dir, ctx, "doc" if run.kind == "base" else "alpaca")
                       if task == "bind" else evaluate_model(model_dir, task, lang, direction, ctx))
        rec["scores"][eval_key(task, lang, direction)] = scores
        rec["commands"].append(cmd)
    if run.evals:
        rec["wall_s"]["eval"] = time.time() - t0


CLOSEDBOOK_METRICS = ("em", "contain", "right_in_en")


def closedbook_summary(runs: dict) -> dict:
    """results.json["closedbook"]: the base's cloze gate, and per group (alpaca, xllama, instr,
    mllama-uniform, ...) and question language each metric over that group's runs, in run order
    (one value per seed for the seeded groups; the English cell of xllama and instr gathers the
    models of every X), with the chance level and the majority baseline."""
    out = {"gate": None, "groups": {}}
    for name, r in runs.items():
        if r.get("status") != "done":
            continue
        for key, s in (r.get("scores") or {}).items():
            task, _, lang = key.partition(":")
            if not s or task not in ("closedbook", "cloze"):
                continue
            if task == "cloze":
                out["gate"] = {"run": name, "lang": lang, "n": s["n"], "em": s["em"],
                               "contain": s["contain"],
                               "chance": s["chance"], "majority": s["majority"]}
                continue
            cell = out["groups"].setdefault(r["group"], {}).setdefault(
                lang, {"runs": [], "seeds": [], "n": s["n"], "chance": s["chance"],
                       "majority": s["majority"]})
            cell["runs"].append(name)
            cell["seeds"].append(r.get("seed", 0))
            for m in CLOSEDBOOK_METRICS:
                if m in s:
                    cell.setdefault(m, []).append(s[m])
    return out


def execute(run: Run, ctx: Context, results: dict) -> dict:
    """Run one plan entry; returns its record for results.json."""
    rec = {"kind": run.kind, "group": run.group, "recipe": run.recipe, "langs": list(run.langs),
           "seed": run.seed,
           "n_translation": run.n_translation, "budget": run.budget, "allocation": run.allocation,
           "commands": [], "wall_s": {}, "scores": {}}
    done = results["runs"]
    t0 = time.time()
    if run.kind == "base":
        rec["model_dir"] = str(ctx.base_dir)
        rec["commands"].append(results["stages"].get("prepare", {}).get("command", ""))
        rec["scores"]["copy:en"], cmd = copy_model(ctx.base_dir, ctx)
        rec["commands"].append(cmd)
        run_evals(run, ctx.base_dir, ctx, rec)
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
        run_evals(run, model_dir, ctx, rec)
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
        models = {n: Path(done[n]["model_dir"]) for n in run.needs
                  if done.get(n, {}).get("status") == "done"}
        rec["probe"], cmd = probe_models(models, run.langs, ctx)
        rec["commands"].append(cmd)
    rec["wall_s"]["total"] = time.time() - t0
    return {**rec, "status": "done"}


def decide_runtime(cfg: StudyConfig, saved: dict):
    """The study's one device/dtype/threads decision, at the base model's shapes. A resumed study
    keeps the dtype it started with, so its runs are not split between bf16 and fp32."""
    import device  # here, like torch: --help and --report-only need neither
    from model import PRESETS
    shape = (PRESETS[cfg.arch].hidden_size, PRESETS[cfg.arch].intermediate_size)
    return device.decide(threads=cfg.threads, dtype=saved.get("dtype", cfg.dtype), shape=shape)


def run_plan(plan: list[Run], ctx: Context, results: dict) -> None:
    """Every run of the plan not finished earlier, in order; results.json saved after each."""
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
            results["runs"][run.name] = {"kind": run.kind, "group": run.group,
                                         "langs": list(run.langs),
                                         "status": "failed", "error": f"{type(e).__name__}: {e}"}
            bar.write(f"{run.name} FAILED: {type(e).__name__}: {e}")
        save_results(ctx.out, results)


def run_study(cfg: StudyConfig) -> Path:
    """Run (or resume) the study in cfg.out; ValueError, one line, for an --out it must not
    touch."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; expected a study folder (new, or one to resume)")
    if out.is_dir() and any(out.iterdir()) and not (out / "results.json").is_file():
        raise ValueError(f"--out {out}: holds files but no study (results.json); this study "
                         "never deletes what it did not make: choose another --out")
    results = load_results(out)
    report = out / "RESULTS.md"
    if results.get("finished") and report.exists() and not cfg.overwrite:
        raise ValueError(f"{report} is a finished report; pass --overwrite to run the study "
                         "again, or another --out")
    conf = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()
            if k != "overwrite"}
    if not cfg.overwrite and results["runs"] and results.get("config") != conf:
        raise ValueError(f"{out / 'results.json'} was made with a different configuration; "
                         "pass the same flags to resume, --overwrite to start again, "
                         "or another --out")
    build_plan(cfg)  # a bad configuration is refused before anything is deleted
    fresh = cfg.overwrite or not results["runs"]
    rt = decide_runtime(cfg, {} if fresh else results.get("runtime", {}))
    print(f"study: {rt.why}")
    # train.py and evaluate.py would otherwise reuse the old checkpoints and predictions
    if cfg.overwrite:
        for sub in ("models", "base", "world"):
            shutil.rmtree(out / sub, ignore_errors=True)
    if fresh:
        results = {"runs": {}, "stages": {}}
    results.pop("report_only", None)
    results.update(config=conf, machine=machine_info(), finished=False,
                   runtime={"threads": rt.threads, "dtype": rt.dtype, "why": rt.why},
                   argv=" ".join(["python -m study.reproduce"] + [_q(a) for a in sys.argv[1:]]))
    results.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    save_results(out, results)  # from now on OUT is a study: a rerun resumes it
    ctx = Context(cfg, out, threads=rt.threads, dtype=rt.dtype)
    t0 = time.time()
    ctx.data_dir, ctx.base_dir, ctx.available, cmd = prepare_world(ctx)
    if "prepare" not in results["stages"]:
        results["stages"]["prepare"] = {"wall_s": time.time() - t0, "command": cmd}
    results["available"] = ctx.available
    plan = build_plan(cfg, ctx.available)
    results["plan"] = [r.name for r in plan]
    save_results(out, results)
    run_plan(plan, ctx, results)
    results["closedbook"] = closedbook_summary(results["runs"])
    failed = [n for n, r in results["runs"].items() if r.get("status") == "failed"]
    results["finished"] = not failed      # a report with failed runs can be completed by rerunning
    results["total_wall_s"] = (sum(r.get("wall_s", {}).get("total", 0)
                                   for r in results["runs"].values())
                               + results["stages"]["prepare"]["wall_s"])
    save_results(out, results)
    save_report(results, report)
    retry = (f"; {len(failed)} run(s) failed ({', '.join(failed)}): "
             "rerun the same command to retry them")
    print(f"wrote {report}" + (retry if failed else ""))
    return report


# ----------------------------------------------------------------------------- command line

@dataclass
class ReproduceConfig:
    """The command line: a preset and the few fields a study is usually run with."""
    quick: bool = opt(False, "small preset: one seed, ar and zh, 250 steps a run (<= 10 min on "
                             "2 CPU cores)")
    full: bool = opt(False, "large preset for a GPU: the six languages, 3 seeds, 2000 steps a run")
    out: str | None = opt(None, "output folder (default: runs/study, with --quick "
                                "runs/study-quick, with --full runs/study-full)")
    seeds: int | None = opt(None, "seeds for the Alpaca, x-LLaMA and instr_only runs "
                                  "(default: the preset's: 2, --quick 1, --full 3)",
                            range="[1, inf)")
    steps: int | None = opt(None, "optimizer steps per fine-tuning run (default: the preset's)",
                            range="[1, inf)")
    eval_limit: int | None = opt(None, "questions / sentences per evaluation "
                                       "(default: the preset's)", range="[1, inf)")
    replay: float | None = opt(None, "share of ask documents in every fine-tuning run (default "
                                     "0.3; 0: the paper's mixtures alone)", range="[0, 1)")
    threads: int | None = opt(None, "CPU threads for every run (default: 0, all cores if a short "
                                    "measurement shows them faster than one, decided once for "
                                    "the study)", range="[0, inf)")
    dtype: str | None = opt(None, "compute dtype of every run: auto (default: bf16 only where a "
                                  "short measurement shows it faster), fp32, bf16 or fp16 "
                                  "(float32, bfloat16, float16 as in train.py)")
    overwrite: bool = opt(False, "start again even if OUT holds a finished study")
    report_only: bool = opt(False, "only rewrite OUT/RESULTS.md from OUT/results.json")


def study_config(flags: ReproduceConfig) -> StudyConfig:
    """The preset, then the flags given; every flag checked (one UsageError naming it)."""
    check_config(flags)
    if flags.quick and flags.full:
        raise UsageError("--quick and --full are two presets: give one of them")
    dtype = flags.dtype
    if dtype is not None:
        import device  # here, like torch: --help needs neither
        device.check_flags("auto", dtype)
        dtype = device.canonical_dtype(dtype)
    name = "quick" if flags.quick else "full" if flags.full else "default"
    out = flags.out or {"quick": "runs/study-quick", "full": "runs/study-full"}.get(name,
                                                                                  "runs/study")
    cfg = preset(name, out=out, seeds=flags.seeds, steps=flags.steps,
                 eval_limit=flags.eval_limit, threads=flags.threads, dtype=dtype,
                 replay=flags.replay,
                 overwrite=flags.overwrite or None)
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise UsageError(f"--out {cfg.out} is a file; expected a study folder "
                         "(new, or one to resume)")
    return cfg


def main(argv=None) -> int:
    """The command line; exit 0, 2 (a bad flag or input), 130 (Ctrl-C: how to continue) or 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog=__doc__.split("\n\n", 1)[1])
    flags = ReproduceConfig(**vars(add_config_flags(parser, ReproduceConfig).parse_args(argv)))
    command = shlex.join(["python", "-m", "study.reproduce", *argv])

    def body():
        cfg = study_config(flags)
        try:
            if flags.report_only:
                print(f"wrote {regenerate(Path(cfg.out), command)}")
            else:
                run_study(cfg)
        except UsageError:
            raise
        except ValueError as e:  # a results.json it must not touch: one line, exit 2
            raise UsageError(f"--report-only: {e}" if flags.report_only else str(e)) from None
    return guard(PROG, body, resume=command)  # the same command resumes: finished runs are kept


if __name__ == "__main__":
    sys.exit(main())
