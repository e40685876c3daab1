"""sweep.py — measure a scaling curve: one x-LLaMA per translation-data size, trained and scored.

    python -m study.sweep --lang de --sizes 250,500,1000,2000,4000 --data runs/world

For each size N it trains CoIT with the first N en->X pairs (train.run, as `python train.py
--n-translation N` would) and scores Flores en->X (evaluate.evaluate); it appends the points to
OUT/points.csv, fits both laws (scaling.py), writes OUT/FITS.json and prints a table and a chart
(PNG via matplotlib when installed, a text chart otherwise). Finished runs and predictions are
reused, so a killed sweep continues with the same command. `python scaling.py allocate --fits
OUT/FITS.json` then splits a budget across languages.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import checkpoint
import data as D
import evaluate
import cli
import mixture
import scaling as S
import train as T
import world as W
from cli import Parser, UsageError, add_config_flags, check_config, guard, opt
from cli import write_atomic


def sweep(lang: str, sizes: list[int], data_dir: str = "runs/world", out: str = "runs/sweep",
          limit: int | None = None, metric: str = "bleu", forms=S.FORMS, eval_batch_size: int = 8,
          threads: int = 0, dtype: str = "auto", **train_overrides) -> list[S.LawFit]:
    """Train (train.train, CoIT with the first N pairs) and evaluate (evaluate.evaluate, Flores
    en->X) one model per size; finished runs and predictions are reused, so a killed sweep
    continues. Points go to OUT/points.csv (earlier rows kept: delete it to start over), fits to
    OUT/FITS.json. threads/dtype go to train.py (0 / "auto": measured there, device.py). Every
    argument and the files of an earlier sweep are checked before the first run trains."""
    if len(set(sizes)) < 3 or any(n <= 0 for n in sizes) or len(set(sizes)) != len(sizes):
        raise UsageError(f"--sizes: need at least 3 distinct positive sizes, got {sizes}")
    if metric not in S.METRICS:
        raise ValueError(f"--metric {metric!r}: expected one of {', '.join(S.METRICS)}")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; expected a folder")
    configs = [T.validate(T.TrainConfig(  # UsageError (a ValueError) names the flag
        recipe="coit", lang=lang, n_translation=n, data=data_dir, out=str(out_dir / f"{lang}-{n}"),
        reuse=True, samples=False, threads=threads, dtype=dtype, **train_overrides)) for n in sizes]
    available = pairs_available(data_dir, lang)
    if max(sizes) > available:
        raise UsageError(f"--sizes {','.join(map(str, sizes))}: {max(sizes)} en-{lang} pairs asked "
                         f"for, {data_dir} has {available}; give sizes up to {available}")
    with cli.locked(out_dir):  # a second sweep into OUT would mix its points with these
        return run_sizes(lang, sizes, configs, out_dir, data_dir, limit, metric, forms,
                         eval_batch_size)


def pairs_available(data_dir: str, lang: str) -> int:
    """en-X pairs in DATA (the default miniature world is written first, as train.py does)."""
    if data_dir == T.TrainConfig.data:
        W.ensure(data_dir)
    mixture.check_data(data_dir, "coit", [lang])
    return len(D.read_parallel(data_dir, lang))


def run_sizes(lang, sizes, configs, out_dir: Path, data_dir, limit, metric, forms,
              eval_batch_size) -> list[S.LawFit]:
    """The loop of sweep(), once everything is checked: train, score, append, fit."""
    points_file, fits_file = out_dir / "points.csv", out_dir / "FITS.json"
    points = S.read_points(points_file, min_points=1) if points_file.is_file() else {}
    old_fits = S.read_json(fits_file) if fits_file.is_file() else {}
    if not isinstance(old_fits, dict):
        raise ValueError(f"{fits_file}: expected a JSON object {{lang: fit}}; "
                         "delete it to start over")
    xs = dict(zip(*points.get(lang, ([], []))))  # size -> score; earlier sweeps' points are kept
    for n, cfg in zip(sizes, configs):
        state = checkpoint.run_status(Path(cfg.out))
        if state == "finished":
            print(f"sweep {lang}: reusing the finished run in {cfg.out} (delete it to retrain)")
        ckpt = T.run(replace(cfg, resume=state == "unfinished"))  # a killed run continues
        scores = evaluate.evaluate(ckpt, "flores", lang, data_dir, direction="en-X", limit=limit,
                                   batch_size=eval_batch_size)
        if metric not in scores:
            got = ", ".join(k for k in scores if isinstance(scores[k], float))
            raise ValueError(f"--metric {metric!r}: evaluate returned {got}")
        xs[float(n)] = float(scores[metric])
        points[lang] = (list(xs), list(xs.values()))
        rows = ["lang,size,score"] + [f"{l},{x:g},{y}" for l, (a, b) in sorted(points.items())
                                      for x, y in zip(a, b)]
        write_atomic(points_file, "\n".join(rows) + "\n")
        print(f"sweep {lang}: {n} pairs -> {metric} {xs[float(n)]:.2f}  ({ckpt})")
    ys = [xs[x] for x in sorted(xs)]
    print(f"{'size':>8} {metric:>8}\n"
          + "\n".join(f"{x:>8g} {y:>8.2f}" for x, y in zip(sorted(xs), ys)))
    cands = S.fit_forms(lang, sorted(xs), ys, forms, source=f"sweep {lang}")
    S.write_json(fits_file, {**old_fits, lang: S.best_fit(cands).to_json()})
    print(S.text_chart(sorted(xs), ys, cands))
    plot = S.save_plot(lang, sorted(xs), ys, cands, out_dir / f"scaling-{lang}")
    print(f"wrote {points_file}, {fits_file} and {plot}")
    return cands


@dataclass
class SweepConfig:
    lang: str = opt("de", "target language")
    sizes: str = opt("250,500,1000,2000,4000", "comma-separated translation-data sizes")
    data: str = opt("runs/world", "data folder (made by world.py when missing)")
    out: str = opt("runs/sweep", "folder for checkpoints, points.csv, FITS.json, plot")
    limit: int | None = opt(None, "evaluate on the first N Flores sentences only", range="[1, inf)")
    form: str = opt("both", "law(s) to fit: power, log or both", choices=("power", "log", "both"))
    metric: str = opt("bleu", "score from evaluate's Flores result: "
                              + ", ".join(S.METRICS), choices=S.METRICS)
    eval_batch_size: int = opt(8, "prompts per generate() call in evaluation", range="[1, inf)")
    # passed to train.py, which checks them (None: train.py's default)
    epochs: float | None = opt(None, "passed to train.py (default: train.py's)", range="(0, inf)")
    max_steps: int | None = opt(None, "passed to train.py: optimizer steps per run",
                                range="[1, inf)")
    base: str | None = opt(None, "passed to train.py: HF base checkpoint "
                                 "(default: the miniature base)")
    base_out: str | None = opt(None, "passed to train.py: where the miniature base is cached "
                                     "(default: runs/base)")
    threads: int = opt(0, "passed to train.py: CPU threads (0: measured, device.py)",
                       range="[0, inf)")
    dtype: str = opt("auto", "passed to train.py: auto (measured on the CPU), fp32, bf16 or fp16",
                     choices=("auto", "fp32", "bf16", "fp16"))


def run(cfg: SweepConfig) -> list[S.LawFit]:
    """The sweep that `cfg` (the command line) asks for."""
    check_config(cfg)
    try:
        sizes = [int(s) for s in cfg.sizes.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--sizes: expected comma-separated whole numbers, "
                         f"got {cfg.sizes!r}") from None
    train_flags = ("epochs", "max_steps", "base", "base_out")
    overrides = {k: getattr(cfg, k) for k in train_flags if getattr(cfg, k) is not None}
    forms = S.FORMS if cfg.form == "both" else (cfg.form,)
    return sweep(cfg.lang, sizes, cfg.data, cfg.out, cfg.limit, cfg.metric, forms,
                 cfg.eval_batch_size, cfg.threads, cfg.dtype, **overrides)


def build_parser() -> Parser:
    return add_config_flags(Parser(prog="python -m study.sweep",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split("\n\n", 1)[1]), SweepConfig)


def main(argv=None) -> int:
    """The command line; exit 0, 2 (a bad flag or input), 130 (Ctrl-C: how to continue) or 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = SweepConfig(**vars(build_parser().parse_args(argv)))

    def body():
        try:
            run(cfg)
        except (ValueError, FileNotFoundError) as e:  # bad flags or files of an earlier sweep
            raise UsageError(str(e)) from None
    resume = shlex.join(["python", "-m", "study.sweep", *argv])  # finished runs are kept
    return guard("python -m study.sweep", body, resume)


if __name__ == "__main__":
    sys.exit(main())
