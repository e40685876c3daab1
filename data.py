"""Data: the datasets' file formats, the paper's instruction wording, and benchmark records.

Everything between files on disk and examples in words (docs/data.md); tokenizer.py turns them
into ids and batches. The folder layout, the same for the real data in ../shared/data and for the
miniature world written by world.py:

    DATA/alpaca/alpaca_<lang>.json           JSON list (or .jsonl) of {instruction,input,output}
    DATA/parallel/en-<lang>/<stem>.eng + .<lang>      line-aligned pairs; several stems, one corpus
    DATA/xquad/xquad.<lang>.json                    SQuAD v1.1 format
    DATA/mlqa/dev/dev-context-<l>-question-<l>.json SQuAD format
    DATA/flores101/devtest/<code>.devtest           one sentence a line, aligned across languages

What train.py does with it (the recipes are mixture.py's, the ids and batches tokenizer.py's):

    tok = Tokenizer.from_folder("runs/base")
    mix = build_mixture("coit", "runs/world", ["de"], n_translation=2000, seed=0)
    enc, dropped = encode_examples(tok, mix, max_len=512)
    for ex_list in iterate_batches(enc, max_tokens=8192, seed=0, epoch=0):
        batch = make_batch(ex_list, tok.pad_id)     # idx, targets (shifted, -100), attention_mask

evaluate.py reads its benchmark records through load_examples. The translation paraphrases and
the QA wording are our own (the paper's strings are not published in a form we could read); the
QA layout follows the official code. No torch here: metrics.py may import it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import cli
from cli import UsageError

LANGS = ("en", "de", "zh", "ar", "el", "hi", "tr", "vi")
LANG_NAMES = {"en": "English", "de": "German", "zh": "Chinese", "ar": "Arabic", "el": "Greek",
              "hi": "Hindi", "tr": "Turkish", "vi": "Vietnamese"}
MLQA_DATA_LANGS = ("en", "de", "zh", "ar", "hi", "vi")  # those of LANGS that MLQA has test data for
FLORES_CODES = {"en": "eng", "de": "deu", "zh": "zho_simpl", "ar": "ara", "el": "ell", "hi": "hin",
                "tr": "tur", "vi": "vie"}


DataError = UsageError  # bad input data: one line naming the file and the record (exit 2)


def check_lang(lang: str, allow_en: bool = True) -> str:
    ok = ",".join(l for l in LANGS if allow_en or l != "en")
    if lang not in LANGS:
        raise DataError(f"unknown language code {lang!r} (expected one of {ok})")
    if lang == "en" and not allow_en:
        raise DataError(f"language code 'en' is not accepted here (expected a non-English one "
                        f"of {ok})")
    return lang



def check_langs(spec: str, flag: str = "--langs") -> list[str]:
    """A comma list of distinct non-English languages, e.g. "ar,hi,zh"; one UsageError naming
    `flag` otherwise."""
    langs = spec.split(",")
    bad = [x for x in langs if x not in LANGS or x == "en"]
    if bad or len(set(langs)) != len(langs):
        unknown = f" (unknown: {','.join(bad)})" if bad else ""
        raise UsageError(f"{flag} {spec}: expected distinct languages from "
                         f"{','.join(LANGS[1:])}{unknown}")
    return langs

# -------------------------------------------------------------------------- the language of a text
_SCRIPTS = {k: re.compile(v) for k, v in {
    "zh": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]",
    "ar": r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]",
    "el": r"[\u0370-\u03ff\u1f00-\u1fff]", "hi": r"[\u0900-\u097f]"}.items()}


_LATIN = re.compile(r"[a-zA-Z\u00c0-\u024f\u1e00-\u1eff]")


# Latin script: letters only that language uses (among en/de/tr/vi), and frequent function words
_MARKS = {"de": set("äß"), "tr": set("ığşçİ"),
          "vi": set("ăâđêôơư") | {chr(c) for c in range(0x1EA0, 0x1EFA)}}


_STOP = {
    "en": ("the and of to is in that it for was on are with as this be by not or have from what "
           "which").split(),
    "de": ("der die das und ist nicht ein eine zu mit den von auf für sich dem auch es im wird "
           "sind wurde werden hatte vom bis als nach bei aus er sie wir ich zum zur einen einer "
           "eines am").split(),
    "tr": ("ve bir bu için ile da de çok olarak daha gibi ne var en mi olan ama kadar sonra değil "
           "veya").split(),
    "vi": "và của là có không những được cho trong một các người này với đã để khi thì".split(),
}


def response_language(text: str) -> str | None:
    """Language code (en de zh ar el hi tr vi) a text is written in; None when undecidable (no
    letters, or Latin letters without any characteristic letter or stopword, e.g. "Berlin").
    A non-Latin script wins with at least a third of the letters; else each of en/de/tr/vi scores
    2 per characteristic letter (ö ü: 1 each for de and tr) plus 1 per stopword, English on ties."""
    counts = {k: len(p.findall(text)) for k, p in _SCRIPTS.items()}
    total = len(_LATIN.findall(text)) + sum(counts.values())
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
    for lang in ("de", "tr"):
        score[lang] += sum(ch in "öü" for ch in low)  # shared by de and tr
    best = max(score, key=lambda k: (score[k], k == "en"))
    return best if score[best] > 0 else None


def in_language(text: str, lang: str) -> bool | None:
    """Is text written in lang? None when undecidable. A text with letters but none of a non-Latin
    target's script is decidably not in it (a bare "Berlin" is not Chinese, but may be German)."""
    found = response_language(text)
    foreign = lang in _SCRIPTS and _LATIN.search(text) and not _SCRIPTS[lang].search(text)
    if found is None and foreign:
        return False
    return None if found is None else found == lang


# ------------------------------------------------------------------------------------- readers
def read_text(path, allow_empty: bool = False, what: str = "a UTF-8 text file") -> str:
    """cli.read_text, the one reader of text: a UTF-8 file, or one line saying what is wrong."""
    return cli.read_text(path, what, allow_empty)


def _read_lines(path: Path) -> list[str]:
    lines = read_text(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [l[:-1] if l.endswith("\r") else l for l in lines]
    for i, line in enumerate(lines):
        if not line.strip():
            raise DataError(f"{path}: line {i + 1} is empty")
    return lines


def load_json(path: Path, what: str = "a JSON file"):
    """cli.read_json: one line with the line and column of what is wrong."""
    return cli.read_json(path, what)


def read_alpaca(path) -> list[dict]:
    """A JSON list (or JSON-lines file) of {instruction, input, output}; other fields dropped."""
    path = Path(path)
    if path.suffix == ".jsonl":
        records, where = [], []
        for i, line in enumerate(read_text(path).splitlines()):
            if line.strip():
                records.append(cli.parse_json(line, f"{path} line {i + 1}",
                                                "an Alpaca record"))
                where.append(f"line {i + 1}")
    else:
        records = load_json(path)
        if not isinstance(records, list):
            raise DataError(f"{path}: expected a JSON list of {{instruction,input,output}}, got "
                            f"{type(records).__name__}")
        where = [f"record {i}" for i in range(len(records))]
    if not records:
        raise DataError(f"{path}: no examples")
    out = []
    for r, w in zip(records, where):
        if not isinstance(r, dict):
            raise DataError(f"{path}: {w}: expected an object, got {type(r).__name__}")
        for k in ("instruction", "input", "output"):
            if k not in r:
                raise DataError(f"{path}: {w}: missing field {k!r}")
            if not isinstance(r[k], str):
                raise DataError(f"{path}: {w}: field {k!r} must be a string")
        out.append({"instruction": r["instruction"], "input": r["input"], "output": r["output"]})
    return out


def read_parallel_files(src: Path, tgt: Path) -> list[tuple[str, str]]:
    a, b = _read_lines(src), _read_lines(tgt)
    if len(a) != len(b):
        raise DataError(f"unequal parallel files: {src} has {len(a)} lines but {tgt} has {len(b)}")
    return list(zip(a, b))


def read_parallel(data_dir, lang: str) -> list[tuple[str, str]]:
    """All (english, X) pairs of DATA/parallel/en-<lang>, each <stem>.eng with its <stem>.<lang>."""
    check_lang(lang, allow_en=False)
    folder = Path(data_dir) / "parallel" / f"en-{lang}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: parallel folder not found")
    eng = {p.name[:-4] for p in folder.iterdir() if p.name.endswith(".eng")}
    xx = {p.name[:-len(lang) - 1] for p in folder.iterdir() if p.name.endswith(f".{lang}")}
    if eng != xx:
        odd = sorted(eng ^ xx)[0]
        have, miss = (("eng", lang) if odd in eng else (lang, "eng"))
        raise DataError(f"{folder}: {odd}.{have} has no partner {odd}.{miss}")
    if not eng:
        raise DataError(f"{folder}: no <stem>.eng/<stem>.{lang} pairs")
    pairs = []
    for stem in sorted(eng):
        pairs += read_parallel_files(folder / f"{stem}.eng", folder / f"{stem}.{lang}")
    return pairs


def read_squad(path) -> list[dict]:
    """SQuAD-format JSON (XQuAD, MLQA) -> flat list of questions with their context and answers."""
    path = Path(path)
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{path}: missing field 'data' or not a list (expected SQuAD format)")
    out = []
    for a, art in enumerate(doc["data"]):
        for p, par in enumerate(_field(art, "paragraphs", path, f"data[{a}]", list)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(par, "context", path, where, str)
            for q, qa in enumerate(_field(par, "qas", path, where, list)):
                w = f"{where}.qas[{q}]"
                if isinstance(qa, dict) and isinstance(qa.get("id"), str):
                    w += f" (id {qa['id']!r})"  # the id finds the record in the file
                answers = _field(qa, "answers", path, w, list)
                if not answers:
                    raise DataError(f"{path}: {w}: no answers")
                texts, starts = [], []
                for i, x in enumerate(answers):
                    texts.append(_field(x, "text", path, f"{w}.answers[{i}]", str))
                    starts.append(_field(x, "answer_start", path, f"{w}.answers[{i}]", int))
                    if not 0 <= starts[-1] <= len(context) - len(texts[-1]):
                        raise DataError(f"{path}: {w}.answers[{i}]: field 'answer_start' = "
                                        f"{starts[-1]} puts the {len(texts[-1])}-character "
                                        f"answer outside the {len(context)}-character context")
                out.append({"id": _field(qa, "id", path, w, str), "title": art.get("title", ""),
                            "context": context, "question": _field(qa, "question", path, w, str),
                            "answers": texts, "answer_starts": starts})
    if not out:
        raise DataError(f"{path}: no questions")
    return out


def _field(record, name: str, path: Path, where: str, kind: type):
    if not isinstance(record, dict) or name not in record:
        raise DataError(f"{path}: {where}: missing field {name!r}")
    v = record[name]
    if not isinstance(v, kind) or isinstance(v, bool):  # bool is an int to isinstance
        expected = {int: "a whole number", str: "a string", list: "a list"}[kind]
        shown = json.dumps(v, ensure_ascii=False)[:40]
        raise DataError(f"{path}: {where}: field {name!r} is {shown}, expected {expected}")
    return v


def read_flores(data_dir, lang: str) -> list[str]:
    """Flores-101 devtest sentences of one language (DATA/flores101/devtest/<code>.devtest)."""
    return _read_lines(flores_path(data_dir, lang))


def flores_path(data_dir, lang: str) -> Path:
    code = FLORES_CODES[check_lang(lang)]
    d = Path(data_dir)  # DATA or the devtest folder itself
    folder = d if (d / f"{code}.devtest").is_file() else d / "flores101" / "devtest"
    return _must_exist(folder / f"{code}.devtest", "Flores-101 devtest")


def _must_exist(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} file not found")
    return path


def xquad_path(data_dir, lang: str) -> Path:
    return _must_exist(Path(data_dir) / "xquad" / f"xquad.{check_lang(lang)}.json", "XQuAD")


def mlqa_path(data_dir, lang: str, split: str = "dev") -> Path:
    l = check_lang(lang)
    return _must_exist(Path(data_dir) / "mlqa" / split / f"{split}-context-{l}-question-{l}.json",
                       "MLQA")


def alpaca_path(data_dir, lang: str) -> Path:
    d = Path(data_dir) / "alpaca"
    l = check_lang(lang)
    jsonl = d / f"alpaca_{l}.jsonl"
    return jsonl if jsonl.is_file() else _must_exist(d / f"alpaca_{l}.json", "Alpaca")


def read_scored(path: str, field: str, qa: bool) -> list:
    """Hypotheses or references of `evaluate.py score`: a predictions.jsonl (field `field`) or a
    text file, one example a line (QA references: gold answers separated by TABs)."""
    p = Path(path)
    text = read_text(p)  # missing, not UTF-8 or empty: one line naming it, never a score of 0
    if p.suffix == ".jsonl":
        rows = cli.read_jsonl(p, skipped="its example is not scored")
        if not rows:
            raise ValueError(f"{p}: no readable JSON line")
        for i, r in enumerate(rows, 1):
            if not isinstance(r, dict) or field not in r:
                raise ValueError(f"{p}: record {i}: missing field {field!r}")
        return [r[field] for r in rows]
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    return [l.split("\t") for l in lines] if qa and field != "prediction" else lines


# ------------------------------------------------------------------ the paper's instruction wording
# Paraphrases of the paper's translation instruction, in this project's own wording. [0] is the
# canonical one (used at test time); training cycles through them by example index.
TRANSLATION_INSTRUCTIONS = [
    "Translate the following sentences from {source} to {target}.",
    "Render the text below from {source} into {target}.",
    "Please convert this {source} passage into {target}.",
    "Give a {target} translation of the following {source} text.",
    "What is the {target} version of this {source} text?",
    "Rewrite the {source} sentences below in {target}.",
    "Express the following {source} text in {target}.",
    "Turn this {source} input into fluent {target}.",
    "Produce a faithful {target} translation of the {source} sentences that follow.",
    "I need this {source} text in {target}; please translate it.",
    "Translate from {source} into {target}:",
    "How would you say the following {source} text in {target}?",
    "Convert the given {source} sentences to {target}.",
    "Provide the {target} equivalent of the {source} text below.",
    "Carry the meaning of this {source} passage over into {target}.",
    "Write the following {source} sentences in {target} instead.",
    "Here is some {source} text. Translate it into {target}.",
    "Translate this from {source} to {target}, keeping the meaning intact.",
    "Could you translate the {source} text below into {target}?",
    "Offer an accurate {target} rendering of this {source} input.",
    "Change the language of the following text from {source} to {target}.",
    "Read the {source} sentences and write them out in {target}.",
    "Make a {target} translation of the text given in {source}.",
    "The input is written in {source}; restate it in {target}.",
    "Translate the {source} input into natural {target}.",
    "Put the following {source} sentences into {target}.",
    "Give me the {target} translation of this {source} passage.",
    "Take the {source} text below and translate it to {target}.",
    "Transform the {source} sentences that follow into {target}.",
    "Write a {target} translation for the {source} text provided.",
    "Translate the text from {source} to {target} as accurately as possible.",
    "Interpret the following {source} text and write it in {target}.",
    "From {source} to {target}: translate the input below.",
]


def translation_example(src_text: str, tgt_text: str, src_lang: str, tgt_lang: str,
                        index: int | None = None) -> dict:
    """index None: the canonical instruction (test time); else paraphrase index % 33 (training)."""
    tmpl = TRANSLATION_INSTRUCTIONS[0 if index is None else index % len(TRANSLATION_INSTRUCTIONS)]
    instruction = tmpl.format(source=LANG_NAMES[check_lang(src_lang)],
                              target=LANG_NAMES[check_lang(tgt_lang)])
    return {"instruction": instruction, "input": src_text, "output": tgt_text}


# QA prompts written in the target language, laid out as the paper's zero-shot prompt
# (NJUNLP/x-LLM data/xquad/xquad.py, data/mlqa/mlqa.py): a one-sentence instruction, and an input
# of three lines: context label + context, question label + question, answer label with nothing
# after it. The wording is our own; "answer" is also the label a model may echo
# (metrics.extract_answer strips it).
_QA_FIELDS = ("instruction", "context", "question", "answer")
QA_PROMPTS = {lang: dict(zip(_QA_FIELDS, row)) for lang, row in {
    "en": ("Answer the question using the context.", "Context", "Question", "Answer"),
    "de": ("Beantworte die Frage anhand des Kontexts.", "Kontext", "Frage", "Antwort"),
    "zh": ("根据上下文回答问题。", "上下文", "问题", "答案"),
    "ar": ("أجب عن السؤال بالاعتماد على السياق.", "السياق", "السؤال", "الإجابة"),
    "el": ("Απάντησε στην ερώτηση με βάση το κείμενο.", "Κείμενο", "Ερώτηση", "Απάντηση"),
    "hi": ("संदर्भ के आधार पर प्रश्न का उत्तर दीजिए।", "संदर्भ", "प्रश्न", "उत्तर"),
    "tr": ("Soruyu bağlama göre yanıtlayın.", "Bağlam", "Soru", "Cevap"),
    "vi": ("Trả lời câu hỏi dựa vào ngữ cảnh.", "Ngữ cảnh", "Câu hỏi", "Câu trả lời"),
}.items()}


def qa_example(context: str, question: str, lang: str, answer: str = "") -> dict:
    """Extractive QA in `lang`; the input ends with the bare answer label, as the paper's does."""
    p = QA_PROMPTS[check_lang(lang)]
    return {"instruction": p["instruction"],
            "input": f"{p['context']}: {context}\n{p['question']}: {question}\n{p['answer']}:",
            "output": answer}


# -------------------------------------------------------------------------------- benchmark records
HELD_OUT = 200  # --task instruct: the last instructions of the Alpaca file


def load_examples(task: str, lang: str, data_dir, direction: str = "en-X", limit=None,
                  passage: bool = True) -> list[dict]:
    """Benchmark records (original fields + id + prompt pieces) for one task and language;
    passage=False: QA questions without their passage (the no-passage control)."""
    if lang not in LANGS:
        raise ValueError(f"--lang {lang!r}: expected one of {', '.join(LANGS)}")
    if task in ("xquad", "mlqa"):
        path = (xquad_path if task == "xquad" else mlqa_path)(data_dir, lang)
        recs = read_squad(path)[:limit]
        for r in recs:
            ex = qa_example(r["context"] if passage else "", r["question"], lang)
            r["instruction"], r["input"] = ex["instruction"], ex["input"]
        return recs
    if task == "flores":
        if direction not in ("en-X", "X-en"):
            raise ValueError(f"--direction {direction!r}: expected en-X or X-en")
        src, tgt = ("en", lang) if direction == "en-X" else (lang, "en")
        if lang == "en":
            raise ValueError("--lang en: Flores is scored between English and another language X")
        srcs, refs = read_flores(data_dir, src), read_flores(data_dir, tgt)
        if len(srcs) != len(refs):  # zip() would pair the wrong sentences, or silently drop some
            raise DataError(f"Flores files are not line-aligned: "
                                 f"{flores_path(data_dir, src)} has {len(srcs)} lines but "
                                 f"{flores_path(data_dir, tgt)} has {len(refs)}")
        recs = []
        for i, (s, t) in enumerate(list(zip(srcs, refs))[:limit]):
            ex = translation_example(s, t, src, tgt, index=None)
            recs.append({"id": f"flores-{src}-{tgt}-{i}", "src_lang": src, "tgt_lang": tgt,
                         "source": s, "reference": t, "instruction": ex["instruction"],
                         "input": ex["input"]})
        return recs
    if task in ("closedbook", "cloze"):
        if task == "cloze" and lang != "en":
            raise ValueError(f"--task cloze --lang {lang}: the facts are stated in English only "
                             "(--lang en)")
        path = Path(data_dir) / "closedbook" / f"closedbook.{lang}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no closed-book test (world.py writes one)")
        doc = json.loads(read_text(path))
        prompt = lambda q: ({"prompt": q["cloze"]} if task == "cloze"
                            else {"instruction": q["question"], "input": ""})
        return [{**q, "n_classes": len(doc["classes"][q["relation"]]),
                 "majority": doc["majority"][q["relation"]], **prompt(q)}
                for q in doc["questions"][:limit]]
    if task == "instruct":
        rows = read_alpaca(alpaca_path(data_dir, lang))
        first = max(0, len(rows) - HELD_OUT)
        return [{"id": f"instruct-{lang}-{first + i}", "instruction": r["instruction"],
                 "input": r["input"], "reference": r["output"]}
                for i, r in enumerate(rows[first:][:limit])]
    raise ValueError(f"--task {task!r}: expected xquad, mlqa, flores, closedbook, cloze, instruct "
                     "or all")
