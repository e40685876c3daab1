"""Bad input anywhere is one line and exit 2, never a traceback (issue 27).

Two halves. The walk: every script with a `main(argv)` (found on disk, not listed by hand) is
asked for its parser, and each numeric flag is given a wrong type, 0, -1, nan, inf and 1e400 —
in-process, together with a `POISON` argv (a missing input) that stops the command after its
flags are checked and before any real work. The readers: every kind of file a user hands in
(tokenizer.model, tokenizer.json, chat templates, adapters, GGUF, metrics.jsonl, prompts),
truncated, empty, a folder, non-UTF-8 or syntactically broken.

    python -m pytest -q tests/test_bad_inputs.py
"""
import argparse
import importlib
import io
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cli
from cli import UsageError

ROOT = Path(__file__).resolve().parent.parent
MISSING = "/nonexistent/xllama-test"


# ----------------------------------------------------------------------------- the walk

def scripts() -> list[str]:
    """Module names of every script with a main(argv): the lesson's and the study's."""
    found = [p for p in sorted(ROOT.glob("*.py")) + sorted((ROOT / "study").glob("*.py"))
             if "\ndef main(argv" in p.read_text(encoding="utf-8")]
    return [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in found]


# argv that fails, with exit 2, after the flags are checked and before anything expensive;
# "{tmp}" is a fresh folder. A script missing here fails test_every_script_has_a_poison.
POISON = {
    "device": None,  # cheap: it decides, prints and exits 0
    "evaluate": ["--model", MISSING, "--task", "flores"],
    "evaluate score": ["--metric", "bleu", "--hyp", MISSING, "--ref", MISSING],
    "generate": ["--model", MISSING, "hi"],
    "mixture": ["--data", MISSING],
    "plot": [MISSING],
    "probe": ["--models", MISSING, "--out", "{tmp}/p.json"],
    "scaling fit": ["--points", MISSING, "--out", "{tmp}/f.json"],
    "scaling allocate": ["--fits", MISSING, "--budget", "100", "--out", "{tmp}/a.json"],
    "tokenizer": ["--text", MISSING, "--out", "{tmp}"],
    "train": ["--data", MISSING, "--out", "{tmp}/run"],
    "world": ["--out", "{tmp}/afile/w"],  # afile is a file: no world is generated
    "study.bench": ["--model", MISSING, "--out", "{tmp}/b"],
    "study.convert": ["--gguf", MISSING],
    "study.download": ["--model", "smollm2-135m-instruct", "--gguf", MISSING, "--out", "{tmp}/m"],
    "study.realmodel": ["--data", MISSING, "--out", "{tmp}/r"],
    "study.report": ["--results", MISSING],
    "study.reproduce": ["--out", "{tmp}/afile"],  # a file: refused before any work
    "study.sweep": ["--sizes", "1,2", "--out", "{tmp}/s"],
}
SUBCOMMANDS = {"evaluate": [[], ["score"]]}  # a main() that picks its parser by the first word
VALUES = ("x", "0", "-1", "nan", "inf", "1e400")
# Known defects: "parser" or "parser --flag" -> the values that still fail (none left). A listed
# case must fail, so a fix that lands without removing it is noticed.
KNOWN: dict[str, str] = {}


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def parsers(module: str, monkeypatch) -> dict[str, tuple[list[str], argparse.ArgumentParser]]:
    """{name: (argv prefix, parser)} of one script, subcommands included, caught at parse_args."""
    mod = importlib.import_module(module)
    short = module.removeprefix("study.") if module.startswith("study.") else module
    out = {}
    with monkeypatch.context() as m:
        def catch(self, *a, **k):
            raise _Captured(self)
        m.setattr(argparse.ArgumentParser, "parse_args", catch)
        for prefix in SUBCOMMANDS.get(module, [[]]):
            try:
                mod.main(list(prefix))
            except _Captured as c:
                name = " ".join([module, *prefix])
                subs = [a for a in c.parser._actions if isinstance(a, argparse._SubParsersAction)]
                if subs:
                    for cmd, sp in subs[0].choices.items():
                        out[f"{module} {cmd}"] = ([*prefix, cmd], sp)
                else:
                    out[name] = (list(prefix), c.parser)
    assert out, f"{short}: main() never built a parser"
    return out


def numeric_flags(parser) -> list[tuple[str, type]]:
    return [(a.option_strings[-1], a.type) for a in parser._actions
            if a.option_strings and a.type in (int, float)]


def run_main(module: str, argv: list[str], capsys) -> tuple[int, str]:
    mod = importlib.import_module(module)
    try:
        code = mod.main(argv)
    except SystemExit as e:
        code = e.code
    return code or 0, capsys.readouterr().err


def test_the_walk_finds_the_scripts():
    found = scripts()
    for name in ("train", "generate", "evaluate", "study.sweep", "study.convert", "plot"):
        assert name in found, found


@pytest.mark.parametrize("module", scripts())
def test_every_numeric_flag_refuses_bad_values_in_one_line(module, tmp_path, capsys, monkeypatch):
    """wrong type, 0, -1, nan, inf, 1e400 for every int/float flag: exit 2 (or 0 where the value is
    legal and the command is cheap), one line on stderr, never a traceback; a value that cannot be
    a number of that flag (x, nan, inf, 1e400 for an int) is refused naming the flag."""
    monkeypatch.chdir(tmp_path)  # nothing a script writes by default lands in the checkout
    bad = []
    for name, (prefix, parser) in parsers(module, monkeypatch).items():
        assert name in POISON, f"{name}: add an argv to POISON that stops it before real work"
        poison = [a.replace("{tmp}", str(tmp_path)) for a in (POISON[name] or [])]
        (tmp_path / "afile").touch()
        for flag, kind in numeric_flags(parser):
            for value in VALUES:
                case = f"{name} {flag} {value}"
                code, err = run_main(module, [*prefix, *poison, flag, value], capsys)
                lines = err.strip().splitlines()
                never = value in ("x", "nan", "inf", "1e400") or kind is int and value == "1e400"
                ok = ("Traceback" not in err and code in (0, 2)
                      and (code == 0 or len(lines) == 1)
                      and (not never or code == 2 and flag in err))
                known = value in KNOWN.get(f"{name} {flag}", KNOWN.get(name, "")).split()
                if ok == known:
                    bad.append(f"{case}: exit {code}, stderr {err.strip()[-300:]!r}"
                               + (" (fixed? remove it from KNOWN)" if ok else ""))
    assert not bad, "\n".join(bad)


def test_every_script_has_a_poison(monkeypatch):
    names = [n for m in scripts() for n in parsers(m, monkeypatch)]
    assert sorted(set(names) - set(POISON)) == []


# ----------------------------------------------------------------------------- cli.py

def _kinds(tmp_path, good: bytes) -> dict[str, Path]:
    """The same file truncated, empty, as a folder, not UTF-8 and missing."""
    made = {"truncated": good[:len(good) // 2], "empty": b"", "latin1": b"caf\xe9 " + good}
    paths = {}
    for kind, body in made.items():
        paths[kind] = tmp_path / f"{kind}.x"
        paths[kind].write_bytes(body)
    paths["folder"] = tmp_path / "folder.x"
    paths["folder"].mkdir()
    paths["missing"] = tmp_path / "missing.x"
    return paths


def _one_line(excinfo, path, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg and str(path) in msg, msg
    for n in needles:
        assert n in msg, (n, msg)


def test_readers_name_the_file_and_what_was_expected(tmp_path):
    """cli.read_text / read_json / read_safetensors: the one guarded path per format."""
    from safetensors.torch import save_file
    import torch
    good = json.dumps({"a": [1, 2, 3], "b": "ü"}).encode()
    p = _kinds(tmp_path, good)
    for kind, needle in (("empty", "empty file"), ("folder", "is a folder"),
                         ("latin1", "not UTF-8")):
        with pytest.raises(UsageError) as e:
            cli.read_text(p[kind], "a config")
        _one_line(e, p[kind], needle, "a config")
    with pytest.raises(FileNotFoundError) as e:
        cli.read_text(p["missing"], "a config")
    _one_line(e, p["missing"], "file not found")
    with pytest.raises(UsageError) as e:
        cli.read_json(p["truncated"], "a config")
    _one_line(e, p["truncated"], "line 1 column", "not valid JSON")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UsageError) as e:
        cli.read_json(deep, "a config")
    _one_line(e, deep, "nested too deep")
    with pytest.raises(UsageError) as e:
        cli.read_json(_write(tmp_path / "list.json", b"[1]"), "a config", dict)
    assert "expected a config (a JSON object)" in str(e.value)
    st = tmp_path / "w.safetensors"
    save_file({"w": torch.ones(64, 64)}, str(st))
    assert cli.read_safetensors(st)["w"].shape == (64, 64)
    for body in (st.read_bytes()[:200], st.read_bytes()[:-100], b"", b"\xff" * 16):
        _write(st, body)
        with pytest.raises(UsageError) as e:
            cli.read_safetensors(st, "an adapter")
        _one_line(e, st, "not a readable safetensors file", "an adapter")


def _write(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


LOCKER = textwrap.dedent("""
    import sys, time
    import cli
    with cli.locked(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_second_process_cannot_take_a_locked_folder(tmp_path):
    """cli.locked: a second writer is refused at once, naming the holder; a killed holder
    frees the folder (the kernel drops the lock)."""
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", LOCKER, str(out)], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError) as e:
            with cli.locked(out):
                pytest.fail("two writers hold the lock")
        assert str(e.value) == (f"{out}: another run is writing here (pid {holder.pid}); wait for "
                                "it or choose another --out")
    finally:
        holder.kill()
        holder.wait()
    with cli.locked(out):
        assert (out / ".lock").read_text().strip() == str(__import__("os").getpid())
    assert not (out / ".lock").exists()


# ----------------------------------------------------------------------------- a model folder

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random 'nano' model with a 200-position context and a 300-piece tokenizer.model."""
    import torch
    from dataclasses import replace
    from checkpoint import save_model
    from model import PRESETS, Llama
    from tokenizer import Tokenizer
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "text.txt").write_text("The cat sleeps on the sofa. Berlin is the capital of Germany. "
                                   "I like green tea. Translate into German.\n" * 200)
    tok = Tokenizer.train([root / "text.txt"], root / "model" / "tokenizer.model", vocab_size=300)
    torch.manual_seed(0)
    save_model(Llama(replace(PRESETS["nano"], vocab_size=tok.vocab_size,
                             max_position_embeddings=200)), root / "model")
    return root / "model"


FAST = ["--device", "cpu", "--dtype", "fp32", "--threads", "1", "--max-new-tokens", "4"]


def _generate(argv, capsys) -> tuple[int, list[str]]:
    code, err = run_main("generate", argv, capsys)
    return code, err.strip().splitlines()


def _refused(capsys, argv, *needles):
    code, err = _generate(argv, capsys)
    assert code == 2 and len(err) == 1, (argv, err)
    assert "Traceback" not in err[0]
    for n in needles:
        assert n in err[0], (n, err)


def _copy(model_dir: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(model_dir, dst)
    return dst


def test_tokenizer_files_broken_every_way(model_dir, tmp_path, capsys):
    """Before: sentencepiece's and tokenizers' own exceptions came out as tracebacks."""
    for kind, body in (("truncated", (model_dir / "tokenizer.model").read_bytes()[:300]),
                       ("empty", b""), ("garbage", b"\x00\xff" * 50)):
        d = _copy(model_dir, tmp_path / kind)
        _write(d / "tokenizer.model", body)
        _refused(capsys, ["--model", str(d), *FAST, "hi"], str(d / "tokenizer.model"),
                 "sentencepiece")
    d = _copy(model_dir, tmp_path / "folder")
    (d / "tokenizer.model").unlink()
    (d / "tokenizer.model").mkdir()
    _refused(capsys, ["--model", str(d), *FAST, "hi"], "tokenizer.model: is a folder")
    (d / "tokenizer.model").rmdir()
    for body, needle in ((b'{"model": ', "not valid JSON"), (b"[]", "not a tokenizer.json"),
                         (b'{"model": 3}', "not a tokenizer.json"), (b"\xff\xfe", "not UTF-8")):
        _write(d / "tokenizer.json", body)
        _refused(capsys, ["--model", str(d), *FAST, "hi"], str(d / "tokenizer.json"), needle)


def test_chat_templates_that_do_not_parse(model_dir, tmp_path, capsys):
    """Before: jinja2's TemplateSyntaxError was a traceback."""
    d = _copy(model_dir, tmp_path / "m")
    cfg = d / "tokenizer_config.json"
    cfg.write_text(json.dumps({"chat_template": "{% for m in messages %}{{ m.content }"}))
    _refused(capsys, ["--model", str(d), *FAST, "--template", "chat", "hi"], str(cfg),
             "does not parse")
    cfg.write_text('{"chat_template": ')
    _refused(capsys, ["--model", str(d), *FAST, "--template", "chat", "hi"], str(cfg),
             "not valid JSON")
    cfg.unlink()
    _write(d / "chat_template.jinja", b"{% if %}")
    _refused(capsys, ["--model", str(d), *FAST, "--template", "chat", "hi"],
             "chat_template.jinja line 1", "does not parse")
    _write(d / "chat_template.jinja", b"\xff{{ x }}")
    _refused(capsys, ["--model", str(d), *FAST, "--template", "chat", "hi"],
             "chat_template.jinja: not UTF-8")


def test_adapters_truncated_or_misconfigured(model_dir, tmp_path, capsys):
    """Before: a truncated adapter_model.safetensors was a SafetensorError traceback, a broken
    adapter_config.json a JSONDecodeError/KeyError traceback."""
    import lora as L
    from checkpoint import load_model
    model = load_model(model_dir)
    L.inject_lora(model, L.LoraConfig(r=2))
    ad = L.save_adapter(model, tmp_path / "ad", L.LoraConfig(r=2), base_name=str(model_dir))
    st, cfg = ad / "adapter_model.safetensors", ad / "adapter_config.json"
    good_st, good_cfg = st.read_bytes(), json.loads(cfg.read_text())
    _write(st, good_st[:len(good_st) // 2])
    _refused(capsys, ["--model", str(ad), *FAST, "hi"], str(st), "not a readable safetensors")
    _write(st, good_st)
    for body, needle in (('{"r": ', "not valid JSON"), ("[1]", "a JSON object"),
                         (json.dumps({**good_cfg, "r": -1}), "r = -1"),
                         (json.dumps({**good_cfg, "lora_alpha": "x"}), "lora_alpha = 'x'"),
                         (json.dumps({**good_cfg, "target_modules": 3}), "target_modules")):
        cfg.write_text(body)
        _refused(capsys, ["--model", str(ad), *FAST, "hi"], str(cfg), needle)


def test_prompts_that_are_not_utf8_or_too_long(model_dir, capsys, monkeypatch):
    """Before: a non-UTF-8 prompt was a UnicodeEncodeError/DecodeError traceback; a prompt past
    max_position_embeddings ran without a word."""
    m = ["--model", str(model_dir), *FAST]
    _refused(capsys, [*m, "caf\udce9"], "prompt argument: not UTF-8")  # argv bytes b"caf\xe9"
    _refused(capsys, [*m, "--input", "caf\udce9", "hi"], "--input: not UTF-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hi\ncaf\xe9\n")))
    code, err = _generate(m, capsys)
    assert code == 2 and err[-1] == "generate.py: error: stdin line 2: not UTF-8 text (byte 4); " \
                                    "expected UTF-8", err
    _refused(capsys, [*m, "the cat sleeps " * 40], "prompt:", "exceed the model's context of 200")
    _refused(capsys, [*m, "--max-new-tokens", "200", "hi"], "--max-new-tokens 200",
             "200-position context")


# ----------------------------------------------------------------------------- GGUF

def _gguf(kv: bytes, n_kv: int = 1, n_tensors: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kv


def _s(b: bytes) -> bytes:
    return struct.pack("<Q", len(b)) + b


def test_crafted_gguf_files(tmp_path, capsys):
    """Before: a key that is not UTF-8 was a UnicodeDecodeError traceback, arrays nested
    thousands deep a RecursionError, general.alignment 0 a ZeroDivisionError."""
    nested = _s(b"a") + struct.pack("<I", 9) + (struct.pack("<IQ", 9, 1)) * 5000 \
        + struct.pack("<IQ", 4, 0)
    crafted = {
        "utf8": (_gguf(_s(b"caf\xe9") + struct.pack("<I", 4) + b"\0" * 4), "not UTF-8"),
        "nested": (_gguf(nested), "arrays nested more than"),
        "count": (_gguf(b"", n_kv=2 ** 63), "truncated"),
        "array": (_gguf(_s(b"a") + struct.pack("<IIQ", 9, 8, 2 ** 62)), "truncated"),
        "align": (_gguf(_s(b"general.alignment") + struct.pack("<II", 4, 0), n_tensors=0),
                  "general.alignment = 0"),
        "dims": (_gguf(_s(b"t") + struct.pack("<I", 99), n_kv=0, n_tensors=1), "99 dimensions"),
    }
    for name, (body, needle) in crafted.items():
        path = _write(tmp_path / f"{name}.gguf", body)
        code, err = run_main("study.convert", ["--gguf", str(path)], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and str(path) in lines[0] and needle in lines[0], \
            (name, lines)


# ----------------------------------------------------------------------------- metrics.jsonl

def test_metrics_rows_with_impossible_numbers(tmp_path, capsys):
    """Before: "step": 1e400 (read as inf) was an OverflowError traceback in plot.py."""
    run = tmp_path / "run"
    run.mkdir()
    good = '{"step": 1, "loss": 2.5}\n'
    for body, needle in ((good + '{"step": 1e400, "loss": 2.0}\n', ":2: step inf"),
                         (good + '{"step": NaN, "loss": 2.0}\n', ":2: step nan"),
                         (good + '{"step": -3, "loss": 2.0}\n', ":2: step -3"),
                         (good + '{"step": 2, "loss": 1' + "0" * 400 + '}\n', ":2: expected"),
                         (good + '[1, 2]\n', ":2: expected a metrics row"),
                         (good + '{"step": 2,\n', ":2 line 1 column"),
                         (b"\xff" + good.encode(), "not UTF-8")):
        _write(run / "metrics.jsonl", body if isinstance(body, bytes) else body.encode())
        code, err = run_main("plot", [str(run)], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and needle in lines[0], (body[:60], lines)
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    code, err = run_main("plot", [str(run)], capsys)
    assert code == 2 and "is a folder" in err
    ok = tmp_path / "ok"
    ok.mkdir()
    _write(ok / "metrics.jsonl", (good + '{"step": 2, "loss": Infinity}\n').encode())
    assert run_main("plot", [str(ok)], capsys)[0] == 0  # a non-finite loss is skipped, not refused
