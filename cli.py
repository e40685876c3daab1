"""cli.py — a command line built from a config dataclass, the one way every script does it.

Each field becomes a flag (`max_len` -> `--max-len`) whose help is the field's `help` metadata
(`opt(default, help)` declares both) with the default appended; booleans get `--x/--no-x`. Flags not
given are left out of the parsed namespace, so a caller can layer defaults, presets and the flags
given explicitly, in that order. A usage error is one line and exit code 2.

    @dataclass
    class Config:
        steps: int = opt(100, "optimizer steps")
    parser = Parser(prog="x.py", description="...")
    add_config_flags(parser, Config)
    given = vars(parser.parse_args())          # only the flags on the command line
    cfg = Config(**given)
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing


class UsageError(ValueError):
    """A bad flag or input file: the scripts print it as one line and exit with code 2."""


def opt(default, help: str):
    """A dataclass field that carries its --help text."""
    return dataclasses.field(default=default, metadata={"help": help})


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse's default prints the whole usage block first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(annotation: str):
    """The argparse type of a field annotated as a string (`from __future__ import annotations`)."""
    base = annotation.split("|")[0].strip()
    return {"int": int, "float": float, "str": str, "bool": bool}.get(base)


def add_config_flags(parser: argparse.ArgumentParser, cls, skip=()) -> argparse.ArgumentParser:
    """One flag per field of dataclass `cls` (except those in `skip`); absent flags stay absent."""
    hints = typing.get_type_hints(cls) if not isinstance(dataclasses.fields(cls)[0].type, str) else {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        annotation = f.type if isinstance(f.type, str) else str(hints.get(f.name, ""))
        kind = _kind(annotation)
        if kind is None:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line type for {annotation!r}")
        default = f.default if f.default is not dataclasses.MISSING else None
        h = f.metadata.get("help", "")
        h = (h if "(default:" in h else f"{h} (default: {default})").replace("%", "%%")  # argparse %-formats help
        if kind is bool:
            parser.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=h)
        else:
            parser.add_argument(flag(f.name), type=kind, default=argparse.SUPPRESS, help=h)
    return parser


def fail(prog: str, message: str, code: int = 2) -> int:
    """Print `prog: error: message` on stderr and return the exit code (2: misuse)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code
