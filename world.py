"""The miniature multilingual world: a generated stand-in for the paper's data, in 8 languages.

A world of people (names transliterated into every script), each with one value per relation
(hometown, city, job, age, pets/things owned, favourite colour, food, language, teacher, birth
month). A fact is (relation, person, value), rendered exactly in en de zh ar el hi tr vi. corpus.py
makes the people and every text about them (words and templates: lexicon.json); this file
chooses how much of each and where it goes, and writes the files.

    python world.py --out runs/world                 # the default world, a few seconds
    python world.py --out /tmp/w --seed 1 --alpaca 500 --pretrain-chars 200000 --overwrite
                 # --overwrite replaces an earlier world (a folder with WORLD.json), nothing else
    python world.py --help                           # every size and share flag

writes the same layout as ../shared/data (CONTRACT.md), so `--data` can point at either:

    alpaca/alpaca_<lang>.json        Alpaca dicts, all 8 languages index-aligned with English:
                                     extractive QA (data.qa_example), yes/no, counting, listing,
                                     record lookup, record-to-sentence, arithmetic
    parallel/en-<lang>/world.eng + world.<lang>   line-aligned en-X pairs (1-2 facts a line)
    xquad/xquad.<lang>.json          SQuAD v1.1, same ids in every language, exact answer_start
    mlqa/dev/dev-context-<l>-question-<l>.json    same, for en de zh ar hi vi
    flores101/devtest/<code>.devtest two facts a line, aligned across the 8 languages
    pretrain/<lang>.txt              one document a line; English-dominant (--en-share); English
                                     also holds the encyclopedia (--cb-share of its characters)
                                     and, on top, reading documents (--reading times its characters)
    closedbook/closedbook.<lang>.json  closed-book questions on the held-out encyclopedia half,
                                     gold in <lang> and in English, answer classes (chance)
    read/en.txt                      ask documents (a test-like passage, then its questions
                                     answered): binding practice mixed into fine-tuning (--replay)
    WORLD.json                       the config it was made with and the counts written

Same seed -> same bytes. Disjoint pools of people (docs/world.md) for pretraining (split by
language: no parallel text), tuning (Alpaca, pairs) and test (Flores), so no test sentence is in a
training file, though every word and name syllable is. Passages mix people with the same relations:
answering needs binding. The encyclopedia is stated only in English pretraining; Alpaca asks about
half of it, closedbook/ about the rest. Reading and ask documents are predicted only by copying
(names handed out once in the world); XQuAD/MLQA ask only for names their passage alone holds.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from cli import Failed, Parser, UsageError, add_config_flags, check_config, guard, opt
from corpus import (ENC_WORDS, MAKERS, READING_KINDS, L, Namer, enc_cloze, enc_pair, enc_question,
                    enc_statement, enc_word, ex_read, give_facts, make_people, ask_document,
                    one_person_lines, passage, passage_text, reading_documents, squad)
from corpus import Person, fresh_people, question, sentence, value_text  # noqa: F401 (world.X)
from data import FLORES_CODES, LANGS, MLQA_DATA_LANGS

N_PARAPHRASES = min(len(v) for v in L.ENC_STATEMENTS.values())


@dataclass
class WorldConfig:
    seed: int = opt(0, "seed of every random choice (same seed -> same bytes)")
    pretrain_chars: int = opt(1_500_000, "pretraining text, characters over all languages")
    en_share: float = opt(0.85, "English share of the pretraining text; the rest is split evenly")
    shares: str = opt("", "explicit shares 'en=0.8,de=0.05,...' (overrides --en-share; "
                          "must sum to 1)")
    alpaca: int = opt(4000, "instruction examples per language")
    parallel: int = opt(5000, "en-X sentence pairs per language")
    xquad_passages: int = opt(60, "XQuAD-style passages, each asking --questions questions")
    mlqa_passages: int = opt(50, "MLQA-style passages")
    questions: int = opt(4, "questions per test passage (at most its facts)")
    flores: int = opt(200, "Flores-style lines")
    people_pretrain: int = opt(800, "people in the pretraining pool (split by language)")
    people_tune: int = opt(1200, "people in the instruction/parallel pool")
    people_test: int = opt(200, "people in the test pool (XQuAD, MLQA, Flores)")
    cb_cities: int = opt(24, "encyclopedia: cities with a dish, colour, festival month (<= 24)")
    cb_jobs: int = opt(17, "encyclopedia: jobs with a tool (<= 17)")
    cb_relations: str = opt("dish,colour,festival,tool", "encyclopedia relations (comma list)")
    cb_paraphrases: int = opt(4, "English paraphrases per relation stated in pretraining (1-4)")
    cb_share: float = opt(0.15, "encyclopedia share of the English pretraining text "
                                "(0: never stated)")
    cb_tune: float = opt(0.25, "share of Alpaca examples that are closed-book questions "
                               "(tuning half)")
    # 2.0: with 4000 micro steps the base copied fresh names and values at 97 %
    # (shared/research/reading.md)
    reading: float = opt(2.0, "reading documents added to English pretraining, "
                              "in multiples of its characters (0: none)")
    # 0.25: tuning shows extractive QA on passage-only names in every language (docs/world.md)
    read_qa: float = opt(0.25, "weight of reading-QA Alpaca examples (fresh "
                               "names, answers only the passage holds)")
    read_docs: int = opt(2000, "ask documents in read/en.txt (train.py --replay; 0: none)")

    def share_map(self) -> dict[str, float]:
        if self.shares:
            out = {lang: 0.0 for lang in LANGS}
            for item in self.shares.split(","):
                lang, eq, val = item.partition("=")
                if not eq or lang.strip() not in out:
                    raise ValueError(f"--shares: bad item {item!r} (expected lang=share, "
                                     f"lang in {','.join(LANGS)})")
                try:
                    out[lang.strip()] = float(val)
                except ValueError:
                    raise ValueError(f"--shares: {val!r} is not a number") from None
            if any(v < 0 for v in out.values()) or abs(sum(out.values()) - 1) > 1e-6:
                raise ValueError("--shares: shares must be >= 0 and sum to 1 "
                                 f"(got {sum(out.values()):.4f})")
            return out
        rest = (1 - self.en_share) / (len(LANGS) - 1)
        return {lang: self.en_share if lang == "en" else rest for lang in LANGS}

    def cb_rels(self) -> list[str]:
        return [r.strip() for r in self.cb_relations.split(",") if r.strip()]

    def validate(self) -> None:
        if not 0 <= self.en_share <= 1:
            raise ValueError(f"--en-share must be in [0, 1], got {self.en_share}")
        for name, low in (("pretrain_chars", 1), ("alpaca", 1), ("parallel", 1),
                          ("xquad_passages", 1), ("mlqa_passages", 1), ("questions", 1),
                          ("flores", 1), ("people_pretrain", 80), ("people_tune", 10),
                          ("people_test", 10), ("read_docs", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, "
                                 f"got {getattr(self, name)}")
        rels = self.cb_rels()
        if not rels or set(rels) - set(L.ENC_TABLES) or len(set(rels)) != len(rels):
            raise ValueError(f"--cb-relations {self.cb_relations!r}: expected a comma list of "
                             f"{','.join(L.ENC_TABLES)}")
        used = {L.ENC_TABLES[r][0] for r in rels}
        for name, n, table in (("cb_cities", self.cb_cities, "CITIES"),
                               ("cb_jobs", self.cb_jobs, "JOBS")):
            if table in used and not 2 <= n <= len(getattr(L, table)):  # >= 1 entity per half
                raise ValueError(f"--{name.replace('_', '-')} must be in "
                                 f"[2, {len(getattr(L, table))}], got {n}")
        if not 1 <= self.cb_paraphrases <= N_PARAPHRASES:
            raise ValueError(f"--cb-paraphrases must be in [1, {N_PARAPHRASES}], "
                             f"got {self.cb_paraphrases}")
        if not 0 <= self.read_qa <= 10:
            raise ValueError(f"--read-qa must be in [0, 10], got {self.read_qa}")
        if not 0 <= self.reading <= 10:
            raise ValueError(f"--reading must be in [0, 10], got {self.reading}")
        for name in ("cb_share", "cb_tune"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1), "
                                 f"got {getattr(self, name)}")
        # Arabic spelling allows ~19.7k names
        if self.people_pretrain + self.people_tune + self.people_test > 15_000:
            raise ValueError("--people-*: at most 15000 people in all (the name space is finite)")
        self.share_map()


# --------------------------------------------------------------------------- the encyclopedia
# Closed-book knowledge: a fact is (relation, entity row, value row) over lexicon tables (a city's
# dish, colour and festival month; a job's tool). Only English pretraining states facts, every one
# equally often and in several paraphrases; Alpaca asks about the tuning half in all 8 languages;
# closedbook/ asks about the held-out half. No other text (X pretraining, parallel pairs) mentions
# them.
def encyclopedia(rng, cfg: WorldConfig) -> tuple[list, list]:
    """(tuning facts, held-out facts). Per relation, values cycle through the value table in a
    shuffled order (no answer much more frequent than another) and the entities are split in half
    at random."""
    ents = {"CITIES": rng.sample(range(len(L.CITIES)), cfg.cb_cities),
            "JOBS": rng.sample(range(len(L.JOBS)), cfg.cb_jobs)}
    tune, held = [], []
    for rel in cfg.cb_rels():
        table, vals = L.ENC_TABLES[rel]
        es = rng.sample(ents[table], len(ents[table]))
        values = [i % len(ENC_WORDS[vals]) for i in range(len(es))]
        rng.shuffle(values)
        facts = [(rel, e, v) for e, v in zip(es, values)]
        held += facts[:len(facts) // 2]
        tune += facts[len(facts) // 2:]
    return tune, held


def encyclopedia_docs(rng, facts, paraphrases: int, budget: int) -> tuple[list[str], int]:
    """English entries, one per entity (its facts in random order, each in one of the first
    `paraphrases` paraphrases), in whole rounds over the entities until `budget` characters.
    Returns (docs, rounds): every fact is stated `rounds` times."""
    entries: dict[tuple, list] = {}
    for f in facts:
        entries.setdefault((L.ENC_TABLES[f[0]][0], f[1]), []).append(f)
    docs, chars, rounds = [], 0, 0
    while chars < budget:
        for fs in rng.sample(list(entries.values()), len(entries)):
            docs.append(" ".join(enc_statement(f, rng.randrange(paraphrases))
                                 for f in rng.sample(fs, len(fs))))
            chars += len(docs[-1]) + 1
        rounds += 1
    return docs, rounds


def ex_closedbook(rng, facts) -> dict:
    """An Alpaca example: a closed-book question about one of `facts`, in every language."""
    fact = rng.choice(facts)
    return {lang: {"instruction": enc_question(fact, lang), "input": "",
                   "output": enc_pair(fact, lang)[1]} for lang in LANGS}


def closedbook_test(tune, held, lang: str) -> dict:
    """closedbook/closedbook.<lang>.json: the held-out questions with gold in `lang` and in
    English, every answer class (chance = 1 / its size) and the most frequent tuning answer per
    relation."""
    rels = list(dict.fromkeys(r for r, _, _ in tune + held))
    classes = {r: [enc_word(L.ENC_TABLES[r][1], i, lang)
                   for i in range(len(ENC_WORDS[L.ENC_TABLES[r][1]]))] for r in rels}
    majority = {}
    for r in rels:
        vs = [v for rr, _, v in tune if rr == r]
        majority[r] = classes[r][min(set(vs), key=lambda v: (-vs.count(v), v))] if vs else None
    items = []
    for f in held:
        e, v = enc_pair(f, lang)
        item = {"id": f"cb-{f[0]}-{enc_pair(f, 'en')[0].lower().replace(' ', '-')}",
                "relation": f[0], "entity": e, "question": enc_question(f, lang), "answers": [v],
                "answer_en": enc_pair(f, "en")[1]}
        if lang == "en":
            item["cloze"] = enc_cloze(f)
        items.append(item)
    return {"lang": lang, "split": "held-out", "classes": classes, "majority": majority,
            "questions": items}


# ---------------------------------------------------------------------------------- the world
# One rng, drawn in a fixed order (people, encyclopedia, pretraining, Alpaca, parallel, test
# sets), so the same seed gives the same bytes.

def pretraining(rng, namer: Namer, cfg: WorldConfig, pre: list, cb_facts: list):
    """pretrain/<lang>.txt: each language has its own people, half of the pool for English;
    English also holds the encyclopedia (cb_share of its characters) and, on top, the reading
    documents, all shuffled together. Returns (files, English reading documents, encyclopedia
    rounds, encyclopedia characters)."""
    files, shares, n_en = {}, cfg.share_map(), cfg.people_pretrain // 2
    per = (cfg.people_pretrain - n_en) // (len(LANGS) - 1)
    for j, lang in enumerate(LANGS):
        pool = pre[:n_en] if lang == "en" else pre[n_en + (j - 1) * per: n_en + j * per]
        give_facts(rng, pool)
        docs, budget = [], round(shares[lang] * cfg.pretrain_chars)
        if lang == "en":
            docs, rounds = encyclopedia_docs(rng, cb_facts, cfg.cb_paraphrases,
                                             round(cfg.cb_share * budget))
            enc_chars = sum(len(d) + 1 for d in docs)
        chars = sum(len(d) + 1 for d in docs)
        while chars < budget:
            docs.append(passage_text(passage(rng, pool, (1, 3), (2, 5)), lang)[0])
            chars += len(docs[-1]) + 1
        if lang == "en":  # reading documents on top of the mix, then everything shuffled together
            vocab = sorted({w.strip(".,?") for d in docs for w in d.split()} - {""})
            reading = reading_documents(rng, namer, vocab, round(cfg.reading * budget))
            docs += [text for _, text in reading]
            rng.shuffle(docs)
        files[f"pretrain/{lang}.txt"] = _lines(docs)
    return files, reading, rounds, enc_chars


def alpaca_examples(rng, namer: Namer, cfg: WorldConfig, tune: list, cb_tune: list) -> list:
    """cfg.alpaca examples, each {lang: example} (index-aligned across languages): MAKERS over the
    tuning pool, a cb_tune share of closed-book questions about the tuning facts, and reading QA
    on fresh names (weight read_qa)."""
    makers = [(m, w * (1 - cfg.cb_tune)) for m, w in MAKERS] \
        + [(lambda r, _: ex_closedbook(r, cb_tune), cfg.cb_tune)] \
        + [(lambda r, _: ex_read(r, namer), cfg.read_qa)]
    funcs, weights = [m for m, _ in makers], [w for _, w in makers]
    return [rng.choices(funcs, weights)[0](rng, tune) for _ in range(cfg.alpaca)]


def test_sets(rng, namer: Namer, cfg: WorldConfig, test: list) -> dict[str, str]:
    """XQuAD and MLQA (passages with people of their own), then Flores (the test pool)."""
    files = {}
    for name, n, langs, prefix in (("xquad", cfg.xquad_passages, LANGS, "x"),
                                   ("mlqa", cfg.mlqa_passages, MLQA_DATA_LANGS, "m")):
        for lang, articles in squad(rng, namer, n, cfg.questions, langs, prefix).items():
            path = (f"xquad/xquad.{lang}.json" if name == "xquad"
                    else f"mlqa/dev/dev-context-{lang}-question-{lang}.json")
            files[path] = _json({"data": articles, "version": "1.1" if name == "xquad" else 1.0})
    flores = one_person_lines(rng, test, cfg.flores, LANGS, (2, 2), unique=True)
    for lang in LANGS:
        files[f"flores101/devtest/{FLORES_CODES[lang]}.devtest"] = _lines(flores[lang])
    return files


def build(cfg: WorldConfig) -> dict[str, str]:
    """Every file of the world as relative path -> text (nothing written)."""
    cfg.validate()
    rng = random.Random(cfg.seed)
    namer = Namer(rng)
    people = make_people(namer, cfg.people_pretrain + cfg.people_tune + cfg.people_test)
    pre, tune, test = (people[:cfg.people_pretrain], people[cfg.people_pretrain:-cfg.people_test],
                       people[-cfg.people_test:])
    cb_tune, cb_held = encyclopedia(rng, cfg)
    files, reading, rounds, enc_chars = pretraining(rng, namer, cfg, pre, cb_tune + cb_held)
    give_facts(rng, tune)
    give_facts(rng, test)
    examples = alpaca_examples(rng, namer, cfg, tune, cb_tune)
    for lang in LANGS:
        files[f"alpaca/alpaca_{lang}.json"] = \
            "[\n" + ",\n".join(_dumps(ex[lang]) for ex in examples) + "\n]\n"
    lines = one_person_lines(rng, tune, cfg.parallel, LANGS, (1, 2), unique=False)
    for lang in LANGS[1:]:
        files[f"parallel/en-{lang}/world.eng"] = _lines(lines["en"])
        files[f"parallel/en-{lang}/world.{lang}"] = _lines(lines[lang])
    files.update(test_sets(rng, namer, cfg, test))  # from the test pool only
    for lang in LANGS:
        files[f"closedbook/closedbook.{lang}.json"] = _json(closedbook_test(cb_tune, cb_held, lang))
    if cfg.read_docs:  # drawn last, so every other file keeps its bytes
        files["read/en.txt"] = _lines([ask_document(rng, namer) for _ in range(cfg.read_docs)])
    cb_questions = {enc_question(f, "en") for f in cb_tune}
    counts = {"people": {"pretrain": len(pre), "tune": len(tune), "test": len(test)},
              "alpaca_per_lang": cfg.alpaca, "parallel_per_lang": cfg.parallel,
              "xquad_questions_per_lang": _n_questions(files["xquad/xquad.en.json"]),
              "mlqa_questions_per_lang":
                  _n_questions(files["mlqa/dev/dev-context-en-question-en.json"]),
              "flores_lines": cfg.flores, "read_documents": cfg.read_docs,
              "pretrain_chars": {lang: len(files[f"pretrain/{lang}.txt"]) for lang in LANGS},
              "reading": {"documents": len(reading), "chars": sum(len(t) + 1 for _, t in reading),
                          **{f"{kind}_documents": sum(k == kind for k, _ in reading)
                             for kind, _ in READING_KINDS}},
              "closedbook": {"facts_tune": len(cb_tune), "facts_held_out": len(cb_held),
                             "statements_per_fact": rounds, "encyclopedia_chars": enc_chars,
                             "alpaca_questions": sum(ex["en"]["instruction"] in cb_questions
                                                     for ex in examples)}}
    files["WORLD.json"] = _json({"generator": "world.py", "config": asdict(cfg),
                                 "shares": cfg.share_map(), "counts": counts})
    return files


def _n_questions(squad_json: str) -> int:
    return sum(len(par["qas"]) for art in json.loads(squad_json)["data"]
               for par in art["paragraphs"])


def _lines(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1) + "\n"


def _dumps(obj) -> str:
    """One Alpaca example on one line."""
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


# --------------------------------------------------------------------------- writing, CLI
def check_out(out: Path, overwrite: bool) -> None:
    """--out may be new, an empty folder, or (with overwrite) an earlier world; nothing else is
    replaced, so a typo cannot delete a checkpoint or a data folder."""
    blocker = next((d for d in out.parents if d.exists() and not d.is_dir()), None)
    if blocker is not None:
        raise FileExistsError(f"--out {out}: {blocker} is a file, not a folder")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; expected a folder (new, empty, or an "
                              "earlier world)")
    if not (out / "WORLD.json").is_file():
        raise FileExistsError(f"--out {out} is not empty and holds no WORLD.json, so it is not a "
                              "world; --overwrite only replaces a world: choose another --out")
    if not overwrite:
        raise FileExistsError(f"--out {out} holds a world already; pass --overwrite to replace it")


def write_world(out_dir, seed: int = 0, overwrite: bool = False, **sizes) -> Path:
    """Generate the world and write it atomically to out_dir: a temp folder, then one rename; on
    any failure the temp folder is removed and an earlier world at out_dir stays as it was."""
    out = Path(out_dir)
    cfg = WorldConfig(seed=seed, **sizes)
    cfg.validate()  # every size checked before the folder is looked at or anything written
    check_out(out, overwrite)
    files = build(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    old = out.with_name(f".{out.name}.old{os.getpid()}")
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        for rel, text in sorted(files.items()):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8", newline="\n")
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old.exists():
                os.replace(old, out)  # put the earlier world back
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return out


def ensure(data_dir="runs/world", seed: int = 0, **sizes) -> Path:
    """The world at data_dir, written when it holds none. A folder with other files is refused,
    never replaced (write_world's check_out), and so is a world made with other settings."""
    data_dir = Path(data_dir)
    made = data_dir / "WORLD.json"
    if made.is_file():
        want = asdict(WorldConfig(seed=seed, **sizes))
        try:
            have = json.loads(made.read_text(encoding="utf-8"))["config"]
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{made}: unreadable; remove {data_dir} to have it written "
                             "again") from None
        diff = [k for k in want if have.get(k) != want[k]]
        if diff:
            raise UsageError(f"{data_dir}: a world made with other settings ("
                             + ", ".join(f"{k} {have.get(k)} -> {want[k]}" for k in diff[:4])
                             + "); remove it or choose another folder")
        return data_dir
    try:
        write_world(data_dir, seed=seed, **sizes)
    except FileExistsError as e:
        raise UsageError(str(e)) from None
    return data_dir


@dataclass
class WriteConfig:
    """Where the world goes; the sizes and shares are WorldConfig's."""
    out: str | None = opt(None, "folder to write: new, empty, or an earlier world with --overwrite",
                          required=True)
    overwrite: bool = opt(False, "replace an earlier world (a folder with WORLD.json) at --out")


def main(argv=None) -> int:
    """Write the world; exit 0, 2 (a bad flag, or an --out that is not new, empty or a world) or
    1 (a full disk, no permission)."""
    parser = Parser(prog="world.py", doc=__doc__)
    add_config_flags(add_config_flags(parser, WriteConfig), WorldConfig)
    args = vars(parser.parse_args(argv))
    where = WriteConfig(**{k: args.pop(k) for k in ("out", "overwrite") if k in args})
    cfg = WorldConfig(**args)

    def body():
        check_config(cfg)
        try:
            path = write_world(where.out, overwrite=where.overwrite, **asdict(cfg))
        except FileExistsError:  # an --out that is not a world: misuse, exit 2
            raise
        except OSError as e:  # not misuse (a full disk, no permission): one line, exit 1
            raise Failed(f"cannot write {where.out}: {e}") from None
        counts = json.loads((path / "WORLD.json").read_text(encoding="utf-8"))["counts"]
        print(f"wrote {path}: {json.dumps(counts, ensure_ascii=False)}")
    return guard("world.py", body, usage=(ValueError, FileExistsError))


if __name__ == "__main__":
    sys.exit(main())
