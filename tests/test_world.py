"""world.py: layout, exact answer spans, alignment, train/test disjointness, determinism, CLI.

A tiny world (a few hundred examples) is written once per module; everything runs in seconds.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import in_process, tiny_checkpoint
import corpus
from corpus import L
import world
from data import FLORES_CODES, LANGS, qa_example, read_alpaca, read_flores, read_parallel, read_squad

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(pretrain_chars=40_000, alpaca=240, parallel=150, xquad_passages=12, mlqa_passages=8,
            flores=40, people_pretrain=160, people_tune=120, people_test=40,
            cb_tune=0.2)  # at this size (seed 3) the default 0.25 leaves 猫 out of zh training: too few other examples
TRAIN_GLOBS = ("alpaca/*.json", "parallel/*/*", "pretrain/*.txt")
SENT_END = re.compile(r"(?<=[.。।?？;؟])\s*")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return world.write_world(tmp_path_factory.mktemp("w") / "world", seed=3, **TINY)


def _train_text(root: Path, lang: str) -> str:
    """All training text of one language (alpaca, the X side or English side of parallel, pretrain)."""
    parts = [(root / "alpaca" / f"alpaca_{lang}.json").read_text(encoding="utf-8"),
             (root / "pretrain" / f"{lang}.txt").read_text(encoding="utf-8")]
    ext = "eng" if lang == "en" else lang
    parts += [p.read_text(encoding="utf-8") for p in sorted((root / "parallel").glob(f"*/world.{ext}"))]
    return "\n".join(parts)


def _test_sentences(root: Path, lang: str) -> list[str]:
    texts = list(read_flores(root, lang))
    for q in read_squad(root / "xquad" / f"xquad.{lang}.json"):
        texts.append(q["context"])
    return [s for t in texts for s in SENT_END.split(t) if s]


def _latin_names(text: str) -> set[str]:
    """Capitalised words that are not lexicon words: the generated people (Latin-script languages)."""
    words = {w for table in (L.CITIES, L.LANGUAGES, L.MONTHS, L.COLORS, L.FOODS, L.JOBS, L.NOUNS)
             for row in table for cell in row for w in re.split(r"[ /|]", cell)}
    return {w for w in re.findall(r"\b[A-Z][a-z]+\b", text) if w not in words} - {"The", "Die"}


def test_layout_and_readers_counts(tiny):
    meta = json.loads((tiny / "WORLD.json").read_text(encoding="utf-8"))
    assert meta["config"]["seed"] == 3 and meta["config"]["alpaca"] == TINY["alpaca"]
    n_q = meta["counts"]["xquad_questions_per_lang"]
    assert TINY["xquad_passages"] * 2 <= n_q <= TINY["xquad_passages"] * 4
    for lang in LANGS:
        assert len(read_alpaca(tiny / "alpaca" / f"alpaca_{lang}.json")) == TINY["alpaca"]
        assert len(read_flores(tiny, lang)) == TINY["flores"]
        assert (tiny / "flores101" / "devtest" / f"{FLORES_CODES[lang]}.devtest").is_file()
        assert len(read_squad(tiny / "xquad" / f"xquad.{lang}.json")) == n_q
        assert (tiny / "pretrain" / f"{lang}.txt").stat().st_size > 0
        if lang != "en":
            assert len(read_parallel(tiny, lang)) == TINY["parallel"]
    for lang in world.MLQA_DATA_LANGS:
        qs = read_squad(tiny / "mlqa" / "dev" / f"dev-context-{lang}-question-{lang}.json")
        assert len(qs) == meta["counts"]["mlqa_questions_per_lang"]
    assert not (tiny / "mlqa" / "dev" / "dev-context-el-question-el.json").exists()
    assert not list(tiny.parent.glob(".*tmp*"))  # the temp folder was renamed away


def test_answer_start_points_at_answer_in_every_language(tiny):
    paths = [tiny / "xquad" / f"xquad.{l}.json" for l in LANGS]
    paths += [tiny / "mlqa" / "dev" / f"dev-context-{l}-question-{l}.json" for l in world.MLQA_DATA_LANGS]
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["data"]
        for art in doc["data"]:
            for par in art["paragraphs"]:
                for qa in par["qas"]:
                    (ans,) = qa["answers"]
                    s = ans["answer_start"]
                    assert ans["text"] and par["context"][s:s + len(ans["text"])] == ans["text"], (path, qa["id"])
    # the instruction data's extractive QA: the output is a span of the context
    for lang in LANGS:
        qa = [ex for ex in read_alpaca(tiny / "alpaca" / f"alpaca_{lang}.json")
              if ex["instruction"] == qa_example("c", "q", lang)["instruction"]]
        assert len(qa) > TINY["alpaca"] // 5
        assert all(ex["output"] and ex["output"] in ex["input"].split("\n")[0] for ex in qa)


def test_languages_aligned(tiny):
    def shape(text):  # what must agree across translations: sentence count and the digits (ages)
        return len([s for s in SENT_END.split(text) if s]), re.findall(r"\d+", text)
    en_flores = read_flores(tiny, "en")
    en_alpaca = read_alpaca(tiny / "alpaca" / "alpaca_en.json")
    en_xquad = read_squad(tiny / "xquad" / "xquad.en.json")
    for lang in LANGS[1:]:
        assert [shape(t) for t in read_flores(tiny, lang)] == [shape(t) for t in en_flores]
        pairs = read_parallel(tiny, lang)
        assert all(shape(a) == shape(b) for a, b in pairs)
        alp = read_alpaca(tiny / "alpaca" / f"alpaca_{lang}.json")
        assert [re.findall(r"\d+", e["input"] + e["output"]) for e in alp] == \
               [re.findall(r"\d+", e["input"] + e["output"]) for e in en_alpaca]
        xq = read_squad(tiny / "xquad" / f"xquad.{lang}.json")
        assert [q["id"] for q in xq] == [q["id"] for q in en_xquad]
        assert [shape(q["context"]) for q in xq] == [shape(q["context"]) for q in en_xquad]


def test_train_and_test_disjoint(tiny):
    for lang in LANGS:
        train = _train_text(tiny, lang)
        sents = _test_sentences(tiny, lang)
        assert len(sents) > 50
        leaked = [s for s in sents if s in train]
        assert not leaked, f"{lang}: test sentences in training files: {leaked[:3]}"
    test_names = _latin_names("\n".join(_test_sentences(tiny, "en")))
    train_names = _latin_names(_train_text(tiny, "en"))
    assert len(test_names) >= 20 and len(train_names) >= 100
    assert not test_names & train_names


def test_vocabulary_shared_between_train_and_test(tiny):
    for lang in LANGS:  # every character of the test text occurs in the training text
        missing = set("".join(_test_sentences(tiny, lang))) - set(_train_text(tiny, lang))
        assert not missing, f"{lang}: {sorted(missing)}"
    test_en = " ".join(_test_sentences(tiny, "en"))
    words = set(re.findall(r"[^\W\d]+", test_en)) - _latin_names(test_en)  # ages are digits: covered above
    assert words <= set(re.findall(r"\w+", _train_text(tiny, "en")))


def test_pretraining_english_dominant_and_not_parallel(tiny):
    chars = {l: len((tiny / "pretrain" / f"{l}.txt").read_text(encoding="utf-8")) for l in LANGS}
    chars["en"] -= json.loads((tiny / "WORLD.json").read_text(encoding="utf-8"))["counts"]["reading"]["chars"]
    assert chars["en"] / sum(chars.values()) == pytest.approx(0.85, abs=0.02)  # the mix; reading comes on top
    names = {l: _latin_names((tiny / "pretrain" / f"{l}.txt").read_text(encoding="utf-8")) for l in ("en", "de", "tr", "vi")}
    for a in names:
        for b in names:
            assert a == b or not names[a] & names[b], (a, b)  # each language talks about its own people


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    again = world.write_world(tmp_path / "again", seed=3, **TINY)
    other = world.write_world(tmp_path / "other", seed=4, **TINY)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((tiny / f).read_bytes() == (again / f).read_bytes() for f in files)
    differ = [f for f in files if (tiny / f).read_bytes() != (other / f).read_bytes()]
    assert len(differ) >= len(files) - 1  # only WORLD.json's counts might coincide


def test_golden_renderings_agree_in_gender_and_case():
    p = world.Person(corpus._spell(["ka", "mi", "ro"]), "f")
    q = world.Person(corpus._spell(["to", "be", "la"]), "m")
    assert (p.names["el"], p.names["hi"], p.names["ar"], p.names["zh"]) == ("Κάμιρο", "कामिरो", "كاميرو", "卡米罗")
    has = ("has", p, (0, 0))  # three cats: Arabic polarity (feminine noun -> ثلاث), Turkish genitive
    job = ("job", p, 0)
    teach = ("teacher", p, q)
    got = {l: [world.sentence(f, l)[0] for f in (has, job, teach)] for l in LANGS}
    assert got["en"] == ["Kamiro has three cats.", "Kamiro is a doctor.", "Tobela teaches Kamiro."]
    assert got["de"] == ["Kamiro hat drei Katzen.", "Kamiro arbeitet als Ärztin.", "Tobela unterrichtet Kamiro."]
    assert got["ar"] == ["عند كاميرو ثلاث قطط.", "كاميرو طبيبة.", "توبيلا يدرّس كاميرو."]
    assert got["el"] == ["Η Κάμιρο έχει τρεις γάτες.", "Η Κάμιρο είναι γιατρός.", "Ο Τόμπελα διδάσκει την Κάμιρο."]
    assert got["tr"] == ["Kamiro'nun üç kedisi var.", "Kamiro doktor olarak çalışıyor.", "Tobela, Kamiro'ya ders veriyor."]
    assert got["zh"][0] == "卡米罗有三只猫。" and got["vi"][0] == "Kamiro có ba con mèo."
    assert world.question(has, "hi") == "कामिरो के पास कितनी बिल्लियाँ हैं?"
    text, (s, e) = world.sentence(has, "el")
    assert text[s:e] == "τρεις"


def test_cli_bad_flags_exit_2_one_line(tmp_path, capsys):
    cases = [(["--alpaca", "0"], "--alpaca"), (["--shares", "en=0.5,xx=0.5"], "--shares"),
             (["--en-share", "1.5"], "--en-share"), (["--pretrain-chars", "0"], "--pretrain-chars must be >= 1"),
             (["--pretrain-chars", "-5"], "--pretrain-chars"), (["--parallel", "-1"], "--parallel"),
             (["--questions", "0"], "--questions"), (["--alpaca", "1.5"], "--alpaca")]
    for i, (argv, needle) in enumerate(cases + [(["--out"], "--out")]):
        out = ["--out", str(tmp_path / str(i))] if argv != ["--out"] else []
        if i == 0:  # the real command line once; the other cases through the same main() in this process
            r = subprocess.run([sys.executable, "world.py", *out, *argv], cwd=ROOT, capture_output=True, text=True)
        else:
            r = in_process(world.main, [*out, *argv], capsys)
        assert r.returncode == 2, (argv, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("world.py: error:") and needle in lines[0], r.stderr
    assert not any(tmp_path.iterdir())  # nothing written


SMALL = ["--pretrain-chars", "2000", "--alpaca", "10", "--parallel", "10", "--xquad-passages", "2",
         "--mlqa-passages", "2", "--flores", "5", "--people-pretrain", "80", "--people-tune", "20", "--people-test", "10"]
SMALL_KW = dict(pretrain_chars=2000, alpaca=10, parallel=10, xquad_passages=2, mlqa_passages=2, flores=5,
                people_pretrain=80, people_tune=20, people_test=10)


def _refused(capsys, argv, needle):
    r = in_process(world.main, argv, capsys)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and needle in err[0], err


def test_overwrite_replaces_only_a_world(tmp_path, capsys):
    out = tmp_path / "w"
    out.mkdir()
    assert world.main(["--out", str(out), *SMALL]) == 0                    # an empty folder is fine
    (out / "stale.txt").write_text("from an older world")
    _refused(capsys, ["--out", str(out), *SMALL], "--overwrite")            # a world, but not asked
    assert world.main(["--out", str(out), "--overwrite", *SMALL]) == 0
    assert not (out / "stale.txt").exists() and (out / "WORLD.json").is_file()
    ckpt = tmp_path / "ckpt"                                                 # not a world: never replaced
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_text("weights")
    _refused(capsys, ["--out", str(ckpt), "--overwrite", *SMALL], "not a world")
    assert [p.name for p in ckpt.iterdir()] == ["model.safetensors"]
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    _refused(capsys, ["--out", str(a_file), "--overwrite", *SMALL], "is a file")
    _refused(capsys, ["--out", str(a_file / "w"), *SMALL], "is a file, not a folder")
    assert a_file.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "notes.txt", "w"]  # no temp or old folder left


def test_failed_write_leaves_no_temp_and_keeps_the_old_world(tmp_path, monkeypatch):
    out = world.write_world(tmp_path / "w", **SMALL_KW)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_build = world.build
    # a file that cannot be encoded fails half way through writing the temp folder
    monkeypatch.setattr(world, "build", lambda cfg: {**real_build(cfg), "zz/bad.txt": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        world.write_world(out, overwrite=True, **SMALL_KW)
    monkeypatch.setattr(world, "build", real_build)
    real_replace = world.os.replace

    def fail_on_install(src, dst):  # the final rename fails after the old world was moved aside
        if ".tmp" in Path(src).name:
            raise OSError("disk full")
        return real_replace(src, dst)
    monkeypatch.setattr(world.os, "replace", fail_on_install)
    with pytest.raises(OSError, match="disk full"):
        world.write_world(out, overwrite=True, seed=5, **SMALL_KW)
    monkeypatch.setattr(world.os, "replace", real_replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    with pytest.raises(UnicodeEncodeError):  # a failed first write leaves nothing at all
        monkeypatch.setattr(world, "build", lambda cfg: {"a.txt": "ok", "b.txt": "\ud800"})
        world.write_world(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_lexicon_complete_and_every_template_renders():
    for table in (L.CITIES, L.JOBS, L.NOUNS, L.COUNTS, L.NUMBERS, L.COLORS, L.FOODS, L.LANGUAGES, L.MONTHS):
        assert all(len(row) == len(L.LANG_ORDER) and all(c.strip() for c in row) for row in table)
    for d in (L.FACTS, L.QUESTIONS, L.FIELDS, L.TASKS, L.YES_NO):
        assert set(d) == set(LANGS)
    q = world.Person(corpus._spell(["to", "be", "la"]), "f")
    for gender in "mf":
        p = world.Person(corpus._spell(["ka", "mi", "ro"]), gender)
        facts = [("has", p, (n, c)) for n in range(len(L.COUNTS)) for c in range(len(L.NOUNS))]
        facts += [("job", p, j) for j in range(len(L.JOBS))] + [("teacher", p, q), ("age", p, 42)]
        facts += [(r, p, 0) for r in ("from", "lives", "color", "food", "speaks", "month")]
        for lang in LANGS:
            for f in facts:
                text, (s, e) = world.sentence(f, lang)
                asked = world.question(f, lang)
                assert text[s:e] == world.value_text(f, lang) and p.names[lang] in asked, (lang, f[0])
                assert not re.search(r"[{}|]", text + asked), (lang, text, asked)


# ----------------------------------------------------------------------------- the encyclopedia (closed-book facts)
SENT_OR_LINE = re.compile(r"(?<=[.。।?？;؟])\s*|\n")


@pytest.fixture(scope="module")
def enc(tmp_path_factory):
    """A tiny world written with its encyclopedia facts recorded: (folder, tuning facts, held-out facts)."""
    seen, real = {}, world.encyclopedia
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(world, "encyclopedia", lambda rng, cfg: seen.setdefault("facts", real(rng, cfg)))
        out = world.write_world(tmp_path_factory.mktemp("enc") / "world", seed=5, **TINY)
    return (out, *seen["facts"])


def _words(sentence: str) -> str:
    """' w1 w2 ... ': whole words (multi-word values match as phrases), never a piece of a name."""
    return " " + " ".join(re.findall(r"[^\s.,!?;:،؟।]+", sentence)) + " "


def test_facts_only_in_english_pretraining(enc):
    root, tune, held = enc
    facts = tune + held
    meta = json.loads((root / "WORLD.json").read_text(encoding="utf-8"))["counts"]["closedbook"]
    assert (meta["facts_tune"], meta["facts_held_out"]) == (len(tune), len(held)) and meta["statements_per_fact"] >= 1
    en = (root / "pretrain" / "en.txt").read_text(encoding="utf-8")
    n = TINY.get("cb_paraphrases", 4)
    for f in facts:  # every fact stated equally often, in English, across its paraphrases
        assert sum(en.count(world.enc_statement(f, p)) for p in range(n)) == meta["statements_per_fact"], f
    for lang in LANGS:  # no other text states one: no sentence holds an entity beside its value
        texts = [] if lang == "en" else [(root / "pretrain" / f"{lang}.txt").read_text(encoding="utf-8")]
        texts += [p.read_text(encoding="utf-8") for p in (root / "parallel").glob(f"*/world.{'eng' if lang == 'en' else lang}")]
        cb = {world.enc_question(f, lang) for f in facts}
        texts += [ex["input"] + "\n" + ex["output"] for ex in read_alpaca(root / "alpaca" / f"alpaca_{lang}.json")
                  if ex["instruction"] not in cb]
        sents = [s for t in texts for s in SENT_OR_LINE.split(t) if s]
        assert len(sents) > 500
        if lang == "zh":  # no spaces between words: look for the questions' fixed parts instead
            fixed = [max(t.split("{E}"), key=len) for t in L.ENC_QUESTIONS["zh"].values()]
            pre = (root / "pretrain" / "zh.txt").read_text(encoding="utf-8")
            assert not [x for x in fixed if x in pre]
            continue
        pairs = [tuple(_words(w) for w in world.enc_pair(f, lang)) for f in facts]
        stated = [s for s in map(_words, sents) for e, v in pairs if e in s and v in s]
        assert not stated, (lang, stated[:3])


def test_held_out_half_never_in_tuning_data(enc):
    root, tune, held = enc
    assert not {(r, e) for r, e, _ in tune} & {(r, e) for r, e, _ in held}
    for rel in {r for r, _, _ in tune + held}:  # each relation split in half
        n_t, n_h = sum(r == rel for r, _, _ in tune), sum(r == rel for r, _, _ in held)
        assert n_h == (n_t + n_h) // 2 >= 1
    for lang in LANGS:
        test = json.loads((root / "closedbook" / f"closedbook.{lang}.json").read_text(encoding="utf-8"))
        asked = {q["question"] for q in test["questions"]}
        assert asked == {world.enc_question(f, lang) for f in held}
        alpaca = read_alpaca(root / "alpaca" / f"alpaca_{lang}.json")  # whole questions: 德里 is inside 马德里
        lines = {x.split(": ", 1)[-1] for e in alpaca for x in [e["instruction"], *e["input"].split("\n")]}
        assert not asked & lines
        tuned = {world.enc_question(f, lang): world.enc_pair(f, lang)[1] for f in tune}
        cb = [e for e in alpaca if e["instruction"] in tuned]
        assert len(cb) >= TINY["alpaca"] * 0.05 and all(e["output"] == tuned[e["instruction"]] and not e["input"] for e in cb)
    ids = [[q["id"] for q in json.loads((root / "closedbook" / f"closedbook.{l}.json").read_text("utf-8"))["questions"]]
           for l in LANGS]
    assert all(i == ids[0] for i in ids) and len(set(ids[0])) == len(held)  # same ids in every language


def test_closedbook_gold_in_the_questions_language_and_chance(enc):
    import evaluate
    root, tune, held = enc
    sizes = {"dish": len(L.FOODS), "colour": len(L.COLORS), "festival": len(L.MONTHS), "tool": len(L.OBJECTS)}
    scripts = {"zh": r"[\u4e00-\u9fff]", "ar": r"[\u0600-\u06ff]", "el": r"[\u0370-\u03ff]", "hi": r"[\u0900-\u097f]"}
    en = json.loads((root / "closedbook" / "closedbook.en.json").read_text(encoding="utf-8"))
    for lang in LANGS:
        test = json.loads((root / "closedbook" / f"closedbook.{lang}.json").read_text(encoding="utf-8"))
        assert {r: len(c) for r, c in test["classes"].items()} == sizes
        for q, qe, (rel, _, v) in zip(test["questions"], en["questions"], held):
            (gold,) = q["answers"]
            cell = world.ENC_WORDS[L.ENC_TABLES[rel][1]][v][L.LANG_ORDER.index(lang)]
            assert gold == cell.split("/")[0].split("|")[0] == test["classes"][rel][v]  # the lexicon's word in lang
            assert q["answer_en"] == qe["answers"][0] == en["classes"][rel][v]
            if lang in scripts:
                assert re.search(scripts[lang], gold) and re.search(scripts[lang], q["question"]), (lang, gold)
            assert q["entity"] in q["question"]
        if lang == "en":
            assert all(world.enc_statement(f, 0).startswith(q["cloze"] + " ") for q, f in zip(test["questions"], held))
        # chance stored beside the scores: mean of 1 / class size; majority: the most frequent tuning answer
        rows = [{**q, "n_classes": len(test["classes"][q["relation"]]), "majority": test["majority"][q["relation"]]}
                for q in test["questions"]]
        right = evaluate.score_closedbook([{**r, "prediction": r["answers"][0]} for r in rows], lang)
        in_en = evaluate.score_closedbook([{**r, "prediction": r["answer_en"]} for r in rows], lang)
        assert right["chance"] == pytest.approx(100 * sum(1 / sizes[q["relation"]] for q in rows) / len(rows))
        assert right["majority"] == pytest.approx(100 * sum(q["answers"][0] == q["majority"] for q in rows) / len(rows))
        assert right["em"] == right["contain"] == 100 and right["by_relation"]["tool"]["chance"] == pytest.approx(10)
        if lang in scripts:
            assert (right["right_in_en"], in_en["right_in_en"], in_en["em"]) == (0, 100, 0)
        vals = [v for r, _, v in tune if r == "dish"]
        assert test["majority"]["dish"] == test["classes"]["dish"][min(set(vals), key=lambda v: (-vals.count(v), v))]


def test_closed_book_questions_differ_from_english_beyond_vocabulary():
    """No language asks a closed-book question as a word-for-word relabelling of the English one: the number
    of words or the entity's place differs for every relation (scripts and morphology differ besides)."""
    def shape(t):
        words = re.findall(r"\{E\}|[^\s?？;؟{}]+", t)
        return len(words), words.index("{E}") if "{E}" in words else None
    en = {r: shape(t) for r, t in L.ENC_QUESTIONS["en"].items()}
    for lang in LANGS[1:]:
        assert set(L.ENC_QUESTIONS[lang]) == set(L.ENC_TABLES)
        for rel, t in L.ENC_QUESTIONS[lang].items():
            assert shape(t) != en[rel], (lang, rel)
    p = ("festival", [c[0] for c in L.CITIES].index("Paris"), [m[0] for m in L.MONTHS].index("May"))
    assert world.enc_statement(p, 1) == "Paris celebrates its festival in May." and world.enc_cloze(p) == \
        "The great festival of Paris takes place in"
    tool = ("tool", [j[0] for j in L.JOBS].index("teacher"), L.OBJECTS.index(11))  # a pen
    assert [world.enc_question(tool, l) for l in ("de", "tr", "el")] == [
        "Was trägt jeder Lehrer bei sich?", "Her öğretmen yanında ne taşıyor?", "Τι κουβαλάει μαζί του κάθε δάσκαλος;"]
    assert [world.enc_pair(tool, l)[1] for l in ("en", "de", "zh", "tr")] == ["pen", "Stift", "笔", "kalem"]


def test_closed_book_flags_checked():
    for kw, needle in ((dict(cb_relations="dish,smell"), "--cb-relations"), (dict(cb_cities=1), "--cb-cities"),
                       (dict(cb_cities=30), "--cb-cities"), (dict(cb_share=1.0), "--cb-share"),
                       (dict(cb_paraphrases=0), "--cb-paraphrases"), (dict(cb_tune=-0.1), "--cb-tune")):
        with pytest.raises(ValueError, match=needle):
            world.WorldConfig(**kw).validate()
    world.WorldConfig(cb_relations="tool", cb_cities=0).validate()  # cities unused: any number


def test_closedbook_and_cloze_evaluated_end_to_end(enc, tmp_path):
    """evaluate.py on the world's closed-book test with a tiny random checkpoint: the Alpaca prompt for
    questions, the raw English prefix for the cloze (its prediction cut at the sentence end), chance beside
    every score. (Here, not in test_evaluate.py, because it reads the world's closed-book files.)"""
    import evaluate
    root, _, held = enc
    m = tiny_checkpoint(tmp_path / "model", [root / "pretrain" / "en.txt", root / "pretrain" / "de.txt"])
    cpu = ["--device", "cpu", "--threads", "1", "--dtype", "fp32", "--data", str(root), "--model", str(m)]
    evaluate.main(["--task", "closedbook", "--lang", "de", "--limit", "6", *cpu])
    evaluate.main(["--task", "cloze", "--lang", "en", "--limit", "6", *cpu])
    for name in ("closedbook-de", "cloze-en"):
        s = json.loads((m / "eval" / name / "scores.json").read_text(encoding="utf-8"))
        rows = [json.loads(l) for l in (m / "eval" / name / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
        assert s["n"] == len(rows) == 6 and 7 < s["chance"] < 11 and set(s["by_relation"]) <= set(L.ENC_TABLES)
        assert ("right_in_en" in s) == (name == "closedbook-de")
    assert s["max_new_tokens"] == 8 and all(not re.search(r"[.!?\n]", r["prediction"]) for r in rows)
    assert [r["cloze"] for r in rows] == [world.enc_cloze(f) for f in held[:6]]
    assert evaluate.prompt_of({"prompt": "People in Rome love to eat"}) == "People in Rome love to eat"
    with pytest.raises(ValueError, match="--lang en"):
        evaluate.data.load_examples("cloze", "de", root)


def test_the_shipped_base_was_pretrained_on_the_default_worlds_text(tmp_path):
    """A change to the default world's pretraining text or ask documents must ship a base pretrained
    on them (assets/base/README.md says how); otherwise train.py would silently pretrain one."""
    import checkpoint
    files = world.build(world.WorldConfig())
    for name, text in files.items():
        if name.startswith(("pretrain/", "read/")):
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_text(text, encoding="utf-8", newline="\n")
    assert checkpoint.shipped_base(tmp_path) == checkpoint.SHIPPED_BASE
