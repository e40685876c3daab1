"""claims.py and report.py (with tables.py, figures.py): the verdict rules on numbers chosen by the test, and regenerating RESULTS.md from results.json.

The claims read end to end from a (faked) study are checked in test_reproduce.py.
"""
import json
import re
import types

import pytest

from study import claims as C
from study import figures as Figs
from study import report as Rep
from conftest import hide_matplotlib


def test_report_tables_show_chance_noise_and_sanity_checks_apart(tmp_path):
    from test_claims import Study, bools
    s = Study(tmp_path, langs=("ar",), muit=("ar",))
    s.qa("alpaca-s0", "alpaca", "ar", bools(12, 200), chance=6.0).qa("x-s0", "xllama", "ar", bools(60, 200), chance=6.0)
    s.qa("m", "mllama-uniform", "ar", bools(58, 200), chance=6.0)
    s.res["config"]["eval_limit"] = 200
    (tmp_path / "results.json").write_text(json.dumps(s.res))
    Rep.save_report(Rep.load_results(tmp_path), tmp_path / "RESULTS.md")      # the study's own folder: its predictions
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| lang | XQuAD contain: Alpaca | x-LLaMA | m-LLaMA | chance |" in text
    assert "| ar | 6.0 † | 30.0 | 29.0 | 6.0 |" in text                        # 12 of 200 is within noise of 6 %
    assert "| chance (answer class) | — | 6.0 | 6.0 (1 langs) |" in text
    assert "| x-LLaMA (its own language) | +24.0 pts | +24.0 pts |" in text      # Alpaca at chance: points, not +400%
    assert "+400" not in text and "paired bootstrap over 200 items" in text
    claims_table = text.split("## Claims of the paper, checked")[1].split("### Sanity checks")[0]
    assert "never sees X outputs" not in claims_table                          # sanity rows live apart
    assert "### Sanity checks (true by construction" in text
    # the gates come first, before any number they qualify; none measured here
    assert text.index("## Gates") < text.index("## Headline") and "Not every gate was measured." in text
    assert "## Response language ID (% of XQuAD responses detected as the question's language)" in text
    assert "instruction following (" not in text


def _results():
    run = lambda g, l, v, seed=0: {"group": g, "status": "done", "langs": [l], "seed": seed,  # noqa: E731
                                   "scores": {f"xquad:{l}": {"contain": v, "n": 120}}}
    return {"config": {"langs": ["ar"], "muit_langs": ["ar"]}, "stages": {},
            "runs": {"a": run("alpaca", "ar", 10.0), "x": run("xllama", "ar", 30.0), "m": run("mllama-uniform", "ar", 29.0)}}


def test_regenerate_rewrites_the_report_and_records_it(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_results()))
    first = Rep.write_report(Rep.load_results(tmp_path))
    assert Rep.main(["--results", str(tmp_path / "results.json")]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    stamp = json.loads((tmp_path / "results.json").read_text())["report_only"]
    assert stamp["argv"] == f"python -m study.report --results {tmp_path / 'results.json'}" and "UTC" in stamp["time"]
    assert "This text was regenerated" in text and "This text was regenerated" not in first
    # apart from the sentence that records the regeneration, the report is the one the study wrote
    strip = lambda t: [line.split(" This text was regenerated")[0] for line in t.splitlines()]  # noqa: E731
    assert strip(text) == strip(first)
    assert "| x-LLaMA beats English-only Alpaca on non-English QA (XQuAD) |" in text and "**reproduces**" in text


def test_regenerate_refuses_a_missing_or_misnamed_results_file(tmp_path, capsys):
    assert Rep.main(["--results", str(tmp_path / "results.json")]) == 2
    assert "no results in" in capsys.readouterr().err
    assert Rep.main(["--results", str(tmp_path / "fits.json")]) == 2
    assert "expected a path to results.json" in capsys.readouterr().err


@pytest.mark.parametrize("content,needle", [
    ("[1, 2]", "results: expected a JSON object, got list"),
    ('{"stages": {}}', "results: no 'runs' key"),
    ('{"runs": {"a": []}}', "results.runs.a: expected a JSON object, got list"),
    ('{"runs": {"a": {"group": "alpaca", "scores": {"xquad:ar": [30]}}}}', "results.runs.a.scores.xquad:ar: expected dict"),
    ('{"runs": {"a": {"langs": "ar"}}}', "results.runs.a.langs: expected a JSON list, got str"),
    ('{"runs": {"a": {"wall_s": {"train": "slow"}}}}', "results.runs.a.wall_s.train: expected int or float, got str"),
    ('{"runs": {"fit": {"fits": {"ar": {}}, "points": [{"lang": "ar", "size": "300", "score": 1.0}]}}}',
     "results.runs.fit.points[0].size: expected int or float, got str"),
    ('{"runs": {"fit": {"fits": {"ar": {"power": {"params": {"alpha": 1}}}}, "points": []}}}',
     "results.runs.fit.fits.ar.power.params: no 'beta' key"),
    ('{"runs": {"fit": {"fits": {"ar": {}}, "points": []}}}', "every language in 'fits' needs its 'points'"),
    ('{"runs": {"fit": {"allocation": {"ar": 300}, "uniform": {"ar": 300}, "form": "power", "minimum": 100,'
     ' "predicted": {"uniform": {"ar": 1.0}, "allocation": {"zh": 1.0}}}}}', "predicted.allocation covers ['zh']"),
    ('{"runs": {}, "config": {"langs": "ar,zh"}}', "results.config.langs: expected a JSON list, got str"),
    ('{"runs": {"a": {}},\n "stages": [}', "line 2 column 13: not valid JSON"),
])
def test_wrong_shape_results_one_line_exit_2(tmp_path, capsys, content, needle):
    path = tmp_path / "results.json"
    path.write_text(content)
    assert Rep.main(["--results", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"python -m study.report: error: --results: {path}") and needle in err[0], err
    assert path.read_text() == content and not (tmp_path / "RESULTS.md").exists()


def test_results_with_a_byte_order_mark_or_a_folder(tmp_path, capsys):
    (tmp_path / "results.json").write_text("\ufeff" + json.dumps(_results()), encoding="utf-8")
    assert Rep.main(["--results", str(tmp_path / "results.json")]) == 0
    folder = tmp_path / "d" / "results.json"
    folder.mkdir(parents=True)
    assert Rep.main(["--results", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a folder" in err[0], err


# ----------------------------------------------------------------------------- figures beside the report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study_json(tmp_path_factory):
    """results.json of a fake --quick study (test_reproduce's Fakes: ar and zh, 2 seeds, 5 probed models)."""
    from study import reproduce as R
    from test_reproduce import Fakes, tiny_cfg
    tmp = tmp_path_factory.mktemp("fake")
    with pytest.MonkeyPatch.context() as mp:
        Fakes().install(mp)
        R.run_study(tiny_cfg(tmp))
    return (tmp / "study" / "results.json").read_text()


@pytest.fixture
def study(tmp_path, study_json, monkeypatch):
    (tmp_path / "results.json").write_text(study_json)
    # the regeneration stamp is the only text that may change between two runs: fixed here
    monkeypatch.setattr(Rep, "time", types.SimpleNamespace(strftime=lambda *a: "2030-01-01 UTC", gmtime=lambda: None))
    monkeypatch.setattr(Rep, "git_commit", lambda: "abc1234")
    return tmp_path


def _links(report):
    """The image links of a report, resolved against its folder."""
    return [report.parent / p for p in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text())]


def test_pngs_linked_under_headline_and_alignment(study):
    pytest.importorskip("matplotlib", reason="the PNGs need matplotlib; the text fallback is tested below")
    assert Rep.main(["--results", str(study / "results.json")]) == 0
    report = study / "RESULTS.md"
    figs = study / "figures"
    assert _links(report) == [figs / "RESULTS-headline.png", figs / "RESULTS-alignment.png"]
    for png in _links(report):
        assert png.read_bytes()[:8] == PNG
    assert sorted(p.name for p in figs.iterdir()) == ["RESULTS-alignment.png", "RESULTS-headline.png"]  # no temp files
    text = report.read_text()   # each link right under its section's table
    assert text.index("## Headline") < text.index("RESULTS-headline.png") < text.index("## Claims")
    assert text.index("## Layer-wise alignment") < text.index("RESULTS-alignment.png") < text.index("## In-context copying")


def test_text_charts_without_matplotlib(study, monkeypatch, capsys):
    hide_matplotlib(monkeypatch)
    assert Rep.main(["--results", str(study / "results.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len([l for l in out if "matplotlib is not installed" in l]) == 1 and "RESULTS-headline.txt" in out[0]
    links = _links(study / "RESULTS.md")
    assert [p.name for p in links] == ["RESULTS-headline.png", "RESULTS-alignment.png"]   # the same links, always
    assert not any(p.exists() for p in links)
    head, align = (p.with_suffix(".txt").read_text() for p in links)
    # Fakes: Alpaca's containment is 30 + seed over the study's seeds; m-LLaMA has one seed; gap peaks at 0.3 (0.1 for base)
    seeds = json.loads((study / "results.json").read_text())["config"]["seeds"]
    assert "XQuAD containment" in head and "Flores en→X BLEU" in head
    assert "Alpaca   |" in head and f"| {C.fmt([30.0 + s for s in range(seeds)])}" in head and "| 40.0\n" in head
    assert "mllama-uniform" in align and "layer 2  |" in align and "| 0.3000" in align and "| 0.1000" in align


def test_markdown_is_the_same_with_and_without_matplotlib(study, monkeypatch):
    pytest.importorskip("matplotlib", reason="compares the report drawn with matplotlib against the fallback")
    results, report, figs = str(study / "results.json"), study / "RESULTS.md", study / "figures"
    with monkeypatch.context() as m:
        hide_matplotlib(m)
        Rep.main(["--results", results])
    without = report.read_bytes()
    Rep.main(["--results", results])
    assert report.read_bytes() == without
    assert sorted(p.name for p in figs.iterdir()) == ["RESULTS-alignment.png", "RESULTS-headline.png"]  # stale .txt gone
    png = (figs / "RESULTS-headline.png").read_bytes()
    Rep.main(["--results", results])
    assert (figs / "RESULTS-headline.png").read_bytes() == png    # same matplotlib: same bytes (no version stamp)


def test_two_reports_in_one_folder_keep_their_figures(study, monkeypatch):
    hide_matplotlib(monkeypatch)    # fast; the file names are the same as the PNGs'
    Rep.main(["--results", str(study / "results.json")])
    quick = study / "RESULTS-quick.md"
    Rep.main(["--results", str(study / "results.json"), "--report", str(quick)])
    assert [p.name for p in _links(quick)] == ["RESULTS-quick-headline.png", "RESULTS-quick-alignment.png"]
    assert sorted(p.name for p in (study / "figures").iterdir()) == [
        "RESULTS-alignment.txt", "RESULTS-headline.txt", "RESULTS-quick-alignment.txt", "RESULTS-quick-headline.txt"]
    # a study without a probe: no alignment link, and the old alignment chart of that report is gone
    (study / "results.json").write_text(json.dumps(_results()))
    Rep.main(["--results", str(study / "results.json")])
    assert [p.name for p in _links(study / "RESULTS.md")] == ["RESULTS-headline.png"]
    assert not (study / "figures" / "RESULTS-alignment.txt").exists()
    assert (study / "figures" / "RESULTS-quick-alignment.txt").exists()


def test_a_failed_png_write_leaves_no_temp_file(tmp_path):
    class Fig:
        def savefig(self, path, **kw):
            path.write_bytes(PNG)            # half a picture, then the disk is full
            raise OSError("No space left on device")
    closed = []
    with pytest.raises(OSError, match="No space"):
        Figs._save_png(types.SimpleNamespace(close=closed.append), Fig(), tmp_path / "figures" / "RESULTS-headline.png")
    assert list((tmp_path / "figures").iterdir()) == [] and len(closed) == 1


def test_report_flag_must_name_a_markdown_file(study, capsys):
    assert Rep.main(["--results", str(study / "results.json"), "--report", str(study / "RESULTS.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--report: expected a path to a .md file" in err[0], err


def test_compare_shows_two_studies_verdicts_and_what_a_failed_gate_hid(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "results.json").write_text(json.dumps(_results()))
    worse = _results()
    worse["runs"]["x"]["scores"]["xquad:ar"]["contain"] = 10.0                 # x-LLaMA now level with Alpaca
    worse["runs"]["a"]["scores"]["xquad:en"] = {"contain": 40.0, "n": 120}      # and the read gate fails
    (b / "results.json").write_text(json.dumps(worse))
    assert Rep.main(["--results", str(a / "results.json"), "--compare", str(b / "results.json")]) == 0
    rows = {r.split(" | ")[0].lstrip("| "): r for r in capsys.readouterr().out.splitlines()}
    qa = rows["x-LLaMA beats English-only Alpaca on non-English QA (XQuAD)"]
    assert "| reproduces | untestable (inconclusive ungated) | **changed** |" in qa, qa
    assert "| not measured | fails | **changed** |" in rows["Alpaca reads: English XQuAD containment with the passage"]
    assert not (a / "RESULTS.md").exists()                                    # it prints, it writes nothing
    assert Rep.main(["--results", str(a / "results.json"), "--compare", str(tmp_path / "c" / "results.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--compare" in err[0] and "not found" in err[0], err
