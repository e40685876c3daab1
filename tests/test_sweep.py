"""sweep.py: the plumbing from sizes to runs, scores, points and fits (training and evaluation faked)."""
import json
from pathlib import Path

import pytest

import evaluate
import checkpoint
import train
import scaling
from study.sweep import main


def power_law(x, alpha, beta):
    return 100.0 - alpha * x ** (-beta)


def _err(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------ sweep plumbing (train/evaluate faked)

def test_sweep_plumbing(tmp_path, monkeypatch, capsys):
    """The sweep builds one CoIT TrainConfig per size, evaluates Flores en->X, writes points,
    fits and a chart; a second sweep keeps the earlier points. Real training is too slow here."""
    calls = []

    def fake_train(cfg):
        calls.append(cfg)
        return tmp_path / "ckpt" / f"{cfg.n_translation}"

    def fake_evaluate(model_dir, task, lang, data_dir, direction="en-X", limit=None, **kw):
        assert (task, direction, lang) == ("flores", "en-X", "de")
        return {"bleu": float(power_law(int(model_dir.name), 300.0, 0.35)), "n": 5}

    monkeypatch.setattr(train, "run", fake_train)
    monkeypatch.setattr(evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(checkpoint, "run_status", lambda out: "unfinished" if out.name == "de-500" else "empty")
    out = tmp_path / "sweep"
    assert main(["--lang", "de", "--sizes", "250,500,1000", "--data", str(tmp_path / "w"),
                 "--out", str(out), "--max-steps", "7"]) == 0
    assert [c.n_translation for c in calls] == [250, 500, 1000]
    assert all(c.recipe == "coit" and c.lang == "de" and c.reuse and c.max_steps == 7 for c in calls)
    assert all(c.threads == 0 and c.dtype == "auto" for c in calls)   # measured by train.py (device.py)
    assert calls[0].out == str(out / "de-250")
    assert [c.resume for c in calls] == [False, True, False]   # a killed run continues
    assert main(["--lang", "de", "--sizes", "2000,4000,8000", "--data", str(tmp_path / "w"),
                 "--out", str(out)]) == 0
    pts = scaling.read_points(out / "points.csv")
    assert sorted(pts["de"][0]) == [250, 500, 1000, 2000, 4000, 8000]
    fits = json.loads((out / "FITS.json").read_text())
    assert fits["de"]["form"] == "power" and fits["de"]["params"]["beta"] == pytest.approx(0.35, rel=1e-4)
    assert (out / "scaling-de.png").exists() or (out / "scaling-de.txt").exists()
    assert "size (log scale)" in capsys.readouterr().out
    assert main(["--sizes", "250,x"]) == 2
    calls.clear()
    assert main(["--lang", "de", "--sizes", "1,2,3", "--data", str(tmp_path / "w"), "--out", str(out),
                 "--threads", "3", "--dtype", "bf16"]) == 0
    assert {(c.threads, c.dtype) for c in calls} == {(3, "bf16")}


def test_sweep_refuses_bad_flags_before_the_first_training(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(train, "run", lambda cfg: calls.append(cfg) or Path(cfg.out))
    base = ["--lang", "de", "--sizes", "250,500,1000", "--data", str(tmp_path / "w"), "--out", str(tmp_path / "s")]
    assert "--metric 'bogus': expected one of bleu, chrf++, spbleu" in _err(capsys, base + ["--metric", "bogus"])
    assert "--dtype" in _err(capsys, base + ["--dtype", "half"])
    assert "--threads" in _err(capsys, base + ["--threads", "-1"])
    assert "--lang" in _err(capsys, base[:1] + ["xx"] + base[2:])
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "FITS.json").write_text("{oops")
    assert "FITS.json line 1 column 2" in _err(capsys, base)
    assert calls == []
