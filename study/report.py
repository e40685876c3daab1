"""RESULTS.md from a study's results.json: the tables, and the paper's claims with their verdicts.

    python -m study.report --results runs/study/results.json      # rewrite runs/study/RESULTS.md
    python -m study.reproduce --report-only --out runs/study      # the same, from reproduce.py
    python -m study.report --results runs/q/results.json --report RESULTS-quick.md   # elsewhere
    python -m study.report --results runs/study/results.json --compare runs/study-2x/results.json

reproduce.py runs the study and records it in OUT/results.json; this file only reads that
record (and, when regenerating, stamps who regenerated it and when into both files), so a
report can be rewritten after a change here without training anything again. The noise terms
also read the predictions.jsonl files of the runs under the study folder, when they are there
(noise.py). --compare prints, instead, every gate's and claim's verdict in two studies side by
side (e.g. the default and one with twice the steps), with the verdict a claim made untestable by
a failed gate would have had without it.

What RESULTS.md holds (`write_report`), every cell from results.json, "—" where a run is missing:
  Headline        per language: XQuAD containment (with its chance level) and Flores en→X BLEU of
                  Alpaca, x-LLaMA, m-LLaMA
  Claims          one row per claim of the paper: its number, ours with the noise term, the
                  verdict, the likely reason (claims.py); then the gates (closed-book) and the
                  sanity checks (true by construction), each in its own table
  Setup           machine, torch, seeds, git commit, wall time per stage, the configuration and the
                  exact command of every stage, the runs that failed or were skipped
  QA              XQuAD (en + each language) and MLQA: containment, mean±std over seeds
                  (EM/F1), a chance row (noise.chance), † on a score within noise of chance
  Relative gain   per language (x − alpaca) / alpaca × 100 on XQuAD containment; points, not %,
                  where Alpaca is at chance
  Translation     Flores en→X and X→en: BLEU / chrF++
  Response lang.  language ID of the response: % of XQuAD responses detected as the question's
                  language
  Scaling         sweep points, both fitted laws with R², the budget allocation against the uniform
                  split (predicted and measured), a text chart per language
  Alignment       probe.py's pair−non-pair cosine gap (and retrieval) per layer, strongest layer

Two figures, also from results.json alone (`draw_figures`), go to figures/ beside the report, named
by its stem (RESULTS.md -> figures/RESULTS-headline.png and figures/RESULTS-alignment.png), and
RESULTS.md links them under the Headline table and the Alignment section. matplotlib is optional:
without it each figure is written as a text chart (figures/RESULTS-headline.txt, ...) and one line
says the PNGs were not drawn. The Markdown is the same either way, so a report regenerated from the
same results.json is the same text on every machine.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from study.claims import XLANGS, check_claims
from study.figures import CAPTIONS, draw_figures, figure_data
from study.noise import with_predictions
from study.tables import (CHANCE_NOTE, INTRO, METRIC_NOTES, claims_part, gates_part,
                          headline_table, scores_part, setup_section)
from cli import Parser, UsageError, add_config_flags, guard, opt
from cli import write_atomic


# ------------------------------------------------------- results.json (reproduce.py writes it)
# What the report and the claims read from results.json, so that a damaged or hand-made file is
# refused
# in one line naming the field, not met by a traceback half way through. A dict spec lists the keys
# a value may have (a trailing "!" marks a required one; "*" stands for every key), [spec] is a list
# of such items, a type or tuple of types is checked with isinstance. Other keys are not looked at.
NUM = (int, float)
RUN = {"group": str, "status": str, "kind": str, "langs": [str], "seed": int,
       "n_translation": (int, type(None)), "scores": {"*": (dict, type(None))},
       "wall_s": {"*": NUM}, "commands": [str], "error": str, "reason": str}
FIT = {"points": [{"lang!": str, "size!": NUM, "score!": NUM}],
       "fits": {"*": {"*": {"params!": {"alpha!": NUM, "beta!": NUM}}}},
       "allocation": {"*": int}, "uniform": {"*": int}, "predicted": {"*": {"*": NUM}},
       "minimum": NUM, "notes": [str], "charts": {"*": str}, "plots": {"*": str}}
RESULTS = {"runs!": {"*": RUN, "fit": FIT, "probe": {"probe": {"*": dict}}},
           "stages": {"*": {"wall_s": NUM, "command": str}},
           "config": {"langs": [str], "muit_langs": [str], "ablation_lang": str}, "machine": dict,
           "runtime": {"threads": int, "dtype": str, "why": str},
           "report_only": {"argv!": str, "time!": str, "git_commit!": str}}


class ResultsError(ValueError):
    """A results.json that is not what reproduce.py writes (one line, for the CLI)."""


def _check(value, spec, where: str) -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ResultsError(f"{where}: expected a JSON object, got {type(value).__name__}")
        for key, sub in spec.items():
            name = key.rstrip("!")
            if key == "*":
                for k, v in value.items():
                    _check(v, sub, f"{where}.{k}")
            elif name in value:
                _check(value[name], sub, f"{where}.{name}")
            elif key.endswith("!"):
                raise ResultsError(f"{where}: no {name!r} key")
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise ResultsError(f"{where}: expected a JSON list, got {type(value).__name__}")
        for i, v in enumerate(value):
            _check(v, spec[0], f"{where}[{i}]")
    elif not isinstance(value, spec) or (isinstance(value, bool) and spec in (int, NUM)):
        want = " or ".join(t.__name__ for t in (spec if isinstance(spec, tuple) else (spec,)))
        got = f"{type(value).__name__} {json.dumps(value)[:40]}"
        raise ResultsError(f"{where}: expected {want}, got {got}")


def load_results(out: Path) -> dict:
    """OUT/results.json checked against RESULTS; an empty record when there is none yet."""
    path = Path(out) / "results.json"
    if not path.exists():
        return {"runs": {}, "stages": {}}
    if not path.is_file():
        raise ResultsError(f"{path} is a folder; expected the results.json file reproduce.py "
                           "writes")
    try:
        results = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path} line {e.lineno} column {e.colno}: not valid JSON ({e.msg}); "
                           "remove it, or rerun reproduce.py with --overwrite") from None
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}: not UTF-8 (byte {e.start})") from None
    try:
        _check(results, RESULTS, "results")
        _check_fit(results["runs"].get("fit", {}), results.get("config", {}))
    except ResultsError as e:
        raise ResultsError(f"{path}: {e} (not a results.json as reproduce.py writes it)") from None
    results.setdefault("stages", {})
    return results


def _check_fit(fit: dict, config: dict) -> None:
    """What the fit run's parts must agree on, beyond their types (the report looks them up by
    language)."""
    where = "results.runs.fit"
    if "fits" in fit and not {l for l in fit["fits"]} <= {p["lang"] for p in fit.get("points", [])}:
        raise ResultsError(f"{where}: every language in 'fits' needs its 'points'")
    if set(fit.get("charts", {})) - set(fit.get("plots", {})):
        raise ResultsError(f"{where}: every language in 'charts' needs its entry in 'plots'")
    if "allocation" in fit:
        langs = set(fit["allocation"])
        for key in ("uniform", "predicted", "form", "minimum"):
            if key not in fit:
                raise ResultsError(f"{where}: has 'allocation' but no {key!r}")
        for name, d in (("uniform", fit["uniform"]),
                        ("predicted.uniform", fit["predicted"].get("uniform", {})),
                        ("predicted.allocation", fit["predicted"].get("allocation", {})),
                        ("config.muit_langs", dict.fromkeys(config.get("muit_langs", langs)))):
            if set(d) != langs:
                raise ResultsError(f"{where}: {name} covers {sorted(d)}, "
                                   f"expected the allocation's {sorted(langs)}")


def save_results(out: Path, results: dict) -> None:
    write_atomic(out / "results.json",
                 json.dumps(results, indent=1, ensure_ascii=False, default=str))


def git_commit() -> str:
    """The checked-out commit, with a note when tracked files differ from it ("" without git)."""
    try:
        git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True,  # noqa: E731
                                        cwd=Path(__file__).parent, timeout=10).stdout.strip()
        dirty = " + uncommitted changes" if git("status", "--porcelain", "-uno") else ""
        return git("rev-parse", "--short", "HEAD") + dirty
    except (OSError, subprocess.SubprocessError):
        return ""


# ----------------------------------------------------------------------------- RESULTS.md

def write_report(results: dict, name: str = "RESULTS") -> str:
    """The Markdown of the report saved as <name>.md; its figure links point at
    figures/<name>-*.png beside it."""
    figs = figure_data(results)

    def link(kind: str) -> list[str]:
        return [f"![{CAPTIONS[kind]}](figures/{name}-{kind}.png)", ""] if kind in figs else []
    langs = list(results.get("config", {}).get("langs", XLANGS))
    checked = check_claims(results)
    parts = [
        "# Results: the paper in miniature", "", INTRO, "", *gates_part(results, checked),
        "## Headline", "", headline_table(results), "", CHANCE_NOTE, "", *link("headline"),
        *claims_part(results, checked),
        "## Setup", "", setup_section(results), "",
        "## Metrics", "", *METRIC_NOTES, "",
        *scores_part(results, langs, link),
    ]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- regeneration

# the bounds of realmodel.py's section (realmodel.BEGIN, END)
KEEP = ("<!-- real-model -->", "<!-- /real-model -->")


def save_report(results: dict, report: Path, study: Path | None = None) -> None:
    """REPORT (e.g. OUT/RESULTS.md) and its figures, from results and the predictions.jsonl
    files under the `study` folder (default: the report's own folder), which give the noise
    terms their per-item scores."""
    draw_figures(results, Path(report))
    results = with_predictions(results, Path(study) if study is not None else Path(report).parent)
    text = write_report(results, Path(report).stem)
    old = Path(report).read_text(encoding="utf-8") if Path(report).is_file() else ""
    if KEEP[0] in old and KEEP[1] in old:  # realmodel.py's section is its own: kept
        section = old[old.index(KEEP[0]):old.index(KEEP[1]) + len(KEEP[1])]
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    write_atomic(report, text)


def regenerate(out: Path, argv: str, report: Path | None = None) -> Path:
    """Rewrite OUT/RESULTS.md (or `report`) from OUT/results.json, recording `argv`, the time
    and the commit in both."""
    out = Path(out)
    report = Path(report) if report else out / "RESULTS.md"
    results = load_results(out)
    if not results["runs"]:
        raise ValueError(f"no results in {out / 'results.json'}")
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["report_only"] = {"argv": argv, "time": now,
                              "git_commit": git_commit()}
    save_results(out, results)
    save_report(results, report, out)
    return report


def compare(a: dict, b: dict, names=("A", "B")) -> str:
    """A Markdown table: each gate's and claim's verdict in studies a and b (results as
    load_results returns them, with their predictions), and whether it changed."""
    def verdicts(results):
        raw = {c.claim: c.verdict for c in check_claims(results, gated=False)}
        return {c.claim: (c.verdict if c.verdict != "untestable" else
                          f"untestable ({raw[c.claim]} ungated)") for c in check_claims(results)}
    va, vb = verdicts(a), verdicts(b)
    rows = [f"| {k} | {va.get(k, '—')} | {vb.get(k, '—')} | "
            f"{'same' if va.get(k) == vb.get(k) else '**changed**'} |"
            for k in list(va) + [k for k in vb if k not in va]]
    return "\n".join([f"| gate or claim | {names[0]} | {names[1]} | |", "|---|---|---|---|", *rows])


@dataclass
class ReportConfig:
    results: str | None = opt(None, "a results.json written by reproduce.py, e.g. "
                                    "runs/study/results.json (default: none, the flag is required)")
    report: str | None = opt(None, "where to write the Markdown (default: RESULTS.md beside "
                                   "results.json); its figures go to figures/<its name>-*.png "
                                   "beside it")
    compare: str | None = opt(None, "a second results.json: print the two studies' verdicts side "
                                    "by side instead of writing a report")


def main(argv=None) -> int:
    """The command line; exit 0, 2 (a bad flag or results.json) or 1 (the disk)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="python -m study.report", description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog=__doc__.split("\n\n", 1)[1])
    cfg = ReportConfig(**vars(add_config_flags(parser, ReportConfig).parse_args(argv)))

    def body():
        if cfg.results is None or Path(cfg.results).name != "results.json":
            raise UsageError(f"--results: expected a path to results.json, got {cfg.results}")
        if cfg.compare is not None:
            other = Path(cfg.compare)
            if other.name != "results.json":
                raise UsageError(f"--compare: expected a path to results.json, got {other}")
            for flag, p in (("--results", Path(cfg.results)), ("--compare", other)):
                if not p.is_file():
                    raise UsageError(f"{flag}: {p} not found (a results.json reproduce.py wrote)")
            try:
                studies = [with_predictions(load_results(p.parent), p.parent)
                           for p in (Path(cfg.results), other)]
            except ValueError as e:
                raise UsageError(f"--compare: {e}") from None
            print(compare(*studies, names=(cfg.results, cfg.compare)))
            return
        report = cfg.report
        if report is not None and (Path(report).suffix != ".md" or Path(report).is_dir()):
            raise UsageError(f"--report: expected a path to a .md file, got {report}")
        try:
            written = regenerate(Path(cfg.results).parent,
                                 shlex.join(["python", "-m", "study.report", *argv]), report)
        except ValueError as e:  # ResultsError: names the file and the field
            raise UsageError(f"--results: {e}") from None
        print(f"wrote {written}")
    return guard("python -m study.report", body)


if __name__ == "__main__":
    sys.exit(main())
