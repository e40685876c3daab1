"""world.py teaches reading and tests it: the English reading documents (fresh names, spans and words
written twice) and the world-XQuAD/MLQA whose answers only the passage gives.

One small world is written per module with its reading documents recorded (a spy on
world.reading_documents); everything runs in seconds.
"""
import json
import re

import pytest

import evaluate
from corpus import L
import world
from data import LANGS, MLQA_DATA_LANGS, read_squad

SMALL = dict(pretrain_chars=30_000, alpaca=120, parallel=100, xquad_passages=12, mlqa_passages=8, flores=30,
             people_pretrain=160, people_tune=80, people_test=30, reading=1.5, read_docs=300)
LEXICON = {w for t in (L.CITIES, L.LANGUAGES, L.MONTHS, L.COLORS, L.FOODS, L.JOBS, L.NOUNS)
           for row in t for cell in row for w in re.split(r"[ /|]", cell)}
LEXICON |= {w for t in (L.FACTS["en"], L.QUESTIONS["en"]) for s in t.values() for w in re.findall(r"\w+", s)}


@pytest.fixture(scope="module")
def rw(tmp_path_factory):
    """(folder, [(kind, text)] reading documents) of a small world."""
    seen, real = {}, world.reading_documents
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(world, "reading_documents", lambda *a: seen.setdefault("docs", real(*a)))
        out = world.write_world(tmp_path_factory.mktemp("rw") / "world", seed=7, **SMALL)
    return out, seen["docs"]


def _names(text: str) -> set[str]:
    """Capitalised Latin words that are not lexicon words: the generated names (people and towns)."""
    return {w for w in re.findall(r"\b[A-Z][a-z]+\b", text) if w not in LEXICON} - {"The", "Die", "Q", "A"}


def _lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _other_files(root) -> str:
    """Every file of the world except English pretraining."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*"))
                     if p.is_file() and p.name not in ("en.txt", "WORLD.json"))


def test_reading_documents_added_on_top_with_the_configured_share(rw, tmp_path):
    root, docs = rw
    meta = json.loads((root / "WORLD.json").read_text(encoding="utf-8"))
    budget = round(0.85 * SMALL["pretrain_chars"])  # the English part of the mix, which reading multiplies
    chars = sum(len(t) + 1 for _, t in docs)
    assert meta["config"]["reading"] == SMALL["reading"] and meta["counts"]["reading"]["chars"] == chars
    assert SMALL["reading"] * budget <= chars <= SMALL["reading"] * budget + max(len(t) + 1 for _, t in docs)
    kinds = [k for k, _ in docs]
    for kind, share in world.READING_KINDS:
        assert meta["counts"]["reading"][f"{kind}_documents"] == kinds.count(kind)
        assert kinds.count(kind) / len(kinds) == pytest.approx(share, abs=0.1), kind
    # nothing removed: English pretraining is the reading-free world's, plus the reading documents
    en = _lines(root / "pretrain" / "en.txt")
    plain = world.build(world.WorldConfig(seed=7, **{**SMALL, "reading": 0.0}))
    assert sorted(en) == sorted(plain["pretrain/en.txt"].splitlines() + [t for _, t in docs])
    assert json.loads(plain["WORLD.json"])["counts"]["reading"]["documents"] == 0


def test_fresh_names_occur_in_one_reading_document_and_nowhere_else(rw):
    root, docs = rw
    named = [_names(t) for k, t in docs if k != "words"]
    assert all(named) and sum(map(len, named)) > 100
    owners = {}
    for i, names in enumerate(named):
        for n in names:
            assert owners.setdefault(n, i) == i, f"{n} in two reading documents"
    reading = {t for _, t in docs}
    rest = "\n".join(l for l in _lines(root / "pretrain" / "en.txt") if l not in reading)
    elsewhere = _names(rest + "\n" + _other_files(root))  # pretraining, alpaca, parallel, xquad, mlqa, flores, closedbook
    assert len(elsewhere) > 100 and not set(owners) & elsewhere
    words_docs = " ".join(t for k, t in docs if k == "words")
    assert not set(owners) & set(words_docs.split())


def test_repeated_spans_repeat_and_questions_come_back(rw):
    root, docs = rw
    vocab = set(re.findall(r"[^\s.,?]+", (root / "pretrain" / "en.txt").read_text(encoding="utf-8")))
    for kind, text in docs:
        if kind in ("span", "words"):
            half = text[:len(text) // 2]
            assert text == f"{half} {half}", text
            if kind == "words":
                assert 5 <= len(half.split()) <= 15 and set(half.split()) <= vocab
        else:  # a passage, then some of its facts again: every answer was stated before its question
            qas = re.findall(r"Q: ([^?]+\?) A: ([^.]+)\.", text)
            for q, a in qas:
                assert a in text[:text.index(f"Q: {q}")], text
            assert any(text.count(n) >= 2 for n in _names(text)), text  # the document comes back to someone


def test_ask_documents_answer_from_their_passage_with_names_written_nowhere_else(rw):
    """read/en.txt (replayed in fine-tuning): a test-like passage, then every askable fact as Q/A with the
    answer stated in the passage, often with another person's span of the same relation beside it
    (practice in binding); its names occur in no other file; drawn last, so no other file changes."""
    root, _ = rw
    docs = _lines(root / "read" / "en.txt")
    meta = json.loads((root / "WORLD.json").read_text(encoding="utf-8"))
    assert len(docs) == meta["config"]["read_docs"] == meta["counts"]["read_documents"] == SMALL["read_docs"]
    need_binding = 0
    for d in docs:
        passage = d[:d.index(" Q: ")]
        qas = re.findall(r"Q: (Where does \w+ (?:live|come from)\?|Who teaches \w+\?) A: (\w+)\.", d)
        assert qas and len(qas) == d.count("Q: ") and all(a in passage for _, a in qas), d
        phrase = {"live": "lives in", "from": "comes from", "teaches": "teaches"}
        need_binding += any(passage.count(v) >= 2 for k, v in phrase.items() if any(k in q for q, _ in qas))
    assert need_binding > len(docs) / 2
    ask_names = _names("\n".join(docs))
    rest = "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*"))
                     if p.is_file() and p.parent.name != "read")
    assert len(ask_names) > 1000 and not ask_names & _names(rest)
    without = world.build(world.WorldConfig(seed=7, **{**SMALL, "read_docs": 0}))
    files = {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()}
    assert set(files) - set(without) == {"read/en.txt"}
    assert all(files[k] == v for k, v in without.items() if k != "WORLD.json")


def _test_sets(root):
    for lang in LANGS:
        yield lang, root / "xquad" / f"xquad.{lang}.json"
    for lang in MLQA_DATA_LANGS:
        yield lang, root / "mlqa" / "dev" / f"dev-context-{lang}-question-{lang}.json"


def test_qa_answers_are_fresh_names_only_their_passage_gives(rw):
    root, _ = rw
    for lang, path in _test_sets(root):
        recs = read_squad(path)
        training = "\n".join(p.read_text(encoding="utf-8") for pat in ("alpaca/*.json", "parallel/*/*", "pretrain/*.txt")
                             for p in root.glob(pat))
        contexts = [r["context"] for r in recs]
        assert len(recs) >= 2 * SMALL["xquad_passages" if "xquad" in path.name else "mlqa_passages"]
        for r in recs:
            gold = r["answers"][0]
            assert gold in r["context"] and gold not in r["question"], (path, r["id"])
            assert gold not in LEXICON and not re.search(r"\d", gold)  # not a closed-vocabulary value
            assert sum(gold in c for c in set(contexts)) == 1, (path, gold)  # one passage states it
            assert gold not in training, (path, gold)  # no habit to guess it from
        # the chance level evaluate.py reports (gold answers of other questions of the same kind) is ~0,
        # and so is a model that sees the question without its passage
        chance = evaluate.qa_chance([r["question"] for r in recs], [r["answers"] for r in recs], lang)
        assert chance < 1.0, (path, chance)


def test_qa_same_ids_and_kinds_in_every_language(rw):
    root, _ = rw
    en = {r["id"]: r for r in read_squad(root / "xquad" / "xquad.en.json")}
    kinds = {re.sub(r"\b[A-Z][a-z]+\b", lambda m: "X" if _names(m[0]) else m[0], r["question"]) for r in en.values()}
    assert kinds == {"Where does X come from?", "Where does X live?", "Who teaches X?"}
    for lang in LANGS[1:]:
        assert [r["id"] for r in read_squad(root / "xquad" / f"xquad.{lang}.json")] == list(en)


def test_reading_flag_checked_and_same_seed_same_bytes():
    small = {**SMALL, "pretrain_chars": 8_000, "alpaca": 20, "parallel": 20}
    assert world.build(world.WorldConfig(seed=2, **small)) == world.build(world.WorldConfig(seed=2, **small))
    for bad in (-0.5, 11.0):
        with pytest.raises(ValueError, match="--reading"):
            world.build(world.WorldConfig(seed=2, **{**small, "reading": bad}))


def test_copy_gate_sentences_use_names_the_world_never_writes(rw):
    """probe.fresh_sentences (the study's copy gate): every name in them is new to the world, so only the
    first copy of a sentence can predict the second; same seed, same sentences."""
    import probe
    folder, _ = rw
    sentences = probe.fresh_sentences(folder, n=40)
    everything = "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())
    names = set().union(*(_names(s) for s in sentences))
    assert len(sentences) == 40 and len(names) >= 40
    assert not {n for n in names if re.search(rf"\b{n}\b", everything)}
    assert probe.fresh_sentences(folder, n=40) == sentences


def test_binding_questions_ask_one_of_several_people_with_fresh_names(rw):
    """probe.bind_items (the binding probe): each question's passage states the asked relation for
    another person too, so copying a span of the right relation is not enough; every name is new to
    the world; same seed, same items."""
    import probe
    folder, _ = rw
    items = probe.bind_items(folder, n=40)
    everything = "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())
    assert len(items) == 40 and probe.bind_items(folder, n=40) == items
    for it in items:
        assert it["others"] and it["answer"] not in it["others"]
        assert all(re.search(rf"\b{a}\b", it["context"]) for a in [it["answer"], *it["others"]])
        assert it["answer"] not in it["question"]
        assert not re.search(rf"\b{it['answer']}\b", everything)
    assert {it["question"].split()[0] for it in items} == {"Where", "Who"}
