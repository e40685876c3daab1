"""cli.py's files: a write either lands whole or leaves the old file, and never a temp file behind."""
import os
from pathlib import Path

import pytest

import cli as F


def test_write_atomic_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "scores.json"
    F.write_atomic(target, "old\n")
    real = Path.write_text

    def disk_full(self, text, *a, **k):  # half the text reaches the disk, then the disk is full
        real(self, text[:len(text) // 2], *a, **k)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space left"):
        F.write_atomic(target, "new content\n" * 100)
    monkeypatch.undo()
    assert target.read_text() == "old\n" and [f.name for f in tmp_path.iterdir()] == ["scores.json"]

    def copy_fails(src, dst):
        real(Path(dst), "half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(F.shutil, "copyfile", copy_fails)  # Tokenizer.save's copy: same rule
    with pytest.raises(OSError, match="No space left"):
        F.copy_atomic(target, tmp_path / "copy.json")
    assert [f.name for f in tmp_path.iterdir()] == ["scores.json"]


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "new" / "scores.json"
    F.write_atomic(target, "first\n")
    F.write_atomic(target, "second\n")
    assert target.read_text(encoding="utf-8") == "second\n"
    assert [f.name for f in target.parent.iterdir()] == ["scores.json"]


def test_atomic_path_keeps_old_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "state.pt"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with F.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and [f.name for f in tmp_path.iterdir()] == ["state.pt"]


def test_a_file_written_by_a_0600_writer_gets_the_usual_mode(tmp_path):
    target = tmp_path / "model.safetensors"
    with F.atomic_path(target) as tmp:
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors does
        os.close(fd)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
