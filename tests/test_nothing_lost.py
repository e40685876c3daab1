"""Nothing lost, nothing reused silently: what a user's folder holds survives a wrong command.

Each case failed on the code before it was fixed (a world rebuilt over a user's files, a study
--overwrite deleting folders it never made, a stale world or base reused, --langs de,de doubling
a language's data).

    python -m pytest -q tests/test_nothing_lost.py
"""
import dataclasses
import json

import pytest

import checkpoint
import train as T
import world as W
from cli import UsageError
from study import reproduce


def test_a_users_folder_at_the_world_path_is_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "runs" / "world" / "notes.md"
    mine.parent.mkdir(parents=True)
    mine.write_text("my notes")
    assert T.main(["--lang", "de", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs/world" in err[0] and "WORLD.json" in err[0]
    assert mine.read_text() == "my notes"


def test_a_world_made_with_other_settings_is_not_reused(tmp_path):
    small = dict(pretrain_chars=20_000, alpaca=20, parallel=20, xquad_passages=2, mlqa_passages=2,
                 flores=4)
    W.ensure(tmp_path / "w", **small)
    assert W.ensure(tmp_path / "w", **small) == tmp_path / "w"          # the same settings: reused
    with pytest.raises(UsageError, match="alpaca 20 -> 30"):
        W.ensure(tmp_path / "w", **{**small, "alpaca": 30})


def test_a_finished_run_made_with_other_flags_is_not_reused(tmp_path):
    out = tmp_path / "base"
    out.mkdir()
    cfg = T.TrainConfig(recipe="pretrain", out=str(out), max_steps=10)
    (out / "train_config.json").write_text(json.dumps({**dataclasses.asdict(cfg),
                                                       "status": "finished"}))
    checkpoint.check_same_run(out, cfg)                                 # the same flags: fine
    with pytest.raises(UsageError, match="--max-steps 10 -> 20"):
        checkpoint.check_same_run(out, dataclasses.replace(cfg, max_steps=20))
    # flags that do not change the run (threads, logging) may differ
    checkpoint.check_same_run(out, dataclasses.replace(cfg, threads=1, log_every=5))


def test_study_overwrite_never_deletes_a_folder_that_holds_no_study(tmp_path):
    out = tmp_path / "runs"
    for sub in ("base", "world", "models"):
        (out / sub).mkdir(parents=True)
        (out / sub / "keep.txt").write_text(sub)
    cfg = reproduce.preset(True, out=str(out), overwrite=True)
    with pytest.raises(ValueError, match="no study"):
        reproduce.run_study(cfg)
    assert all((out / sub / "keep.txt").read_text() == sub for sub in ("base", "world", "models"))


def test_a_language_given_twice_is_refused(tmp_path):
    with pytest.raises(UsageError, match="--langs de,de"):
        T.validate(T.TrainConfig(recipe="muit", langs="de,de"))


def test_two_runs_cannot_share_an_out(tmp_path, capsys):
    import cli
    out = tmp_path / "run"
    with cli.locked(out, lock=tmp_path / ".run.lock"):   # a first run holds it
        code = T.main(["--out", str(out), "--data", str(tmp_path / "nowhere"), "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "another run is writing here" in err[0]
