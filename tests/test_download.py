"""Tests for download.py against a local HTTP server (offline): resume through .part + Range, sha256,
404, content checks before the atomic rename, the ../shared/data layout written from a mirror of the
real bytes (so the pinned sha256 values are checked for real), WikiMatrix conversion, and the CLI
(`python download.py` and its older spelling `python data.py download`).

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
import download as DL

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
    assert list(tmp_path.glob("f.bin*")) in ([], [tmp_path / "f.bin.part"])
    assert not dest.exists()


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
    mix = D.build_mixture("coit", out, ["de"], n_translation=10)
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
    D.main(["download", "--out", str(out2), "--langs", "de", "--base-url", server.url, "--sources", "parallel",
            "--parallel", "wikimatrix", "--max-pairs", "2"])
    assert len(D.read_parallel(out2, "de")) == 2


@pytest.mark.parametrize("cmd", [["download.py"], ["data.py", "download"]])
def test_cli_misuse_exits_2_and_writes_nothing(tmp_path, cmd):
    out = tmp_path / "dl"
    for args in (["--out", str(out), "--langs", "de,xx"], ["--out", str(out), "--sources", "foo"],
                 ["--out", str(out), "--parallel", "opus"]):
        r = subprocess.run([sys.executable, str(REPO / cmd[0]), *cmd[1:], *args], capture_output=True, text=True,
                           cwd=tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith(" ".join(cmd) + ": error:") and r.stderr.count("error:") == 1, r.stderr
    assert not out.exists()
