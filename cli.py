"""cli.py — how a script meets its user: the command line built from a config dataclass, one
line and an exit code for every error, and the files it reads and writes.

Each field becomes a flag (`max_len` -> `--max-len`) whose help is the field's `help` metadata
(`opt(default, help)` declares both) with the default appended; booleans get `--x/--no-x`,
`list[str]` fields take one or more values. Flags not given are left out of the parsed namespace,
so a caller can layer defaults, presets and the flags given explicitly, in that order. A usage
error is one line and exit code 2.

    @dataclass
    class Config:
        steps: int = opt(100, "optimizer steps", range="[1, inf)")
    parser = add_config_flags(Parser(prog="x.py", doc=__doc__), Config)
    cfg = Config(**vars(parser.parse_args()))  # only the flags on the command line
    check_config(cfg)                           # ranges and choices: one line naming the flag
    sys.exit(guard("x.py", lambda: run(cfg)))   # exit 2 misuse, 130 Ctrl-C, 1 failure

Files. Every file this project writes goes through `atomic_path` / `write_atomic` / `write_json`:
a temp file beside the target, then one `os.replace`; a crash, a full disk or Ctrl-C leaves the
old file (or none), never a truncated one. `locked(folder)` refuses a second run into a folder
another run is writing. Every file a user hands in is read by one reader per format (`read_text`,
`read_json`, `read_safetensors`; tokenizer.py for tokenizer files, study/convert.py for GGUF): a
missing file raises FileNotFoundError, anything else wrong (a folder, empty, not UTF-8, broken
syntax, truncated) UsageError; both name the file and what was expected (exit 2). `read_jsonl`
reads a file this project appends to (predictions): a line torn by a crash is skipped, with a note.

    with atomic_path("runs/x/model.pt") as tmp:
        torch.save(state, tmp)
    cfg = read_json("runs/x/adapter_config.json", "a peft adapter config", dict)
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import math
import os
import re
import shutil
import sys
import typing
from pathlib import Path


class UsageError(ValueError):
    """A bad flag or input file: the scripts print it as one line and exit with code 2."""


def opt(default, help: str, range: str | None = None, choices=None, required: bool = False,
        positional: bool = False):
    """A dataclass field that carries its --help text and what values it accepts: `range` as an
    interval such as "[0, 1)" or "[1, inf)" (checked by check_config, NaN refused), `choices` a
    tuple. `required` flags must be given; a `positional` field is an argument without a flag."""
    meta = {"help": help, "range": _interval(range) if range else None, "choices": choices,
            "required": required, "positional": positional}
    return dataclasses.field(default=default, metadata=meta)


def _interval(text: str) -> tuple[bool, float, float, bool, str]:
    """"[0, 1)" -> (lower closed, 0.0, 1.0, upper closed, the text)."""
    m = re.fullmatch(r"\s*([\[(])\s*([^,]+),\s*([^\])]+)\s*([\])])\s*", text)
    if m is None:
        raise ValueError(f"opt(range={text!r}): expected an interval such as '[0, 1)'")
    return m.group(1) == "[", float(m.group(2)), float(m.group(3)), m.group(4) == "]", text


def check_config(cfg) -> None:
    """Every field with a range or choices, checked: one UsageError naming the flag (None
    passes)."""
    for f in dataclasses.fields(cfg):
        v, rng, choices = getattr(cfg, f.name), f.metadata.get("range"), f.metadata.get("choices")
        if v is None:
            continue
        if choices is not None and v not in choices:
            raise UsageError(f"{flag(f.name)} {v!r}: expected one of "
                             f"{', '.join(map(str, choices))}")
        if rng is not None:
            lo_closed, lo, hi, hi_closed, text = rng
            ok = (lo <= v if lo_closed else lo < v) and (v <= hi if hi_closed else v < hi)
            if not ok or not math.isfinite(v) and not (v == hi and hi_closed):
                raise UsageError(f"{flag(f.name)} {v}: expected a value in {text}")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse's default prints the whole usage block first).
    Parser(prog, doc=__doc__): the docstring's first paragraph describes, the rest is the epilog,
    so every script's --help has the same shape: usage, what it does, the flags, the manual."""

    def __init__(self, *args, doc: str | None = None, **kw):
        if doc is not None:
            head, _, rest = doc.partition("\n\n")
            kw = {"description": head, "epilog": rest or None,
                  "formatter_class": argparse.RawDescriptionHelpFormatter, **kw}
        super().__init__(*args, **kw)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(annotation: str):
    """(type, nargs) of a field annotated as a string (`from __future__ import annotations`)."""
    base = annotation.split("|")[0].strip()
    many = re.fullmatch(r"list\[(\w+)\]", base)
    types = {"int": int, "float": float, "str": str, "bool": bool}
    return (types.get(many.group(1)), "+") if many else (types.get(base), None)


def add_config_flags(parser: argparse.ArgumentParser, cls, skip=()) -> argparse.ArgumentParser:
    """One flag per field of dataclass `cls` (except those in `skip`); absent flags stay absent."""
    fields = dataclasses.fields(cls)
    hints = typing.get_type_hints(cls) if not isinstance(fields[0].type, str) else {}
    for f in fields:
        if f.name in skip:
            continue
        annotation = f.type if isinstance(f.type, str) else str(hints.get(f.name, ""))
        kind, nargs = _kind(annotation)
        if kind is None:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line type for {annotation!r}")
        default = f.default if f.default is not dataclasses.MISSING else None
        need, alone = f.metadata.get("required"), f.metadata.get("positional")
        h, choices = f.metadata.get("help", ""), f.metadata.get("choices")
        if choices:
            h = f"{h} [{'|'.join(map(str, choices))}]"
        if not (need or alone or "(default:" in h):
            h = f"{h} (default: {default})"
        kw = {"help": h.replace("%", "%%"), "default": argparse.SUPPRESS}  # argparse %-formats help
        if alone:
            parser.add_argument(f.name, type=kind, nargs=nargs, **kw)
        elif kind is bool:
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, **kw)
        else:
            parser.add_argument(flag(f.name), type=kind, nargs=nargs, required=bool(need), **kw)
    return parser


class Failed(RuntimeError):
    """A run that cannot go on for a reason that is not misuse (exit 1), e.g. a non-finite loss."""


class NonFiniteLoss(Failed):
    """The loss or gradient norm became inf/nan; the last good resumable state is kept (exit 1)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training: the last resumable state is kept (exit 130)."""


def guard(prog: str, body, resume=None, usage=()) -> int:
    """Run body() as a script's main does: the exit code, and at most one line on stderr.
    UsageError, and the exception types in `usage` (a script's readers may raise ValueError or
    FileNotFoundError for a bad input file): exit 2. Ctrl-C: exit 130, with the command that
    continues (`resume`, a string or a function returning one) when given.
    Failed, other RuntimeErrors and OSErrors (a full disk): exit 1, their message only."""
    try:
        code = body()
    except (UsageError, *usage) as e:
        return fail(prog, str(e))
    except KeyboardInterrupt as e:
        said = f"{prog}: {e}" if str(e) else f"{prog}: interrupted"
        resume = resume() if callable(resume) else resume
        print(said + (f"; continue with: {resume}" if resume else ""), file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return code or 0


def fail(prog: str, message: str, code: int = 2) -> int:
    """Print `prog: error: message` on stderr and return the exit code (2: misuse)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


# ----------------------------------------------------------------------------- files
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


def read_jsonl(path, skipped: str = "its example is generated again") -> list[dict]:
    """The records of a jsonl file (none if it does not exist). A line cut by a crash mid-write is
    skipped with a note on stderr (stdout may be --json output)."""
    out, path = [], Path(path)
    if path.is_file():
        for i, line in enumerate(read_text(path, allow_empty=True).splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    print(f"{path}:{i}: unreadable line skipped ({e.msg}); {skipped}",
                          file=sys.stderr)
    return out


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
