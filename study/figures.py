"""The report's two figures, from results.json alone: the headline and the alignment per layer.

    python -m study.report --results runs/study/results.json   # draws them beside RESULTS.md

Drawn into figures/ beside the report, named by the report's stem so that two reports in one
folder (RESULTS.md, RESULTS-quick.md) keep their own. The links in the Markdown depend only on
results.json (`figure_data`), never on whether matplotlib is installed; without it each figure is
a text chart (.txt) instead of a PNG.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from study.claims import XLANGS, probe_curves
from study.noise import fmt, mean, values
from study.tables import HEAD_MODELS
from cli import write_atomic

HEAD_METRICS = (("xquad", "contain", "XQuAD containment (%)"),
                ("flores", "bleu", "Flores en→X BLEU"))
CAPTIONS = {"headline": "Headline per language: XQuAD containment and Flores en→X BLEU of "
                        "Alpaca, x-LLaMA and m-LLaMA (bar: mean over seeds, whisker: std over "
                        "seeds)",
            "alignment": "Alignment per layer: pair − non-pair cosine gap of each probed model, "
                         "mean over languages"}


def figure_data(results: dict) -> dict:
    """What each figure shows, for the figures that have a number to show:
    headline: {"langs": [...], "panels": {metric: {model: [seed values per lang]}}};
    alignment: {model: gap per layer}."""
    langs = list(results.get("config", {}).get("langs", XLANGS))
    panels = {title: {label: [values(results, g, task, l, "en-X", name) for l in langs]
                      for g, label in HEAD_MODELS}
              for task, name, title in HEAD_METRICS}
    keep = [k for k in range(len(langs))
            if any(cells[k] for rows in panels.values() for cells in rows.values())]
    probed = results["runs"].get("probe", {}).get("probe", {})
    gaps = {n: probe_curves(p).get("gap") for n, p in probed.items()}
    figs = {}
    if keep:
        figs["headline"] = {"langs": [langs[k] for k in keep],
                            "panels": {t: {m: [c[k] for k in keep] for m, c in rows.items()}
                                       for t, rows in panels.items()}}
    if any(gaps.values()):
        figs["alignment"] = {n: g for n, g in gaps.items() if g}
    return figs


def draw_figures(results: dict, report: Path) -> list[Path]:
    """figures/<stem>-headline.png and -alignment.png beside `report` (text charts in .txt
    without matplotlib)."""
    folder, stem = Path(report).parent / "figures", Path(report).stem
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    written = []
    for kind, d in figure_data(results).items():
        path = folder / f"{stem}-{kind}.{'txt' if plt is None else 'png'}"
        if plt is None:
            write_atomic(path, {"headline": _text_headline, "alignment": _text_alignment}[kind](d))
        else:
            plot = {"headline": _plot_headline, "alignment": _plot_alignment}[kind]
            _save_png(plt, plot(plt, d), path)
        written.append(path)
    # a figure of other numbers must not stay behind a link: drop what was not drawn now
    for kind in CAPTIONS:
        for old in (folder / f"{stem}-{kind}.png", folder / f"{stem}-{kind}.txt"):
            if old not in written:
                old.unlink(missing_ok=True)
    if plt is None and written:
        print(f"report.py: matplotlib is not installed, so the PNGs that {Path(report).name} "
              "links were not drawn; "
              f"text charts instead: {', '.join(p.name for p in written)} in {folder}")
    return written


def _save_png(plt, fig, path: Path) -> None:
    """savefig to a temp file, then one rename (the temp file goes on failure); no version
    stamp in the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)


def _plot_headline(plt, d):
    fig, axes = plt.subplots(1, len(d["panels"]), figsize=(11, 4))
    width = 0.8 / len(HEAD_MODELS)
    for ax, (title, rows) in zip(axes, d["panels"].items()):
        for i, (model, cells) in enumerate(rows.items()):
            pts = [(k + (i - (len(rows) - 1) / 2) * width, v)  # missing: no bar
                   for k, v in enumerate(cells) if v]
            if pts:
                ax.bar([x for x, _ in pts], [mean(v) for _, v in pts], width, label=model)
            err = [(x, mean(v), statistics.stdev(v)) for x, v in pts if len(v) > 1]
            if err:
                ax.errorbar(*zip(*err), fmt="none", ecolor="black", capsize=3, linewidth=1)
        ax.set_xticks(range(len(d["langs"])))
        ax.set_xticklabels(d["langs"])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot_alignment(plt, gaps: dict[str, list[float]]):
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, gap in gaps.items():
        ax.plot(range(len(gap)), gap, marker="o", label=name)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(max(len(g) for g in gaps.values())))
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("pair − non-pair cosine")
    ax.set_title("Alignment per layer (probe.py), mean over languages")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _text_bars(title: str, groups: dict[str, list[tuple[str, float | None, str]]],
               width: int = 40) -> str:
    """A text chart: under each group's heading one bar per (label, value, shown text), all on
    one scale."""
    vals = [v for rows in groups.values() for _, v, _ in rows if v is not None]
    lo, hi = min([0.0, *vals]), max([0.0, *vals])
    scale = width / (hi - lo) if hi > lo else 0.0
    lines = [f"{title} (bar from {lo:.3g} to {hi:.3g})"]
    for head, rows in groups.items():
        lines.append(head)
        lines += [f"  {label:<9}|{'#' * round(((lo if v is None else v) - lo) * scale):<{width}}"
                  f"| {text}"
                  for label, v, text in rows]
    return "\n".join(lines) + "\n"


def _text_headline(d) -> str:
    return "\n".join(_text_bars(f"{title}, mean±std over seeds",
                                {l: [(m, mean(c[k]), fmt(c[k])) for m, c in rows.items()]
                                 for k, l in enumerate(d["langs"])})
                     for title, rows in d["panels"].items())


def _text_alignment(gaps: dict[str, list[float]]) -> str:
    return _text_bars("pair − non-pair cosine gap per layer (0 = embeddings), mean over languages",
                      {n: [(f"layer {k}", v, f"{v:.4f}") for k, v in enumerate(g)]
                       for n, g in gaps.items()})

