"""Benchmarks and metrics of the x-LLaMA paper: XQuAD/MLQA (containment, EM/F1) and Flores-101 (BLEU).

Metrics are written from scratch (Python only, no sacrebleu at run time) and tested against
sacrebleu and the official SQuAD v1.1 / MLQA rules in tests/test_evaluate.py.

Score files without a model (one hypothesis per line, or a predictions.jsonl written below):

    python evaluate.py score --metric bleu --hyp hyp.txt --ref ref.txt [--tokenize 13a|zh|spm:PATH]
    python evaluate.py score --metric chrf --hyp hyp.txt --ref ref.txt [--word-order 2] [--json]
    python evaluate.py score --metric mlqa --hyp out/predictions.jsonl --ref out/predictions.jsonl --lang de

QA reference text files hold one example per line, gold answers separated by TABs. A
predictions.jsonl passed as --hyp/--ref supplies `prediction` / the gold field (`answers` for QA, `reference` for translation).

Evaluate a checkpoint (greedy, batched, KV cache; prompts = data.format_prompt of the paper's
instructions; resumable: ids already in OUT/predictions.jsonl are skipped):

    python evaluate.py --model runs/x-llama-de --task xquad --lang de --data runs/world --limit 50
    python evaluate.py --model runs/x-llama-de --task flores --lang de --direction en-X
    python evaluate.py --model runs/x-llama-de --task all --lang de      # paper-style table

Writes OUT/predictions.jsonl (original fields + `prediction`), OUT/scores.json and the resolved
OUT/eval_config.json (default OUT: MODEL/eval/<task>-<lang>[-<direction>]); --lang defaults to the
model's own from MODEL/train_config.json; --dtype auto = bfloat16 on cuda, float32 on cpu.

Metric definitions:
- BLEU: corpus BLEU as sacreBLEU 2.x (13a / zh / spm:PATH tokenization, exp|floor|add-k|none
  smoothing, optional effective order); sentence BLEU uses effective order. spBLEU = spm
  tokenization with effective order (the paper used Flores-101's sentencepiece model; with
  none offline we use the checkpoint's tokenizer.model and say so in the signature).
- chrF (word_order=0) and chrF++ (word_order=2), beta=2, sacreBLEU 2.x statistics.
- Signatures look like sacreBLEU's but end in `version:xllama-1`, naming this implementation.
- QA: `contain` = the paper's metric: lower-cased first gold answer is a substring of the
  lower-cased raw response. EM/F1 are computed on extract_answer(response) with the official
  MLQA normalisation for EVERY language (XQuAD too): Unicode P* punctuation removed, that
  language's articles removed (en/de/vi/ar as MLQA; none for hi, zh, el, tr), Chinese split
  into characters. `squad_em_f1` is the official SQuAD v1.1 rule set (English only).
- Response language: script/character statistics, see response_language().
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import string
import sys
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch
from tqdm import tqdm

import data
from data import LANGS
from model import Llama

VERSION = "xllama-1"  # the `version:` field of our signatures; never sacreBLEU's number


# ----------------------------------------------------------------------------- tokenizers
_13A_RULES = [  # mteval-v13a, as sacreBLEU's TokenizerRegexp
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # ASCII symbols become tokens
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period/comma unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash after a digit
]


@lru_cache(maxsize=2**16)
def tokenize_13a(line: str) -> str:
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


# Code-point ranges sacreBLEU's zh tokenizer splits into single-character tokens. Its table
# writes two supplementary-plane ranges as "\u20000".."\u2a6d6" (two-character strings), which
# under string comparison select U+2001..U+2A6D (general punctuation, arrows, math symbols ...)
# instead of CJK Extension B; we reproduce that behaviour on purpose, for score parity.
_ZH_RANGES = [(0x3400, 0x4DB5), (0x4E00, 0x9FA5), (0x9FA6, 0x9FBB), (0xF900, 0xFA2D), (0xFA30, 0xFA6A),
              (0xFA70, 0xFAD9), (0x2001, 0x2A6D), (0x2F81, 0x2FA1), (0xFF00, 0xFFEF), (0x2E80, 0x2EFF),
              (0x3000, 0x303F), (0x31C0, 0x31EF), (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF), (0x3100, 0x312F),
              (0x31A0, 0x31BF), (0xFE10, 0xFE1F), (0xFE30, 0xFE4F), (0x2600, 0x26FF), (0x2700, 0x27BF),
              (0x3200, 0x32FF), (0x3300, 0x33FF)]


def _is_zh_char(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _ZH_RANGES)


@lru_cache(maxsize=2**16)
def tokenize_zh(line: str) -> str:
    line = "".join(f" {ch} " if _is_zh_char(ch) else ch for ch in line.strip())
    return tokenize_13a(line)


@lru_cache(maxsize=8)
def _spm(path: str):
    import sentencepiece as spm
    if not Path(path).is_file():
        raise ValueError(f"--tokenize spm:{path}: no sentencepiece model at that path")
    return spm.SentencePieceProcessor(model_file=path)


def get_tokenizer(name: str):
    """'13a' | 'zh' | 'none' | 'spm:PATH' -> callable(str) -> space-separated tokens."""
    if name == "13a":
        return tokenize_13a
    if name == "zh":
        return tokenize_zh
    if name == "none":
        return lambda s: s
    if name.startswith("spm:"):
        sp = _spm(name[4:])
        return lambda s: " ".join(sp.encode(s, out_type=str))
    raise ValueError(f"--tokenize {name!r}: expected 13a, zh, none or spm:PATH")


def _tok_signature(name: str) -> str:
    return f"spm-{Path(name[4:]).stem}" if name.startswith("spm:") else name


# ----------------------------------------------------------------------------- BLEU
SMOOTH_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}


@dataclass
class BLEUResult:
    score: float  # 0..100
    counts: list  # matched n-grams, n = 1..4
    totals: list  # hypothesis n-grams, n = 1..4
    precisions: list  # percent
    bp: float  # brevity penalty
    sys_len: int
    ref_len: int
    signature: str = ""

    def __str__(self) -> str:
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        return (f"BLEU = {self.score:.2f} {p} (BP = {self.bp:.3f} ratio = {self.sys_len / max(self.ref_len, 1):.3f} "
                f"hyp_len = {self.sys_len} ref_len = {self.ref_len})  {self.signature}")


def _bleu_stats(hyp: str, ref: str, max_n: int = 4) -> list[int]:
    """[hyp_len, ref_len, correct_1..n, total_1..n] of one tokenized sentence pair."""
    h, r = hyp.split(), ref.split()
    correct, total = [0] * max_n, [0] * max_n
    for n in range(1, max_n + 1):
        hc = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
        rc = Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
        total[n - 1] = sum(hc.values())
        correct[n - 1] = sum(min(c, rc[g]) for g, c in hc.items() if g in rc)
    return [len(h), len(r)] + correct + total


def _bleu_from_stats(stats, smooth="exp", smooth_value=None, effective_order=False, max_n=4) -> BLEUResult:
    sys_len, ref_len = stats[0], stats[1]
    correct, total = list(stats[2:2 + max_n]), list(stats[2 + max_n:])
    if smooth not in SMOOTH_DEFAULTS:
        raise ValueError(f"smooth={smooth!r}: expected one of {sorted(SMOOTH_DEFAULTS)}")
    k = SMOOTH_DEFAULTS[smooth] if smooth_value is None else smooth_value
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0)
    prec = [0.0] * max_n
    if not any(correct):
        return BLEUResult(0.0, correct, total, prec, bp, sys_len, ref_len)
    exp_div, order = 1.0, max_n
    for n in range(1, max_n + 1):
        if smooth == "add-k" and n > 1:
            correct[n - 1] += k
            total[n - 1] += k
        if total[n - 1] == 0:
            break  # no n-grams of this order at all: with effective order, stop at n-1
        if effective_order:
            order = n
        if correct[n - 1] == 0:
            if smooth == "exp":  # NIST: halve the pseudo-count for each further zero order
                exp_div *= 2
                prec[n - 1] = 100.0 / (exp_div * total[n - 1])
            elif smooth == "floor":
                prec[n - 1] = 100.0 * k / total[n - 1]
        else:
            prec[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    log = lambda p: math.log(p) if p > 0 else -9999999999.0  # log(0) -> score 0, as sacreBLEU
    score = bp * math.exp(sum(log(p) for p in prec[:order]) / order)
    return BLEUResult(score, correct, total, prec, bp, sys_len, ref_len)


def _check_lengths(hyps, refs):
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references: they must be line-aligned")


def _bleu_signature(tokenize, smooth, eff):
    return f"BLEU|nrefs:1|case:mixed|eff:{'yes' if eff else 'no'}|tok:{_tok_signature(tokenize)}|smooth:{smooth}|version:{VERSION}"


def corpus_bleu(hyps, refs, tokenize="13a", smooth="exp", smooth_value=None, use_effective_order=False) -> BLEUResult:
    """Corpus BLEU of line-aligned hypotheses and references (one reference each), sacreBLEU 2.x rules."""
    _check_lengths(hyps, refs)
    tok = get_tokenizer(tokenize)
    stats = [0] * 10
    for h, r in zip(hyps, refs):
        for i, v in enumerate(_bleu_stats(tok(h.rstrip()), tok(r.rstrip()))):
            stats[i] += v
    res = _bleu_from_stats(stats, smooth, smooth_value, use_effective_order)
    res.signature = _bleu_signature(tokenize, smooth, use_effective_order)
    return res


def sentence_bleu(hyp, ref, tokenize="13a", smooth="exp", smooth_value=None, use_effective_order=True) -> BLEUResult:
    tok = get_tokenizer(tokenize)
    res = _bleu_from_stats(_bleu_stats(tok(hyp.rstrip()), tok(ref.rstrip())), smooth, smooth_value, use_effective_order)
    res.signature = _bleu_signature(tokenize, smooth, use_effective_order)
    return res


# ----------------------------------------------------------------------------- chrF / chrF++
@dataclass
class ChrFResult:
    score: float
    signature: str = ""

    def __str__(self) -> str:
        return f"chrF = {self.score:.2f}  {self.signature}"


_ASCII_PUNCT = set(string.punctuation)


def _chrf_words(sent: str) -> list[str]:
    """Words with ONE leading or trailing ASCII punctuation mark split off (sacreBLEU's chrF++)."""
    out = []
    for w in sent.split():
        if len(w) > 1 and w[-1] in _ASCII_PUNCT:
            out += [w[:-1], w[-1]]
        elif len(w) > 1 and w[0] in _ASCII_PUNCT:
            out += [w[0], w[1:]]
        else:
            out.append(w)
    return out


def _chrf_stats(hyp: str, ref: str, char_order: int, word_order: int) -> list[int]:
    """Per order: [hyp n-grams, ref n-grams, matched]; chars (whitespace removed) then words."""
    stats = []
    hc, rc = "".join(hyp.split()), "".join(ref.split())
    grams = [(Counter(hc[i:i + n] for i in range(len(hc) - n + 1)),
              Counter(rc[i:i + n] for i in range(len(rc) - n + 1))) for n in range(1, char_order + 1)]
    hw, rw = _chrf_words(hyp), _chrf_words(ref)
    grams += [(Counter(tuple(hw[i:i + n]) for i in range(len(hw) - n + 1)),
               Counter(tuple(rw[i:i + n]) for i in range(len(rw) - n + 1))) for n in range(1, word_order + 1)]
    for h, r in grams:
        stats += [sum(h.values()), sum(r.values()), sum(min(c, r[g]) for g, c in h.items() if g in r)]
    return stats


def _chrf_from_stats(stats, beta=2) -> float:
    """Average precision and recall over the orders present in both sides, then F-beta (sacreBLEU 2.x)."""
    f = beta ** 2
    avg_p = avg_r = 0.0
    eff = 0
    for i in range(len(stats) // 3):
        n_hyp, n_ref, n_match = stats[3 * i:3 * i + 3]
        if n_hyp > 0 and n_ref > 0:
            avg_p += n_match / n_hyp
            avg_r += n_match / n_ref
            eff += 1
    if eff == 0:
        return 0.0
    avg_p, avg_r = avg_p / eff, avg_r / eff
    return 100 * (1 + f) * avg_p * avg_r / (f * avg_p + avg_r) if avg_p + avg_r else 0.0


def chrf(hyps, refs, word_order=0, char_order=6, beta=2) -> ChrFResult:
    """Corpus chrF (word_order=0) or chrF++ (word_order=2); statistics summed over sentences."""
    if isinstance(hyps, str):
        hyps, refs = [hyps], [refs]
    _check_lengths(hyps, refs)
    total = None
    for h, r in zip(hyps, refs):
        s = _chrf_stats(h, r, char_order, word_order)
        total = s if total is None else [a + b for a, b in zip(total, s)]
    score = _chrf_from_stats(total or [], beta)
    name = f"chrF{beta}" + ("++" if word_order else "")
    sig = f"{name}|nrefs:1|case:mixed|eff:yes|nc:{char_order}|nw:{word_order}|space:no|version:{VERSION}"
    return ChrFResult(score, sig)


# ----------------------------------------------------------------------------- QA metrics
def _squad_normalize(s: str) -> str:
    """Official SQuAD v1.1: lower, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _ASCII_PUNCT)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def _f1(pred_toks: list[str], gold_toks: list[str]) -> float:
    same = sum((Counter(pred_toks) & Counter(gold_toks)).values())
    if same == 0:
        return 0.0
    p, r = same / len(pred_toks), same / len(gold_toks)
    return 2 * p * r / (p + r)


def squad_em_f1(pred: str, golds) -> tuple[float, float]:
    """(EM, F1) in 0..1 for one prediction, max over gold answers (official SQuAD v1.1)."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    p = _squad_normalize(pred)
    em = max(float(p == _squad_normalize(g)) for g in golds)
    f1 = max(_f1(p.split(), _squad_normalize(g).split()) for g in golds)
    return em, f1


_UNICODE_PUNCT = {chr(i) for i in range(sys.maxunicode + 1) if unicodedata.category(chr(i)).startswith("P")}
_UNICODE_PUNCT |= _ASCII_PUNCT  # MLQA adds string.punctuation ($+<=>^`|~ are symbols, not P*)
_ARTICLES = {  # MLQA's per-language article patterns; el and tr: none (MLQA has no such languages)
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "ar": r"\sال^|ال",  # official pattern: in effect removes EVERY "ال", not only the prefix
}
_HAN = re.compile(r"[\u4e00-\u9fa5]")


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA's zh tokenisation: every Han character (and punctuation mark) is a token, the rest split on spaces."""
    out, buf = [], ""
    for ch in text:
        if _HAN.match(ch) or ch in _UNICODE_PUNCT:
            out += buf.split()
            buf = ""
            out.append(ch)
        else:
            buf += ch
    return out + buf.split()


def mlqa_normalize(s: str, lang: str) -> list[str]:
    """Official MLQA normalisation -> tokens: lower, drop P* punctuation, drop articles, segment."""
    if lang not in LANGS and lang != "es":
        raise ValueError(f"--lang {lang!r}: expected one of {', '.join(LANGS)}")
    s = "".join(ch for ch in s.lower() if ch not in _UNICODE_PUNCT)
    if lang in _ARTICLES:
        s = re.sub(_ARTICLES[lang], " ", s)
    toks = _mixed_segmentation(s) if lang == "zh" else s.split()
    return [t for t in toks if t.strip()]


def mlqa_em_f1(pred: str, golds, lang: str) -> tuple[float, float]:
    """(EM, F1) in 0..1, max over gold answers, with MLQA's rules for `lang`."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    p = mlqa_normalize(pred, lang)
    em = max(float(" ".join(p) == " ".join(mlqa_normalize(g, lang))) for g in golds)
    f1 = max(_f1(p, mlqa_normalize(g, lang)) for g in golds)
    return em, f1


def containment(pred: str, golds) -> float:
    """The paper's QA metric: 1.0 when the lower-cased FIRST gold answer occurs in the lower-cased prediction."""
    first = golds if isinstance(golds, str) else golds[0]
    return float(first.lower() in pred.lower())


# Answer labels a model may echo: the Alpaca section names and data.QA_PROMPTS' "answer" label per language.
_LABELS = ["response", "answer", "output"] + [p["answer"].lower() for p in data.QA_PROMPTS.values()]
_LABEL = re.compile(r"^\s*(#{1,4}\s*)?(" + "|".join(map(re.escape, _LABELS)) + r")\s*[:：]\s*", re.IGNORECASE)


def extract_answer(text: str) -> str:
    """The answer inside a generated response: text after the last echoed "### Response:", then the
    first non-empty line, with a leading answer label ("Answer:", "### Response:", "Antwort:",
    "答案：" ...) removed, stripped. Empty string when nothing is left."""
    if "### Response:" in text:
        text = text.rsplit("### Response:", 1)[1]
    for line in text.splitlines():
        line = _LABEL.sub("", line).strip()
        if line:
            return line
    return ""


# ----------------------------------------------------------------------------- response language
_SCRIPTS = {"zh": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]", "ar": r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]",
            "el": r"[\u0370-\u03ff\u1f00-\u1fff]", "hi": r"[\u0900-\u097f]"}
_SCRIPTS = {k: re.compile(v) for k, v in _SCRIPTS.items()}
_LATIN = re.compile(r"[a-zA-Z\u00c0-\u024f\u1e00-\u1eff]")
# Latin-script languages: letters only that language uses (among en/de/tr/vi), and frequent function words.
_MARKS = {"de": set("äß"), "tr": set("ığşçİ"), "vi": set("ăâđêôơư") | {chr(c) for c in range(0x1EA0, 0x1EFA)}}
_STOP = {
    "en": "the and of to is in that it for was on are with as this be by not or have from what which".split(),
    "de": ("der die das und ist nicht ein eine zu mit den von auf für sich dem auch es im wird sind wurde "
           "werden hatte vom bis als nach bei aus er sie wir ich zum zur einen einer eines am").split(),
    "tr": "ve bir bu için ile da de çok olarak daha gibi ne var en mi olan ama kadar sonra değil veya".split(),
    "vi": "và của là có không những được cho trong một các người này với đã để khi thì".split(),
}


def response_language(text: str) -> str | None:
    """Language code (en de zh ar el hi tr vi) a text is written in; None when undecidable (no letters,
    or Latin letters without any characteristic letter or stopword, e.g. a bare name like "Berlin").

    Non-Latin scripts win by character count (Han -> zh, Arabic -> ar, Greek -> el, Devanagari -> hi)
    when they make up at least a third of the letters. Otherwise, for Latin script, each of en/de/tr/vi
    scores 2 per characteristic letter (de äß, tr ığşç, vi ăâđêôơư and tone-marked vowels; ö ü are
    shared by de and tr and count 1 for each) plus 1 per stopword; the best wins, English on ties.
    Measured on Flores-101 devtest references: see tests/test_evaluate.py."""
    counts = {k: len(p.findall(text)) for k, p in _SCRIPTS.items()}
    latin = len(_LATIN.findall(text))
    total = latin + sum(counts.values())
    if total == 0:
        return None
    best = max(counts, key=counts.get)
    if counts[best] * 3 >= total:
        return best
    low = text.lower()
    words = re.findall(r"\w+", low)
    score = {lang: sum(words.count(w) for w in ws) for lang, ws in _STOP.items()}
    for lang, chars in _MARKS.items():
        score[lang] += 2 * sum(ch in chars for ch in low)
    shared = sum(ch in "öü" for ch in low)
    score["de"] += shared
    score["tr"] += shared
    best = max(score, key=lambda k: (score[k], k == "en"))
    return best if score[best] > 0 else None


def language_rate(texts, lang: str) -> float | None:
    """Share (0..1) of the decidable texts (response_language not None) written in `lang`; None if none is."""
    found = [x for x in map(response_language, texts) if x is not None]
    return sum(x == lang for x in found) / len(found) if found else None


# ----------------------------------------------------------------------------- scoring a task's outputs
def _pct_or_none(x):
    return None if x is None else 100.0 * x


def score_qa(responses, golds, lang: str) -> dict:
    """The QA scores reported for XQuAD/MLQA, in percent: containment on the raw response (paper),
    EM/F1 with MLQA rules on extract_answer(response), share of responses in `lang`."""
    n = len(responses)
    answers = [extract_answer(r) for r in responses]
    emf1 = [mlqa_em_f1(a, g, lang) for a, g in zip(answers, golds)]
    pct = lambda xs: 100.0 * sum(xs) / max(n, 1)
    return {"n": n, "contain": pct(containment(r, g) for r, g in zip(responses, golds)),
            "em": pct(e for e, _ in emf1), "f1": pct(f for _, f in emf1),
            "lang_rate": _pct_or_none(language_rate(responses, lang)),
            "metric_note": f"contain = first gold answer in raw response; em/f1 = MLQA rules (lang {lang}) on extracted answer"}


def score_translation(hyps, refs, tgt_lang: str, spm_path: str | None = None) -> dict:
    """BLEU (13a, or zh for Chinese), chrF++, and spBLEU (effective order) when a sentencepiece model is given."""
    tok = "zh" if tgt_lang == "zh" else "13a"
    b, c = corpus_bleu(hyps, refs, tokenize=tok), chrf(hyps, refs, word_order=2)
    out = {"n": len(hyps), "bleu": b.score, "chrf++": c.score, "lang_rate": _pct_or_none(language_rate(hyps, tgt_lang)),
           "signatures": {"bleu": b.signature, "chrf++": c.signature}}
    if spm_path:
        s = corpus_bleu(hyps, refs, tokenize=f"spm:{spm_path}", use_effective_order=True)
        out["spbleu"], out["signatures"]["spbleu"] = s.score, s.signature
    return out


# ----------------------------------------------------------------------------- model-based evaluation
@dataclass
class EvalConfig:
    model: str  # checkpoint folder (HF layout + tokenizer.model)
    task: str = "xquad"  # xquad | mlqa | flores | all
    lang: str | None = None  # language X (--task all: comma list); None: from MODEL/train_config.json
    direction: str = "en-X"  # flores: en-X (paper's main direction) or X-en
    data: str = "runs/world"  # data folder (../shared/data for the real benchmarks)
    limit: int | None = None  # first N examples only
    batch_size: int = 8  # prompts per generate() call (left-padded)
    max_new_tokens: int | None = None  # None: 64 for QA, 256 for translation
    out: str | None = None  # None: MODEL/eval/<task>-<lang>[-<direction>]
    spm: str | None = None  # spBLEU tokenizer; None: the checkpoint's tokenizer.model (not Flores-101's)
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto (bfloat16 on cuda, float32 on cpu) | float32 | bfloat16


def load_examples(task: str, lang: str, data_dir, direction: str = "en-X", limit=None) -> list[dict]:
    """Benchmark records (original fields + id + prompt pieces) for one task and language."""
    if lang not in LANGS:
        raise ValueError(f"--lang {lang!r}: expected one of {', '.join(LANGS)}")
    if task in ("xquad", "mlqa"):
        path = data.xquad_path(data_dir, lang) if task == "xquad" else data.mlqa_path(data_dir, lang)
        recs = data.read_squad(path)[:limit]
        for r in recs:
            ex = data.qa_example(r["context"], r["question"], lang)
            r["instruction"], r["input"] = ex["instruction"], ex["input"]
        return recs
    if task == "flores":
        if direction not in ("en-X", "X-en"):
            raise ValueError(f"--direction {direction!r}: expected en-X or X-en")
        src, tgt = ("en", lang) if direction == "en-X" else (lang, "en")
        if lang == "en":
            raise ValueError("--lang en: Flores is scored between English and another language X")
        srcs, refs = data.read_flores(data_dir, src), data.read_flores(data_dir, tgt)
        recs = []
        for i, (s, t) in enumerate(list(zip(srcs, refs))[:limit]):
            ex = data.translation_example(s, t, src, tgt, index=None)
            recs.append({"id": f"flores-{src}-{tgt}-{i}", "src_lang": src, "tgt_lang": tgt, "source": s,
                         "reference": t, "instruction": ex["instruction"], "input": ex["input"]})
        return recs
    raise ValueError(f"--task {task!r}: expected xquad, mlqa, flores or all")


def generate_responses(model, tok, prompts: list[str], max_new_tokens: int, device) -> tuple[list[str], int]:
    """Greedy responses for one batch: left-padded prompts + attention mask, KV-cached generate().
    Prompts longer than the context window minus max_new_tokens lose their left end (counted)."""
    keep = model.config.max_position_embeddings - max_new_tokens
    if keep < 2:
        raise ValueError(f"--max-new-tokens {max_new_tokens}: leaves no room for a prompt in the model's "
                         f"{model.config.max_position_embeddings}-position context")
    ids, cut = [], 0
    for p in prompts:
        x = [tok.bos_id] + tok.encode(p)
        if len(x) > keep:
            x, cut = [tok.bos_id] + x[len(x) - keep + 1:], cut + 1
        ids.append(x)
    T = max(len(x) for x in ids)
    idx = torch.full((len(ids), T), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), T), dtype=torch.long)
    for i, x in enumerate(ids):
        idx[i, T - len(x):], mask[i, T - len(x):] = torch.tensor(x), 1
    out = model.generate(idx.to(device), max_new_tokens, temperature=0.0, eos_id=tok.eos_id,
                         attention_mask=mask.to(device))[:, T:].tolist()
    texts = [tok.decode(row[:row.index(tok.eos_id)] if tok.eos_id in row else row) for row in out]
    return [t.strip() for t in texts], cut


def _read_jsonl(path: Path) -> list[dict]:
    out = []
    if path.is_file():
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:  # a line cut by a crash mid-write: redo that example
                    print(f"{path}:{i}: unreadable line skipped ({e.msg}); its example is generated again")
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _check_checkpoint(model_dir: Path) -> None:
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not a checkpoint folder (no config.json)")
    if not (model_dir / "tokenizer.model").is_file():
        raise FileNotFoundError(f"{model_dir}: no tokenizer.model in the checkpoint folder")


def _load_model(model_dir: Path, device: str, dtype: str = "auto"):
    _check_checkpoint(model_dir)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if dtype not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"--dtype {dtype!r}: expected auto, float32 or bfloat16")
    dtype = getattr(torch, dtype) if dtype != "auto" else (torch.bfloat16 if device == "cuda" else torch.float32)
    print(f"device {device}, dtype {str(dtype).replace('torch.', '')}")
    model = Llama.from_pretrained(model_dir, dtype=dtype, device=device).eval()
    return model, data.Tokenizer.from_folder(model_dir), device


def default_langs(model_dir: Path) -> str:
    """The languages a checkpoint was trained for, from its train_config.json (recipe muit: `langs`)."""
    path = Path(model_dir) / "train_config.json"
    if not path.is_file():
        raise ValueError(f"--lang not given and {path} does not exist to tell the model's language")
    tc = json.loads(path.read_text(encoding="utf-8"))
    langs = tc.get("langs") if tc.get("recipe") == "muit" else tc.get("lang")
    if not langs:
        raise ValueError(f"--lang not given and {path} has no 'lang'/'langs' field")
    return langs


# Settings that change the predictions: resuming under different ones would mix two experiments.
_RESUME_KEYS = ("model", "weights", "task", "lang", "direction", "data", "max_new_tokens", "dtype")


def weights_fingerprint(model_dir: Path) -> str:
    """Cheap content fingerprint of a checkpoint's weights (size + first/last 64 KiB of each file), so a
    retrained model in the same folder does not resume the old model's predictions."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted(Path(model_dir).glob("*.safetensors")) + sorted(Path(model_dir).glob("*.bin")):
        size = f.stat().st_size
        with f.open("rb") as fh:
            h.update(f"{f.name}:{size}".encode() + fh.read(1 << 16))
            fh.seek(max(0, size - (1 << 16)))
            h.update(fh.read())
    return h.hexdigest()[:16]


def _check_resume(out: Path, resolved: dict) -> None:
    """Save the resolved config beside the outputs; refuse to resume predictions made with other settings."""
    path = out / "eval_config.json"
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = [k for k in _RESUME_KEYS if str(old.get(k)) != str(resolved.get(k))]
        if diff and ((out / "predictions.jsonl").is_file() or (out / "predictions.partial.jsonl").is_file()):
            raise ValueError(f"{out}: holds predictions made with other {', '.join(diff)} "
                             f"({', '.join(f'{k}={old.get(k)}, now {resolved.get(k)}' for k in diff)}); use another --out or delete it")
    _write_atomic(path, json.dumps(resolved, indent=2) + "\n")


def run_task(cfg: EvalConfig, loaded: dict | None = None) -> dict:
    """One benchmark for one language: generate what is missing from OUT/predictions.jsonl, then score.
    The model is loaded only when something is missing (into `loaded`, shared by run_all)."""
    model_dir = Path(cfg.model)
    recs = load_examples(cfg.task, cfg.lang, cfg.data, cfg.direction, cfg.limit)  # bad input fails before loading
    _check_checkpoint(model_dir)
    loaded = {} if loaded is None else loaded
    name = f"{cfg.task}-{cfg.lang}" + (f"-{cfg.direction}" if cfg.task == "flores" else "")
    out = Path(cfg.out) if cfg.out else model_dir / "eval" / name
    out.mkdir(parents=True, exist_ok=True)
    final, partial = out / "predictions.jsonl", out / "predictions.partial.jsonl"
    max_new = cfg.max_new_tokens or (64 if cfg.task != "flores" else 256)
    _check_resume(out, {**asdict(cfg), "max_new_tokens": max_new, "weights": weights_fingerprint(model_dir)})
    done = {r["id"]: r for r in _read_jsonl(final) + _read_jsonl(partial) if "prediction" in r}
    todo = sorted((r for r in recs if r["id"] not in done), key=lambda r: -len(r["instruction"] + r["input"]))
    qa = cfg.task != "flores"
    truncated = 0
    if todo and not loaded:
        loaded["model"], loaded["tok"], loaded["device"] = _load_model(model_dir, cfg.device, cfg.dtype)
    model, tok, device = loaded.get("model"), loaded.get("tok"), loaded.get("device")
    if done:
        print(f"{out}: resuming, {sum(r['id'] in done for r in recs)} of {len(recs)} already predicted")
    with partial.open("a", encoding="utf-8") as f, tqdm(total=len(todo), desc=name, unit="ex") as bar:
        for i in range(0, len(todo), cfg.batch_size):
            batch = todo[i:i + cfg.batch_size]
            prompts = [data.format_prompt(r["instruction"], r["input"]) for r in batch]
            texts, cut = generate_responses(model, tok, prompts, max_new, device)
            truncated += cut
            for r, t in zip(batch, texts):
                done[r["id"]] = rec = {k: v for k, v in r.items() if k not in ("instruction", "input")}
                rec["prediction"] = t
                if qa:
                    rec["answer"] = extract_answer(t)
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(batch))
    rows = [done[r["id"]] for r in recs]
    _write_atomic(final, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    partial.unlink(missing_ok=True)
    preds = [r["prediction"] for r in rows]
    if qa:
        scores = score_qa(preds, [r["answers"] for r in rows], cfg.lang)
    else:
        spm_path = cfg.spm or str(model_dir / "tokenizer.model")
        scores = score_translation(preds, [r["reference"] for r in rows], rows[0]["tgt_lang"], spm_path)
    scores.update(task=cfg.task, lang=cfg.lang, direction=cfg.direction if not qa else None,
                  model=str(model_dir), data=str(cfg.data), limit=cfg.limit, max_new_tokens=max_new,
                  prompts_truncated=truncated)
    _write_atomic(out / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    print_table([scores])
    print(f"wrote {final} and {out / 'scores.json'}")
    return scores


def evaluate(model_dir, task, lang, data_dir, direction="en-X", limit=None, batch_size=8, out_dir=None, **kw) -> dict:
    """Library entry point (scaling.py, reproduce.py). One task -> its scores dict; task "all" ->
    {"<task>-<lang>[-<direction>]": scores} for every benchmark present in data_dir."""
    cfg = EvalConfig(model=str(model_dir), task=task, lang=lang, data=str(data_dir), direction=direction,
                     limit=limit, batch_size=batch_size, out=None if out_dir is None else str(out_dir), **kw)
    if cfg.lang is None:
        cfg.lang = default_langs(cfg.model)
    return run_all(cfg) if task == "all" else run_task(cfg)


def run_all(cfg: EvalConfig) -> dict:
    """Every benchmark available in cfg.data for each language of cfg.lang (comma-separated)."""
    langs = [l.strip() for l in cfg.lang.split(",") if l.strip()]
    for l in langs:
        if l not in LANGS:
            raise ValueError(f"--lang {l!r}: expected one of {', '.join(LANGS)}")
    _check_checkpoint(Path(cfg.model))  # before the loop turns missing files into "skipped"
    loaded, results = {}, {}
    for l in langs:
        jobs = [("xquad", "en-X"), ("mlqa", "en-X")] + ([("flores", "en-X"), ("flores", "X-en")] if l != "en" else [])
        for task, d in jobs:
            key = f"{task}-{l}" + (f"-{d}" if task == "flores" else "")
            sub = EvalConfig(**{**asdict(cfg), "task": task, "lang": l, "direction": d,
                                "out": None if cfg.out is None else str(Path(cfg.out) / key)})
            try:
                results[key] = run_task(sub, loaded)
            except FileNotFoundError as e:  # this benchmark's file is not in --data
                print(f"skipped {task} {l}: {e}")
    print_paper_table(results, langs)
    return results


def print_table(rows: list[dict]) -> None:
    cols = ["task", "lang", "direction", "n", "contain", "em", "f1", "bleu", "chrf++", "spbleu", "lang_rate"]
    cols = [c for c in cols if any(r.get(c) is not None for r in rows)]
    cell = lambda v: f"{v:.2f}" if isinstance(v, float) else ("" if v is None else str(v))
    table = [cols] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    for row in table:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def print_paper_table(results: dict, langs: list[str]) -> None:
    """Rows = languages, columns as the paper: XQuAD / MLQA containment, Flores en->X and X->en BLEU."""
    heads = [("xquad", "contain", "XQuAD acc"), ("mlqa", "contain", "MLQA acc"),
             ("flores-en-X", "bleu", "Flores en→X BLEU"), ("flores-X-en", "bleu", "Flores X→en BLEU")]
    print("\n| lang | " + " | ".join(h for _, _, h in heads) + " |\n|---" * (len(heads) + 1) + "|")
    for l in langs:
        vals = []
        for key, metric, _ in heads:
            t, _, d = key.partition("-")
            r = results.get(f"{t}-{l}" + (f"-{d}" if d else ""))
            vals.append("-" if r is None else f"{r[metric]:.2f}")
        print(f"| {l} | " + " | ".join(vals) + " |")


# ----------------------------------------------------------------------------- command line
def _read_side(path: str, field: str, qa: bool) -> list:
    """Hypotheses or references: a predictions.jsonl (field `field`) or a text file, one example a
    line (QA references: gold answers separated by TABs)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file not found")
    if p.suffix == ".jsonl":
        rows = _read_jsonl(p)
        for i, r in enumerate(rows, 1):
            if field not in r:
                raise ValueError(f"{p}:{i}: missing field {field!r}")
        return [r[field] for r in rows]
    text = p.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    return [l.split("\t") for l in lines] if qa and field != "prediction" else lines


def score_files(metric: str, hyp: str, ref: str, lang: str | None = None, tokenize: str | None = None,
                word_order: int = 0, smooth: str = "exp", effective_order: bool = False) -> dict:
    """`python evaluate.py score ...` as a function: {"metric", "score", "signature", ...}."""
    qa = metric in ("squad", "mlqa", "contain")
    if metric not in ("bleu", "chrf", "squad", "mlqa", "contain"):
        raise ValueError(f"--metric {metric!r}: expected bleu, chrf, squad, mlqa or contain")
    if lang is not None and lang not in LANGS:
        raise ValueError(f"--lang {lang!r}: expected one of {', '.join(LANGS)}")
    hyps = _read_side(hyp, "prediction", qa)
    refs = _read_side(ref, "answers" if qa else "reference", qa)
    if len(hyps) != len(refs):
        raise ValueError(f"{hyp}: {len(hyps)} hypotheses but {ref} has {len(refs)} references (must be line-aligned)")
    if metric == "bleu":
        tok = tokenize or ("zh" if lang == "zh" else "13a")
        r = corpus_bleu(hyps, refs, tokenize=tok, smooth=smooth, use_effective_order=effective_order)
        return {"metric": "bleu", "score": r.score, "signature": r.signature, "detail": str(r)}
    if metric == "chrf":
        r = chrf(hyps, refs, word_order=word_order)
        return {"metric": "chrf", "score": r.score, "signature": r.signature}
    if metric == "contain":
        s = 100.0 * sum(containment(h, g) for h, g in zip(hyps, refs)) / max(len(hyps), 1)
        return {"metric": "contain", "score": s, "signature": f"contain|first-gold|lowercase|version:{VERSION}"}
    if metric == "mlqa" and lang is None:
        raise ValueError("--metric mlqa needs --lang (the normalisation is per language)")
    pairs = [squad_em_f1(extract_answer(h), g) if metric == "squad" else mlqa_em_f1(extract_answer(h), g, lang)
             for h, g in zip(hyps, refs)]
    em, f1 = (100.0 * sum(x[i] for x in pairs) / max(len(pairs), 1) for i in (0, 1))
    sig = f"{metric}|em-f1|{'lang:' + lang + '|' if metric == 'mlqa' else ''}answer:extracted|version:{VERSION}"
    return {"metric": metric, "score": f1, "em": em, "f1": f1, "signature": sig,
            "detail": f"{metric} EM = {em:.2f} F1 = {f1:.2f}  {sig}"}


def _score_main(argv) -> None:
    p = argparse.ArgumentParser(prog="evaluate.py score", description="Score hypothesis files against references.")
    p.add_argument("--metric", required=True, choices=["bleu", "chrf", "squad", "mlqa", "contain"], help="what to compute")
    p.add_argument("--hyp", required=True, help="hypotheses: text file (one a line) or predictions.jsonl")
    p.add_argument("--ref", required=True, help="references: text file (QA: golds TAB-separated) or predictions.jsonl")
    p.add_argument("--lang", help="language of the references (mlqa: required; bleu: zh selects the zh tokenizer)")
    p.add_argument("--tokenize", help="BLEU tokenizer: 13a, zh, none or spm:PATH (default 13a, zh for --lang zh)")
    p.add_argument("--word-order", type=int, default=0, help="chrF word n-gram order: 0 = chrF, 2 = chrF++")
    p.add_argument("--smooth", default="exp", choices=sorted(SMOOTH_DEFAULTS), help="BLEU smoothing")
    p.add_argument("--effective-order", action="store_true", help="BLEU with effective order (spBLEU uses it)")
    p.add_argument("--json", action="store_true", help='print {"metric","score","signature",...} as JSON')
    a = p.parse_args(argv)
    r = score_files(a.metric, a.hyp, a.ref, a.lang, a.tokenize, a.word_order, a.smooth, a.effective_order)
    print(json.dumps(r, ensure_ascii=False) if a.json else r.get("detail", f"{r['metric']} = {r['score']:.2f}  {r['signature']}"))


def _eval_main(argv) -> None:
    p = argparse.ArgumentParser(prog="evaluate.py", description="Evaluate a checkpoint on XQuAD / MLQA / Flores-101 "
                                "(or `evaluate.py score --help` to score files).")
    p.add_argument("--model", required=True, help="checkpoint folder (config.json, model.safetensors, tokenizer.model)")
    p.add_argument("--task", default="xquad", choices=["xquad", "mlqa", "flores", "all"], help="benchmark")
    p.add_argument("--lang", help=f"language X, one of {' '.join(LANGS)} (--task all: comma list; "
                   "default: the model's, from its train_config.json)")
    p.add_argument("--direction", default="en-X", choices=["en-X", "X-en"], help="Flores translation direction")
    p.add_argument("--data", default="runs/world", help="data folder (../shared/data for the real benchmarks)")
    p.add_argument("--limit", type=int, help="evaluate the first N examples only")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch")
    p.add_argument("--max-new-tokens", type=int, help="generation length (default 64 for QA, 256 for Flores)")
    p.add_argument("--out", help="output folder (default MODEL/eval/<task>-<lang>[-<direction>])")
    p.add_argument("--spm", help="sentencepiece model for spBLEU (default: the checkpoint's tokenizer.model)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="weights/activations dtype (auto: bfloat16 on cuda, float32 on cpu)")
    a = p.parse_args(argv)
    if a.limit is not None and a.limit < 1 or a.batch_size < 1:
        p.error("--limit and --batch-size must be positive")
    cfg = EvalConfig(model=a.model, task=a.task, lang=a.lang, direction=a.direction, data=a.data, limit=a.limit,
                     batch_size=a.batch_size, max_new_tokens=a.max_new_tokens, out=a.out, spm=a.spm, device=a.device,
                     dtype=a.dtype)
    if cfg.lang is None:
        cfg.lang = default_langs(cfg.model)
    run_all(cfg) if cfg.task == "all" else run_task(cfg)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        _score_main(argv[1:]) if argv[:1] == ["score"] else _eval_main(argv)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
