"""Metrics of the x-LLaMA paper's benchmarks, written from scratch (Python only: no torch, no
sacrebleu at run time): BLEU / spBLEU / chrF / chrF++ for Flores-101, containment and EM/F1 for
XQuAD/MLQA, answer extraction, the share of responses in a language (data.in_language tells
which), and the chance level of extractive QA.

    import metrics
    metrics.corpus_bleu(hyps, refs, tokenize="13a")         # .score, .signature, .counts, .bp ...
    metrics.chrf(hyps, refs, word_order=2)                  # chrF++
    metrics.score_qa(responses, golds, "de")                # evaluate.py's XQuAD/MLQA scores
    metrics.score_translation(hyps, refs, "zh", spm_path)   # what evaluate.py reports for Flores

    python evaluate.py score --metric bleu --hyp hyp.txt --ref ref.txt [--tokenize 13a|zh|spm:PATH]
    python evaluate.py score --metric chrf --hyp hyp.txt --ref ref.txt [--word-order 2] [--json]

(`evaluate.py score` scores files, no model.) Each function follows sacreBLEU 2.x or the official
script it names; its comments give the exact rules, docs/evaluation.md the prose (spBLEU uses the
checkpoint's tokenizer.model, not the paper's; signatures end in `version:xllama-1`). Checked in
tests/test_metrics.py: parity with sacrebleu 2.6.0 on perturbed Flores-101 devtest lines for every
BLEU, chrF and tokenizer variant, the SQuAD v1.1 and MLQA rules on worked examples of the official
scripts, data.response_language on Flores-101 devtest references.
"""
from __future__ import annotations

import math
import re
import string
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from data import in_language

VERSION = "xllama-1"  # the `version:` field of our signatures; never sacreBLEU's number
MLQA_LANGS = ("en", "ar", "de", "es", "hi", "vi", "zh")  # the official MLQA script's seven
QA_LANGS = MLQA_LANGS + ("el", "tr")  # mlqa_em_f1 takes XQuAD's el and tr too (no articles)


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
        for entity, ch in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
            line = line.replace(entity, ch)
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


# Code points sacreBLEU's zh tokenizer makes single-character tokens. Its table writes two ranges
# as "\u20000".."\u2a6d6" (two-character strings), which select U+2001..U+2A6D (punctuation,
# arrows, math ...) instead of CJK Extension B: reproduced on purpose, for score parity.
_ZH_RANGES = [(0x3400, 0x4DB5), (0x4E00, 0x9FA5), (0x9FA6, 0x9FBB), (0xF900, 0xFA2D),
              (0xFA30, 0xFA6A), (0xFA70, 0xFAD9), (0x2001, 0x2A6D), (0x2F81, 0x2FA1),
              (0xFF00, 0xFFEF), (0x2E80, 0x2EFF), (0x3000, 0x303F), (0x31C0, 0x31EF),
              (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF), (0x3100, 0x312F), (0x31A0, 0x31BF),
              (0xFE10, 0xFE1F), (0xFE30, 0xFE4F), (0x2600, 0x26FF), (0x2700, 0x27BF),
              (0x3200, 0x32FF), (0x3300, 0x33FF)]


@lru_cache(maxsize=2**16)
def tokenize_zh(line: str) -> str:
    zh = lambda ch: any(lo <= ord(ch) <= hi for lo, hi in _ZH_RANGES)  # noqa: E731
    return tokenize_13a("".join(f" {ch} " if zh(ch) else ch for ch in line.strip()))


@lru_cache(maxsize=8)
def _spm(path: str):
    import sentencepiece as spm
    if not Path(path).is_file():
        raise ValueError(f"--tokenize spm:{path}: no sentencepiece model at that path")
    try:
        return spm.SentencePieceProcessor(model_file=path)
    except (RuntimeError, OSError):  # sentencepiece's own message is a multi-line C++ dump
        raise ValueError(f"--tokenize spm:{path}: not a sentencepiece model") from None


def get_tokenizer(name: str):
    """'13a' | 'zh' | 'none' | 'spm:PATH' -> callable(str) -> space-separated tokens."""
    if name.startswith("spm:"):
        sp = _spm(name[4:])
        return lambda s: " ".join(sp.encode(s, out_type=str))
    if name not in ("13a", "zh", "none"):
        raise ValueError(f"--tokenize {name!r}: expected 13a, zh, none or spm:PATH")
    return {"13a": tokenize_13a, "zh": tokenize_zh, "none": lambda s: s}[name]


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
        ratio = self.sys_len / max(self.ref_len, 1)
        return (f"BLEU = {self.score:.2f} {p} (BP = {self.bp:.3f} ratio = {ratio:.3f} "
                f"hyp_len = {self.sys_len} ref_len = {self.ref_len})  {self.signature}")


def _ngrams(seq, n: int) -> Counter:
    """The n-grams of a string (as strings: chrF's characters) or a list (as tuples: words)."""
    return Counter(seq[i:i + n] if isinstance(seq, str) else tuple(seq[i:i + n])
                   for i in range(len(seq) - n + 1))


def _bleu_stats(hyp: str, ref: str, max_n: int = 4) -> list[int]:
    """[hyp_len, ref_len, correct_1..n, total_1..n] of one tokenized sentence pair."""
    h, r = hyp.split(), ref.split()
    correct, total = [0] * max_n, [0] * max_n
    for n in range(1, max_n + 1):
        hc, rc = _ngrams(h, n), _ngrams(r, n)
        total[n - 1] = sum(hc.values())
        correct[n - 1] = sum(min(c, rc[g]) for g, c in hc.items() if g in rc)
    return [len(h), len(r)] + correct + total


def _bleu_from_stats(stats, smooth="exp", smooth_value=None, effective_order=False,
                     max_n=4) -> BLEUResult:
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
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references: they must be "
                         "line-aligned")


def corpus_bleu(hyps, refs, tokenize="13a", smooth="exp", smooth_value=None,
                use_effective_order=False) -> BLEUResult:
    """Corpus BLEU of line-aligned hypotheses and one reference each, sacreBLEU 2.x rules."""
    _check_lengths(hyps, refs)
    tok = get_tokenizer(tokenize)
    stats = [sum(c) for c in zip([0] * 10, *(_bleu_stats(tok(h.rstrip()), tok(r.rstrip()))
                                            for h, r in zip(hyps, refs)))]
    res = _bleu_from_stats(stats, smooth, smooth_value, use_effective_order)
    name = f"spm-{Path(tokenize[4:]).stem}" if tokenize.startswith("spm:") else tokenize
    res.signature = (f"BLEU|nrefs:1|case:mixed|eff:{'yes' if use_effective_order else 'no'}"
                     f"|tok:{name}|smooth:{smooth}|version:{VERSION}")
    return res


def sentence_bleu(hyp, ref, tokenize="13a", smooth="exp", smooth_value=None,
                  use_effective_order=True) -> BLEUResult:
    """BLEU of one sentence: corpus BLEU of a corpus of one, with effective order by default."""
    return corpus_bleu([hyp], [ref], tokenize, smooth, smooth_value, use_effective_order)


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
    hw, rw = _chrf_words(hyp), _chrf_words(ref)
    grams = [(_ngrams(hc, n), _ngrams(rc, n)) for n in range(1, char_order + 1)]
    grams += [(_ngrams(hw, n), _ngrams(rw, n)) for n in range(1, word_order + 1)]
    for h, r in grams:
        # a hypothesis's n-grams count only where the reference has that order (sacreBLEU): a
        # one-word zh reference adds no word bigrams to the totals, however the hypothesis is spaced
        n_hyp = sum(h.values()) if r else 0
        stats += [n_hyp, sum(r.values()), sum(min(c, r[g]) for g, c in h.items() if g in r)]
    return stats


def _chrf_from_stats(stats, beta=2) -> float:
    """Precision and recall averaged over the orders present on both sides, then F-beta."""
    f, avg_p, avg_r, eff = beta ** 2, 0.0, 0.0, 0
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
    """Corpus chrF (word_order=0), chrF+ (1) or chrF++ (2); statistics summed over sentences."""
    if not (isinstance(word_order, int) and 0 <= word_order <= 2):  # the variants Popović defined
        raise ValueError(f"--word-order {word_order}: expected 0 (chrF), 1 (chrF+) or 2 (chrF++)")
    if isinstance(hyps, str):
        hyps, refs = [hyps], [refs]
    _check_lengths(hyps, refs)
    total = [sum(c) for c in zip(*(_chrf_stats(h, r, char_order, word_order)
                                   for h, r in zip(hyps, refs)))]
    name = f"chrF{beta}" + "+" * word_order  # sacreBLEU's naming
    return ChrFResult(_chrf_from_stats(total, beta), f"{name}|nrefs:1|case:mixed|eff:yes"
                      f"|nc:{char_order}|nw:{word_order}|space:no|version:{VERSION}")


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


def _em_f1(pred: str, golds, tokens) -> tuple[float, float]:
    """(EM, F1) in 0..1, max over gold answers (one string or several); `tokens` normalises."""
    golds = [golds] if isinstance(golds, str) else list(golds)
    p = tokens(pred)
    em = max(float(" ".join(p) == " ".join(tokens(g))) for g in golds)
    return em, max(_f1(p, tokens(g)) for g in golds)


def squad_em_f1(pred: str, golds) -> tuple[float, float]:
    """(EM, F1) in 0..1 for one prediction, max over gold answers (official SQuAD v1.1)."""
    return _em_f1(pred, golds, lambda s: _squad_normalize(s).split())


_UNICODE_PUNCT = {chr(i) for i in range(sys.maxunicode + 1)
                  if unicodedata.category(chr(i)).startswith("P")}
_UNICODE_PUNCT |= _ASCII_PUNCT  # MLQA adds string.punctuation ($+<=>^`|~ are symbols, not P*)
# MLQA's per-language article patterns; none for hi and zh, nor for el and tr (not in MLQA)
_ARTICLES = {
    "en": r"\b(a|an|the)\b", "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "ar": r"\sال^|ال",  # official pattern: in effect removes EVERY "ال", not only the prefix
}
_HAN = re.compile(r"[\u4e00-\u9fa5]")


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA's zh tokens: every Han character (and punctuation mark), the rest split on spaces."""
    out, buf = [], ""
    for ch in text:
        if _HAN.match(ch) or ch in _UNICODE_PUNCT:
            out, buf = out + buf.split() + [ch], ""
        else:
            buf += ch
    return out + buf.split()


def mlqa_normalize(s: str, lang: str) -> list[str]:
    """Official MLQA normalisation -> tokens: lower, drop P* punctuation, drop articles, segment."""
    if lang not in QA_LANGS:
        raise ValueError(f"--lang {lang!r}: expected one of {', '.join(QA_LANGS)}")
    s = "".join(ch for ch in s.lower() if ch not in _UNICODE_PUNCT)
    if lang in _ARTICLES:
        s = re.sub(_ARTICLES[lang], " ", s)
    toks = _mixed_segmentation(s) if lang == "zh" else s.split()
    return [t for t in toks if t.strip()]


def mlqa_em_f1(pred: str, golds, lang: str) -> tuple[float, float]:
    """(EM, F1) in 0..1, max over gold answers, with MLQA's rules for `lang`."""
    return _em_f1(pred, golds, lambda s: mlqa_normalize(s, lang))


def containment(pred: str, golds) -> float:
    """The paper's QA metric: is the lower-cased FIRST gold answer in the lower-cased prediction?"""
    first = golds if isinstance(golds, str) else golds[0]
    return float(first.lower() in pred.lower())


ANSWER_LABELS = ("response", "answer", "output")  # Alpaca's section names a model may echo


@lru_cache(maxsize=64)
def _label_pattern(labels: tuple[str, ...]):
    names = "|".join(map(re.escape, labels))
    return re.compile(r"^\s*(#{1,4}\s*)?(" + names + r")\s*[:：]\s*", re.IGNORECASE)


def extract_answer(text: str, labels: tuple[str, ...] = ANSWER_LABELS) -> str:
    """Text after the last echoed "### Response:", first non-empty line, a leading label
    ("Answer:", "### Response:", evaluate.py's "Antwort:", "答案：" ...) removed; "" if none."""
    if "### Response:" in text:
        text = text.rsplit("### Response:", 1)[1]
    pattern = _label_pattern(tuple(sorted({l.lower() for l in labels})))
    for line in text.splitlines():
        line = pattern.sub("", line).strip()
        if line:
            return line
    return ""


# ----------------------------------------------------------------------------- response language
def language_rate(texts, lang: str) -> float | None:
    """Share (0..1) of the decidable texts (in_language not None) in `lang`; None if none is."""
    found = [x for x in (in_language(t, lang) for t in texts) if x is not None]
    return sum(found) / len(found) if found else None


# ----------------------------------------------------------------------------- a task's scores
def percent(x):
    """A 0..1 share in percent; None (nothing decidable) stays None."""
    return None if x is None else 100.0 * x


def score_qa(responses, golds, lang: str, labels: tuple[str, ...] = ANSWER_LABELS) -> dict:
    """The QA scores reported for XQuAD/MLQA, in percent: containment on the raw response (paper),
    EM/F1 with MLQA rules on extract_answer(response, labels), share of responses in `lang`."""
    n = len(responses)
    emf1 = [mlqa_em_f1(extract_answer(r, labels), g, lang) for r, g in zip(responses, golds)]
    pct = lambda xs: 100.0 * sum(xs) / max(n, 1)
    return {"n": n, "contain": pct(containment(r, g) for r, g in zip(responses, golds)),
            "em": pct(e for e, _ in emf1), "f1": pct(f for _, f in emf1),
            "lang_rate": percent(language_rate(responses, lang)),
            "metric_note": f"contain = first gold answer in raw response; em/f1 = MLQA rules "
                           f"(lang {lang}) on extracted answer"}


def score_translation(hyps, refs, tgt_lang: str, spm_path: str | None = None) -> dict:
    """BLEU (13a; zh for Chinese), chrF++, and spBLEU (effective order) given an spm model."""
    tok = "zh" if tgt_lang == "zh" else "13a"
    b, c = corpus_bleu(hyps, refs, tokenize=tok), chrf(hyps, refs, word_order=2)
    out = {"n": len(hyps), "bleu": b.score, "chrf++": c.score,
           "lang_rate": percent(language_rate(hyps, tgt_lang)),
           "signatures": {"bleu": b.signature, "chrf++": c.signature}}
    if spm_path:
        s = corpus_bleu(hyps, refs, tokenize=f"spm:{spm_path}", use_effective_order=True)
        out["spbleu"], out["signatures"]["spbleu"] = s.score, s.signature
    return out


def score_closedbook(rows: list[dict], lang: str) -> dict:
    """score_qa plus, overall and per relation: chance (mean of 1 / size of the answer's class),
    majority (always the relation's most frequent tuning answer) and, for X questions,
    right_in_en (the English word of the right answer in the response)."""
    pct = lambda xs: 100.0 * sum(xs) / max(len(xs), 1)

    def extra(rs):
        out = {"n": len(rs), "chance": pct([1 / r["n_classes"] for r in rs]),
               "majority": pct([r["answers"][0] == r["majority"] for r in rs])}
        if lang != "en":
            out["right_in_en"] = pct([bool(re.search(rf"\b{re.escape(r['answer_en'])}\b",
                                                     r["prediction"], re.I)) for r in rs])
        return out
    qa = lambda rs: score_qa([r["prediction"] for r in rs], [r["answers"] for r in rs], lang)
    scores = {**qa(rows), **extra(rows), "by_relation": {}}
    for rel in dict.fromkeys(r["relation"] for r in rows):
        rs = [r for r in rows if r["relation"] == rel]
        s = qa(rs)
        scores["by_relation"][rel] = {"contain": s["contain"], "em": s["em"], **extra(rs)}
    return scores


# -------------------------------------------------------------------- chance level of extractive QA
def question_frames(questions: list[str], lang: str, min_share: float = 0.05) -> list[tuple]:
    """Each question without its rare tokens: the words (MLQA-normalised; character bigrams for
    Chinese) found in at least `min_share` of the test's questions and in two. Names are rare, the
    words saying what is asked are not, so questions after the same kind of answer share a frame
    ("What is the favorite color of X?" -> (color, favorite, is, of, what))."""
    def tokens(q):
        t = mlqa_normalize(q, lang)
        return set(zip(t, t[1:])) if lang == "zh" else set(t)
    toks = [tokens(q) for q in questions]
    df = Counter(t for s in toks for t in s)
    keep = max(2.0, min_share * len(questions))
    return [tuple(sorted(t for t in s if df[t] >= keep)) for s in toks]


def qa_chance(questions: list[str], golds: list[list[str]], lang: str) -> float:
    """Chance level (%) of containment: the expected score of answering each question with the
    first gold answer of a random other question of the same frame (of any other question when
    none shares it): a model that knows which kind of answer is asked, and the test's answers of
    that kind, but does not read the passage. On the world's XQuAD (fresh names): about 0.1 %."""
    frames, n = question_frames(questions, lang), len(questions)
    total = 0.0
    for i, f in enumerate(frames):
        pool = [j for j in range(n) if j != i and frames[j] == f] or [j for j in range(n) if j != i]
        total += sum(containment(golds[j][0], golds[i]) for j in pool) / max(len(pool), 1)
    return 100.0 * total / max(n, 1)
