"""sweep.py: the plumbing from sizes to runs, scores, points and fits (training and evaluation faked)."""
import json
from pathlib import Path

import pytest

import evaluate
import checkpoint
import train
import scaling
import study.sweep as SW
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
    monkeypatch.setattr(SW, "pairs_available", lambda data, lang: 10 ** 6)  # no data folder here
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
    monkeypatch.setattr(SW, "pairs_available", lambda data, lang: 10 ** 6)
    base = ["--lang", "de", "--sizes", "250,500,1000", "--data", str(tmp_path / "w"), "--out", str(tmp_path / "s")]
    assert "--metric 'bogus': expected one of bleu, chrf++, spbleu" in _err(capsys, base + ["--metric", "bogus"])
    assert "--dtype" in _err(capsys, base + ["--dtype", "half"])
    assert "--threads" in _err(capsys, base + ["--threads", "-1"])
    assert "--lang" in _err(capsys, base[:1] + ["xx"] + base[2:])
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "FITS.json").write_text("{oops")
    assert "FITS.json line 1 column 2" in _err(capsys, base)
    assert calls == []


def _parallel(folder: Path, lang: str, n: int) -> Path:
    """A data folder with n en-X pairs and one Alpaca example per language."""
    d = folder / "parallel" / f"en-{lang}"
    d.mkdir(parents=True)
    (d / "p.eng").write_text("".join(f"sentence {i}\n" for i in range(n)))
    (d / f"p.{lang}").write_text("".join(f"Satz {i}\n" for i in range(n)))
    (folder / "alpaca").mkdir()
    for l in ("en", lang):
        (folder / "alpaca" / f"alpaca_{l}.json").write_text(
            json.dumps([{"instruction": "Say hi.", "input": "", "output": "hi"}]))
    return folder


def test_sizes_and_limit_are_refused_before_any_training(tmp_path, monkeypatch, capsys):
    """Before: --limit 0 and sizes above the available pairs were found only after models had
    trained (issue 27)."""
    calls = []
    monkeypatch.setattr(train, "run", lambda cfg: calls.append(cfg) or Path(cfg.out))
    data = _parallel(tmp_path / "w", "de", 40)
    base = ["--lang", "de", "--data", str(data), "--out", str(tmp_path / "s")]
    err = _err(capsys, base + ["--sizes", "10,20,50"])
    assert "--sizes 10,20,50: 50 en-de pairs asked for" in err and "has 40" in err
    assert "--limit 0: expected a value in [1, inf)" in _err(capsys, base + ["--sizes", "10,20,30",
                                                                           "--limit", "0"])
    assert "distinct" in _err(capsys, base + ["--sizes", "10,10,20"])
    assert calls == []


def test_ctrl_c_stops_at_once_with_the_command_that_continues(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the second run: exit 130, the first run's point kept, the same command named."""
    data = _parallel(tmp_path / "w", "de", 40)

    def fake_train(cfg):
        if cfg.n_translation == 20:
            raise KeyboardInterrupt
        return Path(cfg.out)
    monkeypatch.setattr(train, "run", fake_train)
    monkeypatch.setattr(evaluate, "evaluate", lambda *a, **k: {"bleu": 1.0})
    argv = ["--lang", "de", "--sizes", "10,20,30", "--data", str(data),
            "--out", str(tmp_path / "s")]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].endswith("continue with: python -m study.sweep " + " ".join(argv))
    assert scaling.read_points(tmp_path / "s" / "points.csv", min_points=1)["de"][0] == [10.0]
    assert not (tmp_path / "s" / ".lock").exists()   # the lock goes with the run


def test_a_second_sweep_into_the_same_out_is_refused(tmp_path, monkeypatch, capsys):
    import cli
    data = _parallel(tmp_path / "w", "de", 40)
    monkeypatch.setattr(train, "run", lambda cfg: pytest.fail("trained while another sweep writes"))
    argv = ["--lang", "de", "--sizes", "10,20,30", "--data", str(data),
            "--out", str(tmp_path / "s")]
    with cli.locked(tmp_path / "s"):
        assert "another run is writing here" in _err(capsys, argv)
