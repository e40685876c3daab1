"""files.py — writing a file so that no reader ever sees half of it.

Every file this project writes (configs, weights, metrics, reports, pictures) goes through
`atomic_path`: the writer fills a temp file beside the target, then one `os.replace` puts it in
place. A crash, a full disk or Ctrl-C leaves the old file (or none), never a truncated one, and the
temp file is removed on the way out.

    from files import atomic_path, write_atomic, write_json
    write_atomic("runs/x/notes.txt", text)
    write_json("runs/x/config.json", {"lr": 1e-3})
    with atomic_path("runs/x/model.pt") as tmp:
        torch.save(state, tmp)
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from cli import UsageError


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read, then put back: a plain open() gives a new file the mode 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temp path beside `path`; rename it onto `path` when the block succeeds, remove it
    when the block raises (the error is re-raised). Missing parent folders are created; the file
    gets the mode a plain open() would give it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        # some writers (safetensors) create 0600 files; a model is for others to read too
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful rename


def write_atomic(path, text: str) -> None:
    """Write UTF-8 text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def copy_atomic(src, dst) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def write_json(path, obj) -> None:
    """`obj` as indented UTF-8 JSON (non-ASCII kept as is), written atomically."""
    write_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def check_out(path, flag: str = "--out", inputs=()) -> bool:
    """Refuse, before any work, an output path that cannot take a file (a folder, or a file where
    a parent folder should be) or that is one of the (flag, path) `inputs` the command reads.
    True when the file exists and will be replaced, so the caller can say so."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; expected the path of a file to write")
    blocker = next((d for d in path.parents if d.exists() and not d.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"{flag} {path}: {blocker} is a file, not a folder")
    for name, src in inputs:
        if src is not None and Path(src).resolve() == path.resolve():
            raise UsageError(f"{flag} {path} is the {name} file this command reads; write the "
                             "result to another path")
    return path.exists()
