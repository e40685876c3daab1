"""plot.py — what a training run shows: the rows train.py logs (Meter), its loss per data source
as a picture, the first look at the finished model; and a scaling law's fit.

train.py logs one row per interval to RUN/metrics.jsonl: the loss over that interval (`loss`, per
target token) and the loss of each data source (`source_loss`: alpaca/en, alpaca/de,
translation/de, ...). This draws them:
RUN/loss.png when matplotlib is installed, else a text chart RUN/loss.txt. train.py calls it at the
end of every run; for any run folder, finished or not:

    python plot.py runs/x-llama-de                 # -> runs/x-llama-de/loss.png (or loss.txt)
    python plot.py runs/base runs/x-llama-de       # several runs, one file each

first_look ends train.py's run: the final loss per data source, a sample translation, XQuAD in X
and in English with the passage and without it (each beside chance), the closed-book check against
the base, and the command to talk to the model.

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
import torch
from tqdm import tqdm

import checkpoint
import data
import generate as G
import tokenizer
from cli import Parser, UsageError, add_config_flags, guard, opt
from cli import atomic_path, parse_json, read_text, write_atomic
from evaluate import prompt_ids
from metrics import qa_chance, score_closedbook, score_qa
from model import IGNORE_INDEX


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


def plan(cfg, job, n_examples: int, per_epoch: int) -> None:
    """The first lines of a train.py run: what it trains, where to, on what device, and how much."""
    raw, gbs = job.raw, cfg.batch_size * job.world
    n_train = sum(p.numel() for p in raw.parameters() if p.requires_grad)
    what = {"muit": cfg.langs, "pretrain": "", "alpaca": "en"}.get(cfg.recipe, cfg.lang)
    print(f"train: {cfg.recipe} {what} -> {job.out} | {job.rt.why}")
    print(f"train: {n_examples} examples, {per_epoch} micro-batches/epoch of {gbs} x "
          f"{job.accum} accumulation, {job.total} steps, {job.world} process(es)"
          f"{', FSDP' if cfg.fsdp else ''}, {raw.num_params() / 1e6:.2f}M params, "
          f"{n_train / 1e6:.2f}M trainable")


def finished(run: Path, summary: dict) -> None:
    """The last lines of a finished train.py run: its time, speed and MFU (Meter.summary), and
    where its loss picture went."""
    print(f"train: done in {summary['wall_s']} s, {summary['tokens_per_s']:.0f} tok/s, "
          f"MFU {100 * summary['mfu']:.2f}%")
    try:
        print(f"train: loss per data source drawn in {plot_run(run)}")
    except (OSError, ValueError) as e:  # a picture is not worth failing a finished run for
        print(f"train: no loss plot ({e})")


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


# ------------------------------------------------------------ the end of a run: a first look at it
@torch.no_grad()
def source_losses(model: Llama, encoded: list[dict], pad_id: int, n: int = 64, bs: int = 16,
                  progress: bool = False) -> dict:
    """Mean loss per target token for each (source, lang) over its first n training examples."""
    groups: dict[str, list[dict]] = {}
    for ex in encoded:
        groups.setdefault(f"{ex['source']}/{ex['lang']}", []).append(ex)
    device = next(model.parameters()).device
    batches = [(key, exs[:n][i:i + bs]) for key, exs in sorted(groups.items())
               for i in range(0, min(n, len(exs)), bs)]
    model.eval()
    sums: dict[str, list] = {}
    for key, mb in tqdm(batches, desc="final loss", disable=not progress, leave=False):
        mb = tokenizer.make_batch(mb, pad_id)
        _, loss = model(mb["idx"].to(device), mb["targets"].to(device), reduction="sum")
        acc = sums.setdefault(key, [0.0, 0])                  # [summed loss, target tokens]
        acc[0] += loss.item()
        acc[1] += int((mb["targets"] != IGNORE_INDEX).sum())
    res = {key: tot / cnt for key, (tot, cnt) in sums.items()}
    model.train()
    return res


@torch.no_grad()
def _answers(model: Llama, tok: Tokenizer, recs: list[dict], folder, device, max_new: int,
             bs: int) -> list[str]:
    """Greedy responses to benchmark records in the Alpaca template, bs at a time (model in eval
    mode afterwards)."""
    model.eval()
    got = []
    for i in range(0, len(recs), bs):
        ids = [prompt_ids(r, tok, "alpaca", folder) for r in recs[i:i + bs]]
        got += G.generate_responses(model, tok, ids, max_new, device)[0]
    return got


def first_look(model: Llama, tok: Tokenizer, encoded: list[dict], data_dir, lang: str, out: Path,
               base: Path | None, progress: bool = False) -> None:
    """The end of a run: where the model is, the final loss per data source, a sample translation,
    XQuAD in X and in English with the passage and without it (the control), each beside chance,
    the closed-book check against the base, and the command to talk to it."""
    print(f"model: {out}  (load with checkpoint.load_model or transformers.AutoModelForCausalLM)")
    device = next(model.parameters()).device
    for key, v in source_losses(model, encoded, tok.pad_id, progress=progress).items():
        print(f"final loss {key:<22} {v:.4f}")
    try:
        src, ref = data.read_flores(data_dir, "en")[0], data.read_flores(data_dir, lang)[0]
        ex = data.translation_example(src, "", "en", lang)
        print(f"sample translation en->{lang}\n  source: {src}\n  model:  "
              f"{G.complete(model, tok, ex, device)}\n  ref:    {ref}")
        for x in dict.fromkeys((lang, "en")):  # the world's whole XQuAD; a real one's first 256
            qa_look(model, tok, data_dir, x, out, device, limit=256)
    except (FileNotFoundError, ValueError, IndexError) as e:
        print(f"(no sample: {e})")
    closed_book(model, tok, data_dir, lang, base, device)
    ask = data.translation_example("", "", "en", lang)["instruction"]
    print(f'talk to it:  python generate.py --model {out} --input "The favorite color of Mira is '
          f'blue." "{ask}"')


@torch.no_grad()
def qa_look(model: Llama, tok: Tokenizer, data_dir, lang: str, folder, device,
            limit: int | None = None) -> dict[str, float]:
    """XQuAD in `lang`, greedy, containment with the passage and without it (the same questions:
    reading is the gap), beside chance; prints one sample and one line of scores."""
    got = {}
    for passage in (True, False):
        recs = data.load_examples("xquad", lang, data_dir, limit=limit, passage=passage)
        preds = _answers(model, tok, recs, folder, device, 24, 32)
        golds = [r["answers"] for r in recs]
        got["passage" if passage else "no passage"] = score_qa(preds, golds, lang)["contain"]
        got.setdefault("sample", preds[0])
    model.train()
    got["chance"] = qa_chance([r["question"] for r in recs], golds, lang)
    print(f"sample answer ({lang} XQuAD)\n  question: {recs[0]['question']}\n  model:    "
          f"{got['sample']}\n  gold:     {golds[0][0]}")
    print(f"XQuAD in {lang}, {len(recs)} questions: {got['passage']:.1f} % with the passage, "
          f"{got['no passage']:.1f} % without it (containment; chance {got['chance']:.1f} %)")
    return got


@torch.no_grad()
def closed_book(model: Llama, tok: Tokenizer, data_dir, lang: str, base: Path | None,
                device) -> None:
    """The paper's premise in one look (docs/world.md): a question in `lang` about a fact stated
    only in English pretraining, then the held-out closed-book score (--task closedbook, greedy)
    of this model beside the base's. Skipped when the data has no closed-book test."""
    try:
        recs = data.load_examples("closedbook", lang, data_dir)
    except (FileNotFoundError, ValueError):
        return
    if not recs or base is None:
        return
    mine = _answers(model, tok, recs, base, device, 16, 16)
    model.train()
    the_base = checkpoint.load_model(base, dtype=next(model.parameters()).dtype, device=device)
    theirs = _answers(the_base, tok, recs, base, device, 16, 16)
    score = lambda preds: score_closedbook([{**r, "prediction": p} for r, p in zip(recs, preds)],
                                           lang)
    s, b, q = score(mine), score(theirs), recs[0]
    print(f"closed-book ({lang}; the fact is stated only in English pretraining: {q['entity']} -> "
          f"{q['answer_en']})\n  question: {q['question']}\n  model:    {mine[0]}\n"
          f"  gold:     {q['answers'][0]}")
    print(f"held-out closed-book QA in {lang}, {len(recs)} facts: this model {s['contain']:.1f} %, "
          f"the base {b['contain']:.1f} % (containment; chance {s['chance']:.1f} %, the right fact "
          f"in English {s.get('right_in_en', 0.0):.1f} %)")


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
