"""plot.py: the loss-per-source picture from a run's metrics.jsonl (PNG, or the text fallback).

    python -m pytest -q tests/test_plot.py
"""
import json

import pytest

import plot
from conftest import hide_matplotlib


def _run(tmp_path, rows):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


ROWS = [dict(step=s, loss=3.0 / s, source_loss={"alpaca/en": 3.2 / s, "translation/de": 2.0 / s})
        for s in range(10, 110, 10)]


def test_png_from_metrics(tmp_path):
    pytest.importorskip("matplotlib", reason="the PNG needs matplotlib; the text fallback is tested below")
    out = plot.plot_run(_run(tmp_path, ROWS))
    assert out.name == "loss.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.parent.glob(".loss.png.tmp*"))


def test_text_fallback_without_matplotlib(tmp_path, monkeypatch):
    hide_matplotlib(monkeypatch)
    out = plot.plot_run(_run(tmp_path, ROWS))
    text = out.read_text()
    assert out.name == "loss.txt" and "alpaca/en" in text and "translation/de" in text
    assert "0.0300" in text and "0.3200" in text      # step 100 'all' and step 10 alpaca/en


def test_curves_per_source(tmp_path):
    curves = plot.read_curves(_run(tmp_path, ROWS + [dict(step=110, loss=float("nan"))]))
    assert set(curves) == {"all", "alpaca/en", "translation/de"}
    assert curves["translation/de"][0] == (10, 0.2) and len(curves["all"]) == 10   # NaN dropped


def test_bad_input_one_line(tmp_path, capsys):
    assert plot.main([str(tmp_path)]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err
    run = _run(tmp_path, ROWS)
    with open(run / "metrics.jsonl", "a") as f:
        f.write("{\"step\": 5\n")
    assert plot.main([str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "metrics.jsonl:11" in err[0]
