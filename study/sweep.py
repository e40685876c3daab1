"""sweep.py — measure a scaling curve: one x-LLaMA per translation-data size, trained and scored.

    python -m study.sweep --lang de --sizes 250,500,1000,2000,4000 --data runs/world

For each size N it trains CoIT with the first N en->X pairs (train.run, as `python train.py
--n-translation N` would) and scores Flores en->X (evaluate.evaluate); it appends the points to
OUT/points.csv, fits both laws (scaling.py), writes OUT/FITS.json and prints a table and a chart
(PNG via matplotlib when installed, a text chart otherwise). Finished runs and predictions are reused,
so a killed sweep continues with the same command. `python scaling.py allocate --fits OUT/FITS.json`
then splits a budget across languages.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import evaluate
import checkpoint
import scaling as S
import train as T
from cli import Parser
from files import write_atomic


def sweep(lang: str, sizes: list[int], data_dir: str = "runs/world", out: str = "runs/sweep", limit: int | None = None,
          metric: str = "bleu", forms=S.FORMS, eval_batch_size: int = 8, threads: int = 0, dtype: str = "auto",
          **train_overrides) -> list[S.LawFit]:
    """Train (train.train, CoIT with the first N pairs) and evaluate (evaluate.evaluate, Flores en->X)
    one model per size; finished runs and predictions are reused, so a killed sweep continues.
    Points go to OUT/points.csv (earlier rows kept: delete it to start over), fits to OUT/FITS.json.
    threads/dtype go to train.py (0 / "auto": measured there, device.py). Every argument and the
    files of an earlier sweep are checked before the first run trains."""
    if len(sizes) < 3 or any(n <= 0 for n in sizes):
        raise ValueError(f"--sizes: need at least 3 positive sizes, got {sizes}")
    if metric not in S.METRICS:
        raise ValueError(f"--metric {metric!r}: expected one of {', '.join(S.METRICS)}")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; expected a folder")
    configs = [T.validate(T.TrainConfig(  # UsageError (a ValueError) names the flag
        recipe="coit", lang=lang, n_translation=n, data=data_dir, out=str(out_dir / f"{lang}-{n}"), reuse=True,
        samples=False, threads=threads, dtype=dtype, **train_overrides)) for n in sizes]
    points_file, fits_file = out_dir / "points.csv", out_dir / "FITS.json"
    points = S.read_points(points_file, min_points=1) if points_file.is_file() else {}
    old_fits = S.read_json(fits_file) if fits_file.is_file() else {}
    if not isinstance(old_fits, dict):
        raise ValueError(f"{fits_file}: expected a JSON object {{lang: fit}}; delete it to start over")
    xs = dict(zip(*points.get(lang, ([], []))))  # size -> score; earlier sweeps' points are kept
    for n, cfg in zip(sizes, configs):
        state = checkpoint.run_status(Path(cfg.out))
        if state == "finished":
            print(f"sweep {lang}: reusing the finished run in {cfg.out} (delete it to retrain)")
        ckpt = T.run(replace(cfg, resume=state == "unfinished"))  # a killed run continues
        scores = evaluate.evaluate(ckpt, "flores", lang, data_dir, direction="en-X", limit=limit,
                                   batch_size=eval_batch_size)
        if metric not in scores:
            raise ValueError(f"--metric {metric!r}: evaluate returned {', '.join(k for k in scores if isinstance(scores[k], float))}")
        xs[float(n)] = float(scores[metric])
        points[lang] = (list(xs), list(xs.values()))
        rows = ["lang,size,score"] + [f"{l},{x:g},{y}" for l, (a, b) in sorted(points.items()) for x, y in zip(a, b)]
        write_atomic(points_file, "\n".join(rows) + "\n")
        print(f"sweep {lang}: {n} pairs -> {metric} {xs[float(n)]:.2f}  ({ckpt})")
    ys = [xs[x] for x in sorted(xs)]
    print(f"{'size':>8} {metric:>8}\n" + "\n".join(f"{x:>8g} {y:>8.2f}" for x, y in zip(sorted(xs), ys)))
    cands = S.fit_forms(lang, sorted(xs), ys, forms, source=f"sweep {lang}")
    S.write_json(fits_file, {**old_fits, lang: S.best_fit(cands).to_json()})
    print(S.text_chart(sorted(xs), ys, cands))
    print(f"wrote {points_file}, {fits_file} and {S.save_plot(lang, sorted(xs), ys, cands, out_dir / f'scaling-{lang}')}")
    return cands


def run(args) -> None:
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--sizes: expected comma-separated whole numbers, got {args.sizes!r}") from None
    overrides = {k: v for k, v in (("epochs", args.epochs), ("max_steps", args.max_steps), ("base", args.base),
                                   ("base_out", args.base_out)) if v is not None}
    sweep(args.lang, sizes, args.data, args.out, args.limit, args.metric,
          S.FORMS if args.form == "both" else (args.form,), args.eval_batch_size, args.threads, args.dtype, **overrides)


def build_parser() -> Parser:
    p = Parser(prog="python -m study.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--lang", default="de", help="target language")
    p.add_argument("--sizes", default="250,500,1000,2000,4000", help="comma-separated translation-data sizes")
    p.add_argument("--data", default="runs/world", help="data folder (made by world.py when missing)")
    p.add_argument("--out", default="runs/sweep", help="folder for checkpoints, points.csv, FITS.json, plot")
    p.add_argument("--limit", type=int, default=None, help="evaluate on the first N Flores sentences only")
    p.add_argument("--form", choices=("power", "log", "both"), default="both", help="law(s) to fit")
    p.add_argument("--metric", default="bleu", help="score from evaluate's Flores result: " + ", ".join(S.METRICS))
    p.add_argument("--epochs", type=float, default=None, help="passed to train.py (default: train.py's)")
    p.add_argument("--max-steps", type=int, default=None, help="passed to train.py: optimizer steps per run")
    p.add_argument("--base", default=None, help="passed to train.py: HF base checkpoint (default: the miniature base)")
    p.add_argument("--base-out", default=None, help="passed to train.py: where the miniature base is cached (default runs/base)")
    p.add_argument("--eval-batch-size", type=int, default=8, help="prompts per generate() call in evaluation")
    p.add_argument("--threads", type=int, default=0, help="passed to train.py: CPU threads (0: measured, device.py)")
    p.add_argument("--dtype", default="auto", help="passed to train.py: auto (measured on the CPU) | fp32 | bf16 | fp16")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"sweep.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # one line, not a traceback
        print("\nsweep.py: interrupted; the same command resumes: finished runs are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
