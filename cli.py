"""cli.py — a command line built from a config dataclass, the one way every script does it.

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
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import typing


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
