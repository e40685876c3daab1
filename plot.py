"""plot.py — a training run's loss per data source over the steps, as a picture.

train.py logs one row per interval to RUN/metrics.jsonl: the loss over that interval (`loss`, per
target token) and the loss of each data source (`source_loss`: alpaca/en, alpaca/de,
translation/de, ...). This draws them:
RUN/loss.png when matplotlib is installed, else a text chart RUN/loss.txt. train.py calls it at the
end of every run; for any run folder, finished or not:

    python plot.py runs/x-llama-de                 # -> runs/x-llama-de/loss.png (or loss.txt)
    python plot.py runs/base runs/x-llama-de       # several runs, one file each
"""
from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cli import Parser, add_config_flags, guard, opt
from files import atomic_path


def read_curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """{source: [(step, loss), ...]} from RUN/metrics.jsonl; 'all' is each row's loss over all
    sources."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (expected a train.py run folder)")
    curves: dict[str, list[tuple[int, float]]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            step = int(row["step"])
            points = {"all": float(row["loss"]),
                      **{k: float(v) for k, v in row.get("source_loss", {}).items()}}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            msg = f"{path}:{i}: expected a metrics row with step and loss ({e})"
            raise ValueError(msg) from None
        for k, v in points.items():
            if math.isfinite(v):
                curves.setdefault(k, []).append((step, v))
    if not curves:
        raise ValueError(f"{path}: no rows yet")
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


def plot_run(run: str | os.PathLike) -> Path:
    """Write RUN/loss.png (matplotlib) or RUN/loss.txt; return the path written."""
    run = Path(run)
    curves = read_curves(run)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        out = run / "loss.txt"
        _write(out, lambda tmp: tmp.write_text(text_chart(curves), encoding="utf-8"))
        return out
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in sorted(curves, key=lambda k: (k != "all", k)):
        steps, losses = zip(*curves[name])
        ax.plot(steps, losses, label=name, linewidth=2.5 if name == "all" else 1.2,
                color="black" if name == "all" else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per target token")
    ax.set_yscale("log")
    ax.set_title(f"{run.name}: training loss per data source")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = run / "loss.png"
    _write(out, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return out


def _write(path: Path, save) -> None:
    """save(tmp) then rename: a reader never sees half a picture (files.atomic_path)."""
    with atomic_path(path) as tmp:
        save(tmp)


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
