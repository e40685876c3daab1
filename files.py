"""files.py — writing a file so that no reader ever sees half of it; reading a user's file so that
whatever is wrong with it is one line.

Every file this project writes (configs, weights, metrics, reports, pictures) goes through
`atomic_path`: the writer fills a temp file beside the target, then one `os.replace` puts it in
place. A crash, a full disk or Ctrl-C leaves the old file (or none), never a truncated one, and the
temp file is removed on the way out.

    from files import atomic_path, write_atomic, write_json
    write_atomic("runs/x/notes.txt", text)
    write_json("runs/x/config.json", {"lr": 1e-3})
    with atomic_path("runs/x/model.pt") as tmp:
        torch.save(state, tmp)
    with locked("runs/x"):               # a second run into runs/x is refused while this one writes
        ...

Reading: every file a user hands in goes through one reader per format, `read_text`, `read_json`,
`read_safetensors` (plus tokenizer.py for tokenizer files, study/convert.py for GGUF). A missing
file raises FileNotFoundError; anything else wrong with it (a folder, empty, not UTF-8, broken
syntax, truncated) raises UsageError; both name the file and what was expected (exit 2).

    cfg = read_json("runs/x/adapter_config.json", "a peft adapter config", dict)
"""
from __future__ import annotations

import contextlib
import fcntl
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


# ----------------------------------------------------------------------------- reading

def must_be_file(path, what: str) -> Path:
    """FileNotFoundError if `path` is missing, UsageError if it is a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found (expected {what})")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder (expected {what})")
    return path


def read_bytes(path, what: str) -> bytes:
    """A file's bytes; FileNotFoundError if missing, UsageError if a folder or unreadable."""
    path = must_be_file(path, what)
    try:
        return path.read_bytes()
    except OSError as e:  # permission denied, a special file
        raise UsageError(f"{path}: cannot be read ({e.strerror}; expected {what})") from None


def read_text(path, what: str = "a UTF-8 text file", allow_empty: bool = False) -> str:
    """A UTF-8 text file (a byte-order mark dropped), or one line naming it: missing, a folder,
    not UTF-8, empty (unless allowed)."""
    raw = read_bytes(path, what)
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a Windows editor's byte-order mark
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.start}; expected {what})") from None
    if not allow_empty and not text.strip():
        raise UsageError(f"{path}: empty file (expected {what})")
    return text


def parse_json(text: str, where: str, what: str):
    """json.loads, with any failure one UsageError naming `where` (a file, or a file and line)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{where} line {e.lineno} column {e.colno}: not valid JSON ({e.msg}; "
                         f"expected {what})") from None
    except RecursionError:  # [[[[... thousands deep
        raise UsageError(f"{where}: JSON nested too deep (expected {what})") from None


def read_json(path, what: str = "a JSON file", kind: type | None = None):
    """A JSON file's value; `kind` (dict, list) is the type its top level must have."""
    obj = parse_json(read_text(path, what), str(path), what)
    if kind is not None and not isinstance(obj, kind):
        raise UsageError(f"{path}: a JSON {type(obj).__name__}, expected {what} "
                         f"(a JSON {'object' if kind is dict else kind.__name__})")
    return obj


def read_safetensors(path, what: str = "a safetensors file", device: str = "cpu") -> dict:
    """{name: tensor} of a .safetensors file; a truncated or foreign file is one UsageError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    must_be_file(path, what)
    try:
        return load_file(path, device=device)
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"{path}: not a readable safetensors file ({first}; expected {what})") \
            from None


# ----------------------------------------------------------------------------- one writer at a time

@contextlib.contextmanager
def locked(folder, flag: str = "--out", lock=None):
    """Hold an exclusive lock on `folder` (the file folder/.lock, or `lock`) for the block; a
    second run asking for it meanwhile gets UsageError at once. The kernel drops the lock when
    the holder dies, so a killed run never leaves the folder locked."""
    folder = Path(folder)
    path = Path(lock) if lock is not None else folder / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UsageError(f"{folder}: another run is writing here (pid {pid}); wait for it "
                             f"or choose another {flag}") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed it between our open and flock: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield folder
    finally:
        path.unlink(missing_ok=True)  # still holding the lock, so no one else can own this file
        os.close(fd)
