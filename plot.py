"""plot.py — a run's metrics and pictures: the rows train.py logs (Meter), a training run's
loss per data source, and a scaling law's fit.

train.py logs one row per interval to RUN/metrics.jsonl: the loss over that interval (`loss`, per
target token) and the loss of each data source (`source_loss`: alpaca/en, alpaca/de,
translation/de, ...). This draws them:
RUN/loss.png when matplotlib is installed, else a text chart RUN/loss.txt. train.py calls it at the
end of every run; for any run folder, finished or not:

    python plot.py runs/x-llama-de                 # -> runs/x-llama-de/loss.png (or loss.txt)
    python plot.py runs/base runs/x-llama-de       # several runs, one file each

plot_law draws the points of a data-size sweep and the laws scaling.py fitted to them, the same
way: OUT.png, or the text chart law_chart in OUT.txt.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tqdm import tqdm

from cli import Parser, UsageError, add_config_flags, guard, opt
from cli import atomic_path, parse_json, read_text, write_atomic


class Meter:
    """The log interval: loss sums and target tokens per source, input tokens and time since the
    last log line; `log` turns them into one metrics.jsonl row and one stdout line."""

    def __init__(self, peak: float):
        self.peak, self.start, self.t, self.tokens = peak, time.time(), time.time(), 0
        self.sums: dict[str, list[float]] = {}   # source/lang -> [loss sum, target tokens]
        self.all_tokens, self.all_time = 0, 0.0  # over every interval: the run's tokens/s

    def add(self, by_source: dict, n_in: int) -> None:
        for k, (s, c) in by_source.items():
            acc = self.sums.setdefault(k, [0.0, 0.0])
            acc[0], acc[1] = acc[0] + s, acc[1] + c
        self.tokens += n_in

    def log(self, step: int, total: int, lr: float, gnorm: float, flops_tok: float) -> dict:
        dt, targets = time.time() - self.t, sum(c for _, c in self.sums.values())
        loss, tps = sum(s for s, _ in self.sums.values()) / max(targets, 1), self.tokens / dt
        row = dict(step=step, loss=round(loss, 5), lr=lr, grad_norm=round(gnorm, 4),
                   tokens_per_s=round(tps, 1), mfu=round(tps * flops_tok / self.peak, 5),
                   elapsed_s=round(time.time() - self.start, 2), tokens=self.tokens,
                   targets=int(targets),
                   source_loss={k: round(s / c, 5) for k, (s, c) in sorted(self.sums.items()) if c})
        tqdm.write(f"step {step}/{total} loss {loss:.4f} lr {lr:.2e} gnorm {gnorm:.2f} "
                   f"tok/s {tps:.0f} mfu {100 * row['mfu']:.2f}%")
        self.all_tokens, self.all_time = self.all_tokens + self.tokens, self.all_time + dt
        self.sums, self.tokens, self.t = {}, 0, time.time()
        return row

    def summary(self, loss: float, step: int, flops_tok: float) -> dict:
        tps = self.all_tokens / max(self.all_time, 1e-9)
        return dict(final_loss=loss, steps=step, wall_s=round(time.time() - self.start, 1),
                    tokens_per_s=round(tps, 1), mfu=round(tps * flops_tok / self.peak, 5),
                    peak_flops=self.peak)


def read_curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """{source: [(step, loss), ...]} from RUN/metrics.jsonl; 'all' is each row's loss over all
    sources."""
    path = run / "metrics.jsonl"
    if not path.is_file() and not path.is_dir():
        raise FileNotFoundError(f"{path}: not found (expected a train.py run folder)")
    curves: dict[str, list[tuple[int, float]]] = {}
    what = "train.py's metrics rows"
    for i, line in enumerate(read_text(path, what, allow_empty=True).splitlines(), 1):
        if not line.strip():
            continue
        row = parse_json(line, f"{path}:{i}", what)
        try:
            step, losses = row["step"], {"all": row["loss"], **row.get("source_loss", {})}
            points = {k: float(v) for k, v in losses.items()}
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as e:
            msg = f"{path}:{i}: expected a metrics row with step and loss ({e!r})"
            raise UsageError(msg) from None
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not 0 <= step < 2 ** 63 \
                or step != int(step):  # 1e400 reads as inf, NaN as nan: neither is a step
            raise UsageError(f"{path}:{i}: step {step!r}: expected a whole number >= 0")
        for k, v in points.items():
            if math.isfinite(v):
                curves.setdefault(k, []).append((int(step), v))
    if not curves:
        raise UsageError(f"{path}: no rows yet")
    return curves


def text_chart(curves: dict[str, list[tuple[int, float]]], rows: int = 12) -> str:
    """A table of the curves at up to `rows` evenly spaced logged steps (what a terminal shows)."""
    steps = sorted({s for pts in curves.values() for s, _ in pts})
    n = min(rows, len(steps))
    # evenly spaced, the first and the last included
    pick = [steps[round(i * (len(steps) - 1) / max(n - 1, 1))] for i in range(n)]
    names = sorted(curves, key=lambda k: (k != "all", k))
    lookup = {k: dict(v) for k, v in curves.items()}
    lines = [f"{'step':>7} " + " ".join(f"{k:>16}" for k in names)]
    for s in dict.fromkeys(pick):
        cells = (f"{lookup[k][s]:>16.4f}" if s in lookup[k] else f"{'':>16}" for k in names)
        lines.append(f"{s:>7} " + " ".join(cells))
    return "loss per data source (train.py metrics.jsonl)\n" + "\n".join(lines) + "\n"


def save_picture(out: Path, text, draw) -> Path:
    """OUT.png drawn by draw(plt) -> figure when matplotlib is installed, else OUT.txt holding
    text(), the chart a terminal can show; written atomically (cli.atomic_path), so a reader
    never sees half a picture. Returns the path written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path = out.with_suffix(".txt")
        write_atomic(path, text())
        return path
    fig = draw(plt)
    fig.tight_layout()
    path = out.with_suffix(".png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")  # at the figure's own dpi
    plt.close(fig)
    return path


def plot_run(run: str | os.PathLike) -> Path:
    """Write RUN/loss.png (matplotlib) or RUN/loss.txt; return the path written."""
    run = Path(run)
    curves = read_curves(run)

    def draw(plt):
        fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
        for name in sorted(curves, key=lambda k: (k != "all", k)):
            steps, losses = zip(*curves[name])
            ax.plot(steps, losses, label=name, linewidth=2.5 if name == "all" else 1.2,
                    color="black" if name == "all" else None)
        ax.set(xlabel="optimizer step", ylabel="loss per target token", yscale="log",
               title=f"{run.name}: training loss per data source")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        return fig
    return save_picture(run / "loss", lambda: text_chart(curves), draw)


# ----------------------------------------------------------------------------- scaling laws

def _r2(law) -> str:
    return "n/a" if law.r2 is None else str(round(law.r2, 3))


def law_chart(sizes, scores, laws, width: int = 60, height: int = 16) -> str:
    """Points (*) and fitted curves (first letter of the form) on a log-X grid; `laws` are
    scaling.LawFit (form, r2, predict)."""
    x, y = np.asarray(sizes, float), np.asarray(scores, float)
    lo, hi = math.log(x.min() / 1.5), math.log(x.max() * 1.5)
    grid = np.exp(np.linspace(lo, hi, width))
    curves = [(f.form[0], f.predict(grid)) for f in laws]
    ys = np.concatenate([y] + [c for _, c in curves])
    ymin, ymax = float(ys.min()), float(ys.max())
    ymax = ymax if ymax > ymin else ymin + 1.0
    rows = [[" "] * width for _ in range(height)]

    def put(col, val, ch):
        rows[height - 1 - int(round((val - ymin) / (ymax - ymin) * (height - 1)))][col] = ch
    for ch, c in curves:
        for col, v in enumerate(c):
            put(col, v, ch)
    for xi, yi in zip(x, y):
        put(int(round((math.log(xi) - lo) / (hi - lo) * (width - 1))), yi, "*")
    lines = [f"{ymax:8.2f} |" + "".join(rows[0])]
    lines += [" " * 9 + "|" + "".join(r) for r in rows[1:-1]]
    lines += [f"{ymin:8.2f} |" + "".join(rows[-1]), " " * 9 + "+" + "-" * width,
              f"{'':9} {grid[0]:<10.0f}{'size (log scale)':^{width - 20}}{grid[-1]:>10.0f}",
              "  * measured   " + "   ".join(f"{f.form[0]} {f.form} law (R2 {_r2(f)})"
                                           for f in laws)]
    return "\n".join(lines)


def plot_law(lang, sizes, scores, laws, out: Path) -> Path:
    """OUT.png (matplotlib) or OUT.txt (law_chart): the measured points and the fitted laws."""
    def draw(plt):
        grid = np.geomspace(min(sizes) / 1.5, max(sizes) * 1.5, 200)
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        ax.scatter(sizes, scores, color="k", label="measured", zorder=3)
        for f in laws:
            ax.plot(grid, f.predict(grid), label=f"{f.form} (R² {_r2(f)})")
        ax.set(xscale="log", xlabel=f"en-{lang} translation pairs", ylabel="score",
               title=f"scaling law, {lang}")
        ax.legend()
        return fig
    return save_picture(Path(out), lambda: law_chart(sizes, scores, laws) + "\n", draw)


@dataclass
class PlotConfig:
    runs: list[str] | None = opt(None, "run folders written by train.py", positional=True)


def main(argv=None) -> int:
    """Exit 0, or 2 with one line when a folder has no readable metrics.jsonl."""
    parser = add_config_flags(Parser(prog="plot.py", doc=__doc__), PlotConfig)
    cfg = PlotConfig(**vars(parser.parse_args(argv)))

    def body():
        for run in cfg.runs:
            print(f"wrote {plot_run(run)}")
    return guard("plot.py", body, usage=(FileNotFoundError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
