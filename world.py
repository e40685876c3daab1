"""The miniature multilingual world: a generated stand-in for the paper's data, in 8 languages.

A world of people (names transliterated into every script), each with one value per relation
(hometown, city, job, age, pets/things owned, favourite colour, food, language, teacher, birth
month). A fact is (relation, person, value); a passage is a group of facts; every fact has an
exact rendering in en de zh ar el hi tr vi (lexicon.py holds the words and templates).

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
    pretrain/<lang>.txt              one document a line; English-dominant (--en-share); English also
                                     holds the encyclopedia (--cb-share of its characters) and, on top,
                                     reading documents (--reading times its characters)
    closedbook/closedbook.<lang>.json  closed-book questions (no context) about the held-out half of the
                                     encyclopedia, gold in <lang> and in English, answer classes (chance)
    WORLD.json                       the config it was made with and the counts written

Science-bearing choices: three disjoint pools of people. Pretraining facts come from the
pretraining pool, itself split by language, so no pretraining document has a translation in
another language's corpus (no parallel text); instruction and parallel data use the tuning pool;
Flores uses the test pool, so no test sentence occurs in any training file. The
vocabulary (cities, jobs, animals, ... and the name syllables) is shared by all pools, so test
text is made of pieces the model has seen. Passages mix several people with the same relation
types, so answering needs binding, not keyword lookup. The encyclopedia (facts about lexicon words:
a city's dish, colour and festival month, a job's tool) is stated only in English pretraining; Alpaca
asks about half of the facts in every language, closedbook/ about the other half, so a model answers
a German question about a held-out fact only by using what it read in English. Reading: English
pretraining also holds documents that only copying predicts (names handed out once in the world, then
asked about or restated; spans and word lists written twice), and XQuAD/MLQA passages have people and
towns of their own and ask only for those names, so no habit answers them (docs/world.md).
Same seed -> identical bytes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import SimpleNamespace

from cli import UsageError
from data import FLORES_CODES, LANGS, MLQA_DATA_LANGS, qa_example


def _frozen(x):
    """JSON lists as tuples: the lexicon is read, never changed."""
    if isinstance(x, list):
        return tuple(_frozen(v) for v in x)
    return {k: _frozen(v) for k, v in x.items()} if isinstance(x, dict) else x


# The words and templates in 8 languages (lexicon.json, data only; its conventions: docs/world.md)
_LEXICON = json.loads(Path(__file__).with_name("lexicon.json").read_text(encoding="utf-8"))
L = SimpleNamespace(**{k: _frozen(v) for k, v in _LEXICON.items() if k != "notes"})
K = {lang: L.LANG_ORDER.index(lang) for lang in LANGS}  # column of each language in lexicon rows
RECORD_RELS = tuple(r for r in L.RELATIONS if r != "has")  # relations shown as "field: value"
PLAIN_RELS = tuple(r for r in L.RELATIONS if r != "teacher")  # no second person mentioned
N_PARAPHRASES = min(len(v) for v in L.ENC_STATEMENTS.values())


@dataclass
class WorldConfig:
    seed: int = field(default=0, metadata={"help": "seed of every random choice (same seed -> same bytes)"})
    pretrain_chars: int = field(default=1_500_000, metadata={"help": "pretraining text, characters over all languages"})
    en_share: float = field(default=0.85, metadata={"help": "English share of the pretraining text; the rest is split evenly"})
    shares: str = field(default="", metadata={"help": "explicit shares 'en=0.8,de=0.05,...' (overrides --en-share; must sum to 1)"})
    alpaca: int = field(default=4000, metadata={"help": "instruction examples per language"})
    parallel: int = field(default=5000, metadata={"help": "en-X sentence pairs per language"})
    xquad_passages: int = field(default=60, metadata={"help": "XQuAD-style passages, each asking --questions questions"})
    mlqa_passages: int = field(default=50, metadata={"help": "MLQA-style passages"})
    questions: int = field(default=4, metadata={"help": "questions per test passage (at most its facts)"})
    flores: int = field(default=200, metadata={"help": "Flores-style lines"})
    people_pretrain: int = field(default=800, metadata={"help": "people in the pretraining pool (split by language)"})
    people_tune: int = field(default=1200, metadata={"help": "people in the instruction/parallel pool"})
    people_test: int = field(default=200, metadata={"help": "people in the test pool (XQuAD, MLQA, Flores)"})
    cb_cities: int = field(default=24, metadata={"help": "encyclopedia: cities with a dish, colour, festival month (<= 24)"})
    cb_jobs: int = field(default=17, metadata={"help": "encyclopedia: jobs with a tool (<= 17)"})
    cb_relations: str = field(default="dish,colour,festival,tool", metadata={"help": "encyclopedia relations (comma list)"})
    cb_paraphrases: int = field(default=4, metadata={"help": "English paraphrases per relation stated in pretraining (1-4)"})
    cb_share: float = field(default=0.15, metadata={"help": "encyclopedia share of the English pretraining text (0: never stated)"})
    cb_tune: float = field(default=0.25, metadata={"help": "share of Alpaca examples that are closed-book questions (tuning half)"})
    # 2.0: with 4000 micro steps the base copied fresh names and values at 97 % (shared/research/reading.md)
    reading: float = field(default=2.0, metadata={"help": "reading documents added to English pretraining, "
                                                          "in multiples of its characters (0: none)"})
    # 0.25: tuning shows extractive QA on passage-only names in every language (docs/world.md)
    read_qa: float = field(default=0.25, metadata={"help": "weight of reading-QA Alpaca examples (fresh "
                                                          "names, answers only the passage holds)"})

    def share_map(self) -> dict[str, float]:
        if self.shares:
            out = {lang: 0.0 for lang in LANGS}
            for item in self.shares.split(","):
                lang, eq, val = item.partition("=")
                if not eq or lang.strip() not in out:
                    raise ValueError(f"--shares: bad item {item!r} (expected lang=share, lang in {','.join(LANGS)})")
                try:
                    out[lang.strip()] = float(val)
                except ValueError:
                    raise ValueError(f"--shares: {val!r} is not a number") from None
            if any(v < 0 for v in out.values()) or abs(sum(out.values()) - 1) > 1e-6:
                raise ValueError(f"--shares: shares must be >= 0 and sum to 1 (got {sum(out.values()):.4f})")
            return out
        rest = (1 - self.en_share) / (len(LANGS) - 1)
        return {lang: self.en_share if lang == "en" else rest for lang in LANGS}

    def cb_rels(self) -> list[str]:
        return [r.strip() for r in self.cb_relations.split(",") if r.strip()]

    def validate(self) -> None:
        if not 0 <= self.en_share <= 1:
            raise ValueError(f"--en-share must be in [0, 1], got {self.en_share}")
        for name, low in (("pretrain_chars", 1), ("alpaca", 1), ("parallel", 1), ("xquad_passages", 1),
                          ("mlqa_passages", 1), ("questions", 1), ("flores", 1), ("people_pretrain", 80),
                          ("people_tune", 10), ("people_test", 10)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(self, name)}")
        rels = self.cb_rels()
        if not rels or set(rels) - set(L.ENC_TABLES) or len(set(rels)) != len(rels):
            raise ValueError(f"--cb-relations {self.cb_relations!r}: expected a comma list of {','.join(L.ENC_TABLES)}")
        used = {L.ENC_TABLES[r][0] for r in rels}
        for name, n, table in (("cb_cities", self.cb_cities, "CITIES"), ("cb_jobs", self.cb_jobs, "JOBS")):
            if table in used and not 2 <= n <= len(getattr(L, table)):  # at least one entity per half
                raise ValueError(f"--{name.replace('_', '-')} must be in [2, {len(getattr(L, table))}], got {n}")
        if not 1 <= self.cb_paraphrases <= N_PARAPHRASES:
            raise ValueError(f"--cb-paraphrases must be in [1, {N_PARAPHRASES}], got {self.cb_paraphrases}")
        if not 0 <= self.read_qa <= 10:
            raise ValueError(f"--read-qa must be in [0, 10], got {self.read_qa}")
        if not 0 <= self.reading <= 10:
            raise ValueError(f"--reading must be in [0, 10], got {self.reading}")
        for name in ("cb_share", "cb_tune"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if self.people_pretrain + self.people_tune + self.people_test > 15_000:  # Arabic spelling: ~19.7k names
            raise ValueError("--people-*: at most 15000 people in all (the name space is finite)")
        self.share_map()


# ------------------------------------------------------------------------------------ people

class Person:
    """A name in every script, a gender (for agreement) and one value per relation."""

    def __init__(self, names: dict[str, str], gender: str):
        self.names, self.gender, self.facts = names, gender, {}

    def forms(self, lang: str, slot: str) -> dict[str, tuple[str, str]]:
        name = self.names[lang]
        out = {slot: (name, self.gender)}
        if lang == "tr":  # names end in a vowel: genitive -'nın/-'nin/-'nun, dative -'ya/-'ye
            last = name[-1]
            out[slot + ".gen"] = (name + "'n" + {"a": "ın", "e": "in", "i": "in", "o": "un", "u": "un"}[last], self.gender)
            out[slot + ".dat"] = (name + "'y" + ("a" if last in "aou" else "e"), self.gender)
        return out


def _spell(sylls: list[str]) -> dict[str, str]:
    """A name, given as latin CV syllables, in every script."""
    latin = "".join(sylls).capitalize()
    greek = "".join(L.CONSONANTS[s[0]][0] + L.VOWELS[s[1]][1 if i == 0 else 0] for i, s in enumerate(sylls))
    names = {lang: latin for lang in ("en", "de", "tr", "vi")}
    names["el"] = greek[0].upper() + greek[1:]
    names["hi"] = "".join(L.CONSONANTS[s[0]][1] + L.VOWELS[s[1]][2] for s in sylls)
    names["ar"] = "".join(L.CONSONANTS[s[0]][2] + L.VOWELS[s[1]][3] for s in sylls)
    names["zh"] = "".join(L.ZH_SYLLABLES[s] for s in sylls)
    return names


LEXICON_WORDS = {w.lower() for table in (L.CITIES, L.JOBS, L.NOUNS, L.COLORS, L.FOODS, L.LANGUAGES, L.MONTHS)
                 for row in table for cell in row for w in re.split(r"[ /|]", cell)}


class Namer:
    """Hands out 3-syllable names (3 syllables: rarely a real word), each at most once in the world:
    unique in every script (people of the pools and of the test passages, who are written in all 8
    languages) or in Latin only (the English reading documents). One Namer per world, so a fresh
    name is fresh everywhere."""

    def __init__(self, rng: random.Random):
        self.rng, self.sylls = rng, sorted(L.ZH_SYLLABLES)
        self.seen = {lang: set() for lang in LANGS}

    def __call__(self, latin_only: bool = False) -> dict[str, str]:
        scripts = ("en",) if latin_only else LANGS  # en, de, tr, vi share the Latin spelling
        for _ in range(10_000):
            names = _spell([self.rng.choice(self.sylls) for _ in range(3)])
            if names["en"].lower() in LEXICON_WORDS or any(names[l] in self.seen[l] for l in scripts):
                continue
            for lang in scripts:
                self.seen[lang].add(names[lang])
            return dict.fromkeys(LANGS, names["en"]) if latin_only else names
        raise ValueError(f"the {len(self.sylls) ** 3} three-syllable names are used up: "
                         "lower --reading or --people-*")


def make_people(namer: Namer, n: int) -> list[Person]:
    """n people with fresh names (unique in every script, distinct from every lexicon word)."""
    return [Person(namer(), namer.rng.choice("mf")) for _ in range(n)]


def give_facts(rng: random.Random, pool: list[Person]) -> None:
    """One value per relation for each person; teachers come from the same pool."""
    for i, p in enumerate(pool):
        home, city = rng.sample(range(len(L.CITIES)), 2)
        t = rng.randrange(len(pool) - 1)
        p.facts = {"from": home, "lives": city, "job": rng.randrange(len(L.JOBS)), "age": rng.randint(18, 79),
                   "has": (rng.randrange(len(L.COUNTS)), rng.randrange(len(L.NOUNS))),
                   "color": rng.randrange(len(L.COLORS)), "food": rng.randrange(len(L.FOODS)),
                   "speaks": rng.randrange(len(L.LANGUAGES)), "teacher": pool[t + (t >= i)],
                   "month": rng.randrange(len(L.MONTHS))}


# --------------------------------------------------------------------------------- rendering
SLOT = re.compile(r"\{(\w+(?:\.\w+)?)(?::([^{}]*))?\}")
TABLES = {"from": ("city", L.CITIES), "lives": ("city", L.CITIES), "color": ("color", L.COLORS),
          "food": ("food", L.FOODS), "speaks": ("lang", L.LANGUAGES), "month": ("month", L.MONTHS)}


def pick(word: str, gender: str) -> str:
    """'m|f|n' alternatives -> the one agreeing with gender (a missing form falls back to the first)."""
    alts = word.split("|")
    i = "mfn".index(gender)
    return alts[i] if i < len(alts) else alts[0]


def slots(rel: str, p: Person, value, lang: str) -> dict[str, tuple[str, str]]:
    """Slot name -> (text, gender) for one fact in one language."""
    k, s = K[lang], p.forms(lang, "P")
    if rel in TABLES:
        name, table = TABLES[rel]
        s[name] = (value[lang] if isinstance(value, dict) else table[value][k], "m")  # dict: a fresh town
    elif rel == "job":
        s["job"] = (pick(L.JOBS[value][k], p.gender), "m")
    elif rel == "age":
        s["age"] = (str(value), "m")
    elif rel == "has":
        n, c = value
        sg, pl, g = (L.NOUNS[c][k].split("/") + ["m"])[:3]
        s.update(noun=(sg, g), noun_pl=(pl, g), num=(pick(L.COUNTS[n][k], g), "m"))
    elif rel == "teacher":
        s.update(value.forms(lang, "Q"))
    return s


def render(template: str, s: dict, answer: str | None = None) -> tuple[str, tuple[int, int] | None]:
    """Fill a template; also return the (start, end) of the answer slot's text."""
    out, n, pos, span = [], 0, 0, None
    for m in SLOT.finditer(template):
        out.append(template[pos:m.start()])
        n += m.start() - pos
        text, gender = s[m.group(1)]
        if m.group(2) is not None:
            text = pick(m.group(2), gender)
        elif m.group(1) == answer:
            assert span is None, f"answer slot {answer} twice in {template!r}"
            span = (n, n + len(text))
        out.append(text)
        n, pos = n + len(text), m.end()
    out.append(template[pos:])
    assert answer is None or span is not None, f"no answer slot {answer} in {template!r}"
    return "".join(out), span


def sentence(fact, lang: str) -> tuple[str, tuple[int, int]]:
    rel, p, value = fact
    return render(L.FACTS[lang][rel], slots(rel, p, value, lang), L.ANSWER_SLOT[rel])


def question(fact, lang: str) -> str:
    rel, p, value = fact
    return render(L.QUESTIONS[lang][rel], slots(rel, p, value, lang))[0]


def value_text(fact, lang: str) -> str:
    rel, p, value = fact
    return slots(rel, p, value, lang)[L.ANSWER_SLOT[rel]][0]


def passage_text(facts: list, lang: str) -> tuple[str, list[tuple[int, int]]]:
    """Sentences joined into one passage, with each fact's answer span in passage coordinates."""
    join = L.SENTENCE_JOIN.get(lang, " ")
    parts, spans, n = [], [], 0
    for f in facts:
        text, (a, b) = sentence(f, lang)
        spans.append((n + a, n + b))
        parts.append(text)
        n += len(text) + len(join)
    return join.join(parts), spans


def passage(rng: random.Random, pool: list[Person], people: tuple[int, int], per: tuple[int, int],
            rels=L.RELATIONS) -> list:
    """Facts about rng-many people of the pool, rng-many distinct relations each, grouped by person."""
    return [(r, p, p.facts[r]) for p in rng.sample(pool, rng.randint(*people))
            for r in rng.sample(rels, rng.randint(*per))]


# ------------------------------------------------------------------------ instruction examples
# Each maker draws its random choices once, then renders the same content in every language.

def _record(p: Person, rels, lang: str) -> str:
    f = L.FIELDS[lang]
    rows = [(f["name"], p.names[lang])] + [(f[r], value_text((r, p, p.facts[r]), lang)) for r in rels]
    return "\n".join(f"{a}: {b}" for a, b in rows)


def ex_qa(rng, pool):
    facts = passage(rng, pool, (1, 3), (1, 3))
    i = rng.randrange(len(facts))
    out = {}
    for lang in LANGS:
        ctx, spans = passage_text(facts, lang)
        out[lang] = qa_example(ctx, question(facts[i], lang), lang, ctx[slice(*spans[i])])
    return out


def _other(rng, rel, value, pool, p):
    """A value for rel that differs from value (so the statement is false)."""
    if rel == "age":
        return rng.choice([a for a in range(18, 80) if a != value])
    if rel == "has":
        return (rng.choice([n for n in range(len(L.COUNTS)) if n != value[0]]), value[1])
    if rel == "teacher":
        return rng.choice([q for q in pool[:50] if q is not value and q is not p])
    size = len(L.JOBS) if rel == "job" else len(TABLES[rel][1])
    return rng.choice([v for v in range(size) if v != value])


def ex_yesno(rng, pool):
    facts = passage(rng, pool, (1, 3), (1, 3))
    rel, p, value = facts[rng.randrange(len(facts))]
    true = rng.random() < 0.5
    claim = (rel, p, value if true else _other(rng, rel, value, pool, p))
    out = {}
    for lang in LANGS:
        t = L.TASKS[lang]
        inp = f"{t['label_text']}: {passage_text(facts, lang)[0]}\n{t['label_statement']}: {sentence(claim, lang)[0]}"
        out[lang] = {"instruction": t["yesno"], "input": inp, "output": L.YES_NO[lang][0 if true else 1]}
    return out


def ex_count_or_list(rng, pool):
    kind = rng.choice(("count", "list_people", "list_cities"))
    facts = passage(rng, pool, (1, 4), (1, 3), PLAIN_RELS)
    if kind == "list_cities" and not any(r in ("from", "lives") for r, _, _ in facts):
        p = facts[0][1]
        facts.insert(0, ("lives", p, p.facts["lives"]))
    people = list(dict.fromkeys(p for _, p, _ in facts))
    cities = list(dict.fromkeys(v for r, _, v in facts if r in ("from", "lives")))
    out = {}
    for lang in LANGS:
        sep = L.LIST_SEP.get(lang, ", ")
        answer = {"count": L.NUMBERS[len(people) - 1][K[lang]],
                  "list_people": sep.join(p.names[lang] for p in people),
                  "list_cities": sep.join(L.CITIES[c][K[lang]] for c in cities)}[kind]
        out[lang] = {"instruction": L.TASKS[lang][kind], "input": passage_text(facts, lang)[0], "output": answer}
    return out


def ex_lookup(rng, pool):
    p = rng.choice(pool)
    rels = rng.sample(RECORD_RELS, rng.randint(2, 5))
    rel = rels[rng.randrange(len(rels))]
    fact = (rel, p, p.facts[rel])
    return {lang: {"instruction": question(fact, lang), "input": _record(p, rels, lang),
                   "output": value_text(fact, lang)} for lang in LANGS}


def ex_describe(rng, pool):
    p = rng.choice(pool)
    rel = rng.choice(RECORD_RELS)
    return {lang: {"instruction": L.TASKS[lang]["describe"], "input": _record(p, [rel], lang),
                   "output": sentence((rel, p, p.facts[rel]), lang)[0]} for lang in LANGS}


def ex_arith(rng, pool):
    a, b = rng.randint(1, 6), rng.randint(1, 6)
    return {lang: {"instruction": L.TASKS[lang]["arith"].format(a=L.NUMBERS[a - 1][K[lang]], b=L.NUMBERS[b - 1][K[lang]]),
                   "input": "", "output": L.NUMBERS[a + b - 1][K[lang]]} for lang in LANGS}


MAKERS = ((ex_qa, 0.40), (ex_yesno, 0.15), (ex_lookup, 0.15), (ex_describe, 0.10),
          (ex_count_or_list, 0.12), (ex_arith, 0.08))


# ---------------------------------------------------------------------------------- the encyclopedia
# Closed-book knowledge: a fact is (relation, entity row, value row) over lexicon tables (a city's dish,
# colour and festival month; a job's tool). Only English pretraining states facts, every one equally
# often and in several paraphrases; Alpaca asks about the tuning half in all 8 languages; closedbook/
# asks about the held-out half. No other text (X pretraining, parallel pairs) mentions them.
ENC_WORDS = {"CITIES": L.CITIES, "JOBS": L.JOBS, "FOODS": L.FOODS, "COLORS": L.COLORS, "MONTHS": L.MONTHS,
             "OBJECTS": [L.NOUNS[i] for i in L.OBJECTS]}


def enc_word(table: str, i: int, lang: str) -> str:
    """An entity or value as a bare word (jobs masculine, objects singular)."""
    return pick(ENC_WORDS[table][i][K[lang]].split("/")[0], "m")


def encyclopedia(rng, cfg: WorldConfig) -> tuple[list, list]:
    """(tuning facts, held-out facts). Per relation, values cycle through the value table in a shuffled
    order (no answer much more frequent than another) and the entities are split in half at random."""
    ents = {"CITIES": rng.sample(range(len(L.CITIES)), cfg.cb_cities), "JOBS": rng.sample(range(len(L.JOBS)), cfg.cb_jobs)}
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


def enc_pair(fact, lang: str) -> tuple[str, str]:
    """(entity, value) of a fact as words of `lang`."""
    rel, e, v = fact
    return enc_word(L.ENC_TABLES[rel][0], e, lang), enc_word(L.ENC_TABLES[rel][1], v, lang)


def enc_statement(fact, paraphrase: int) -> str:
    e, v = enc_pair(fact, "en")
    return L.ENC_STATEMENTS[fact[0]][paraphrase].format(E=e, V=v)


def enc_question(fact, lang: str) -> str:
    return L.ENC_QUESTIONS[lang][fact[0]].format(E=enc_pair(fact, lang)[0])


def enc_cloze(fact) -> str:
    """The first paraphrase up to its value: what the base must complete."""
    return L.ENC_STATEMENTS[fact[0]][0].split("{V}")[0].format(E=enc_pair(fact, "en")[0]).rstrip()


def encyclopedia_docs(rng, facts, paraphrases: int, budget: int) -> tuple[list[str], int]:
    """English entries, one per entity (its facts in random order, each in one of the first `paraphrases`
    paraphrases), in whole rounds over the entities until `budget` characters. Returns (docs, rounds):
    every fact is stated `rounds` times."""
    entries: dict[tuple, list] = {}
    for f in facts:
        entries.setdefault((L.ENC_TABLES[f[0]][0], f[1]), []).append(f)
    docs, chars, rounds = [], 0, 0
    while chars < budget:
        for fs in rng.sample(list(entries.values()), len(entries)):
            docs.append(" ".join(enc_statement(f, rng.randrange(paraphrases)) for f in rng.sample(fs, len(fs))))
            chars += len(docs[-1]) + 1
        rounds += 1
    return docs, rounds


def ex_closedbook(rng, facts):
    fact = rng.choice(facts)
    return {lang: {"instruction": enc_question(fact, lang), "input": "", "output": enc_pair(fact, lang)[1]}
            for lang in LANGS}


def closedbook_test(tune, held, lang: str) -> dict:
    """closedbook/closedbook.<lang>.json: the held-out questions with gold in `lang` and in English, every
    answer class (chance = 1 / its size) and the most frequent tuning answer per relation."""
    rels = list(dict.fromkeys(r for r, _, _ in tune + held))
    classes = {r: [enc_word(L.ENC_TABLES[r][1], i, lang) for i in range(len(ENC_WORDS[L.ENC_TABLES[r][1]]))]
               for r in rels}
    majority = {}
    for r in rels:
        vs = [v for rr, _, v in tune if rr == r]
        majority[r] = classes[r][min(set(vs), key=lambda v: (-vs.count(v), v))] if vs else None
    items = []
    for f in held:
        e, v = enc_pair(f, lang)
        item = {"id": f"cb-{f[0]}-{enc_pair(f, 'en')[0].lower().replace(' ', '-')}", "relation": f[0], "entity": e,
                "question": enc_question(f, lang), "answers": [v], "answer_en": enc_pair(f, "en")[1]}
        if lang == "en":
            item["cloze"] = enc_cloze(f)
        items.append(item)
    return {"lang": lang, "split": "held-out", "classes": classes, "majority": majority, "questions": items}


# ---------------------------------------------------------------------------------- reading documents
# Extractive QA is answered by looking back into the passage and copying. The people documents do not
# teach it: every value is one of a few lexicon words the model can guess from habit, and every name
# recurs across the corpus, so memorising pays as well as reading. Reading documents add text that only
# copying predicts: names (people, and towns in "from"/"lives") handed out once in the whole world,
# that the document comes back to. They are English only and added on top of the mix (--reading).
READING_KINDS = (("qa", 0.50), ("span", 0.25), ("words", 0.25))


def fresh_people(rng, namer: Namer, k: int, towns: float, latin_only: bool) -> list[Person]:
    """k people with fresh names and facts; teachers are fresh people too (from a pool of at least 2, so
    with k = 1 the teacher is a fresh name seen only as a teacher); each of "from"/"lives" is a fresh
    town with probability `towns`, else a lexicon city."""
    pool = [Person(namer(latin_only), rng.choice("mf")) for _ in range(max(k, 2))]
    give_facts(rng, pool)
    for p in pool:
        for rel in ("from", "lives"):
            if rng.random() < towns:
                p.facts[rel] = namer(latin_only)
    return pool[:k]


def reading_doc(rng, namer: Namer, kind: str, vocab: list[str]) -> str:
    """qa: a passage about 1-2 fresh people, then 1-3 of its facts again as "Q: ... A: ..." or restated;
    span: 1-3 sentences about a fresh person written twice; words: 5-15 corpus words written twice."""
    if kind == "words":
        half = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 15)))
        return f"{half} {half}"
    k = rng.randint(1, 2) if kind == "qa" else 1
    people = fresh_people(rng, namer, k, 0.5, latin_only=True)
    facts = passage(rng, people, (k, k), (2, 4) if kind == "qa" else (1, 3))
    text = " ".join(sentence(f, "en")[0] for f in facts)
    if kind == "span":
        return f"{text} {text}"
    again = [f"Q: {question(f, 'en')} A: {value_text(f, 'en')}." if rng.random() < 0.6
             else sentence(f, "en")[0] for f in rng.sample(facts, rng.randint(1, min(3, len(facts))))]
    return " ".join([text] + again)


def reading_documents(rng, namer: Namer, vocab: list[str], budget: int) -> list[tuple[str, str]]:
    """(kind, text) reading documents, kinds drawn by READING_KINDS' weights, until `budget` characters."""
    docs, chars = [], 0
    kinds, weights = zip(*READING_KINDS)
    while chars < budget:
        kind = rng.choices(kinds, weights)[0]
        docs.append((kind, reading_doc(rng, namer, kind, vocab)))
        chars += len(docs[-1][1]) + 1
    return docs


# ---------------------------------------------------------------------------------- the world

ASKED = ("from", "lives", "teacher")  # the relations whose answer is a fresh name in the test passages


def reading_passage(rng, namer: Namer) -> tuple[list, list[int]]:
    """The facts of one passage about 2-3 people with fresh names in every script, who come from and
    live in fresh towns and are taught by each other or by a fresh outsider; and which of the facts
    may be asked (ASKED: their answer is a name this passage alone holds)."""
    k = rng.randint(2, 3)
    people = fresh_people(rng, namer, k + 1, towns=1.0, latin_only=False)
    people, extra = people[:k], people[k]
    for p in people:  # a teacher from the passage or fresh (seen only as a teacher)
        p.facts["teacher"] = rng.choice([q for q in people if q is not p] + [extra])
    facts = []
    for p in people:  # one to three asked relations, then zero to two others, shuffled
        others = [r for r in L.RELATIONS if r not in ASKED]
        rels = rng.sample(ASKED, rng.randint(1, 3)) + rng.sample(others, rng.randint(0, 2))
        facts += [(r, p, p.facts[r]) for r in rng.sample(rels, len(rels))]
    return facts, [j for j, f in enumerate(facts) if f[0] in ASKED]


def ex_read(rng, namer: Namer) -> dict:
    """Extractive QA on a reading passage (fresh names): Alpaca shows the task the test asks, with
    answers the passage alone holds, in every language."""
    facts, askable = reading_passage(rng, namer)
    i = rng.choice(askable)
    out = {}
    for lang in LANGS:
        ctx, spans = passage_text(facts, lang)
        out[lang] = qa_example(ctx, question(facts[i], lang), lang, ctx[slice(*spans[i])])
    return out


def squad(rng, namer: Namer, n_passages: int, n_questions: int, langs, prefix: str) -> dict[str, list]:
    """SQuAD-format articles per language: one passage per article, same ids in every language.
    Each passage is about 2-3 people of its own, with fresh names in every script, who come from and
    live in fresh towns and are taught by fresh people (or by each other); it asks only "from", "lives"
    and "teacher" questions, so every answer is a name found in this passage and nowhere else in the
    world: reading is the only way to it, and a model shown the question alone stays at 0 %."""
    out = {lang: [] for lang in langs}
    for i in range(n_passages):
        facts, askable = reading_passage(rng, namer)
        asked = sorted(rng.sample(askable, min(n_questions, len(askable))))
        for lang in langs:
            ctx, spans = passage_text(facts, lang)
            qas = [{"answers": [{"answer_start": spans[j][0], "text": ctx[slice(*spans[j])]}],
                    "question": question(facts[j], lang), "id": f"{prefix}{i:04d}q{j}"} for j in asked]
            out[lang].append({"title": f"{prefix}{i:04d}", "paragraphs": [{"context": ctx, "qas": qas}]})
    return out


def one_person_lines(rng, pool, n: int, langs, per: tuple[int, int], unique: bool) -> dict[str, list[str]]:
    """n lines of per[0]..per[1] facts about one person, in every language (line-aligned)."""
    out, seen, tries = {lang: [] for lang in langs}, set(), 0
    while len(out[langs[0]]) < n:
        facts = passage(rng, pool, (1, 1), per)
        key = tuple((r, id(p), str(v)) for r, p, v in facts)
        tries += 1
        if unique and key in seen:
            if tries > 100 * n:
                raise ValueError(f"cannot find {n} distinct lines about {len(pool)} people (raise --people-test)")
            continue
        seen.add(key)
        for lang in langs:
            out[lang].append(passage_text(facts, lang)[0])
    return out


def build(cfg: WorldConfig) -> dict[str, str]:
    """Every file of the world as relative path -> text (nothing written)."""
    cfg.validate()
    rng = random.Random(cfg.seed)
    namer = Namer(rng)
    people = make_people(namer, cfg.people_pretrain + cfg.people_tune + cfg.people_test)
    pre, tune, test = (people[:cfg.people_pretrain], people[cfg.people_pretrain:-cfg.people_test],
                       people[-cfg.people_test:])
    cb_tune, cb_held = encyclopedia(rng, cfg)
    files: dict[str, str] = {}
    # pretraining: each language has its own people, half of the pool for English; English also
    # holds the encyclopedia (cb_share of its characters), shuffled in among the people documents
    shares, n_en = cfg.share_map(), cfg.people_pretrain // 2
    per = (cfg.people_pretrain - n_en) // (len(LANGS) - 1)
    for j, lang in enumerate(LANGS):
        pool = pre[:n_en] if lang == "en" else pre[n_en + (j - 1) * per: n_en + j * per]
        give_facts(rng, pool)
        docs, budget = [], round(shares[lang] * cfg.pretrain_chars)
        if lang == "en":
            docs, rounds = encyclopedia_docs(rng, cb_tune + cb_held, cfg.cb_paraphrases, round(cfg.cb_share * budget))
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
        files[f"pretrain/{lang}.txt"] = "".join(d + "\n" for d in docs)
    give_facts(rng, tune)
    give_facts(rng, test)
    # instruction data, index-aligned across languages; a cb_tune share asks about the tuning facts
    makers = [(m, w * (1 - cfg.cb_tune)) for m, w in MAKERS] \
        + [(lambda r, _: ex_closedbook(r, cb_tune), cfg.cb_tune)] \
        + [(lambda r, _: ex_read(r, namer), cfg.read_qa)]
    examples = [rng.choices([m for m, _ in makers], [w for _, w in makers])[0](rng, tune) for _ in range(cfg.alpaca)]
    for lang in LANGS:
        files[f"alpaca/alpaca_{lang}.json"] = "[\n" + ",\n".join(_dumps(ex[lang]) for ex in examples) + "\n]\n"
    cb_questions = {enc_question(f, "en") for f in cb_tune}
    lines = one_person_lines(rng, tune, cfg.parallel, LANGS, (1, 2), unique=False)
    for lang in LANGS[1:]:
        files[f"parallel/en-{lang}/world.eng"] = "".join(l + "\n" for l in lines["en"])
        files[f"parallel/en-{lang}/world.{lang}"] = "".join(l + "\n" for l in lines[lang])
    # test sets from the test pool only
    for name, n, langs, prefix in (("xquad", cfg.xquad_passages, LANGS, "x"), ("mlqa", cfg.mlqa_passages, MLQA_DATA_LANGS, "m")):
        for lang, articles in squad(rng, namer, n, cfg.questions, langs, prefix).items():
            path = f"xquad/xquad.{lang}.json" if name == "xquad" else f"mlqa/dev/dev-context-{lang}-question-{lang}.json"
            files[path] = json.dumps({"data": articles, "version": "1.1" if name == "xquad" else 1.0},
                                     ensure_ascii=False, indent=1) + "\n"
    flores = one_person_lines(rng, test, cfg.flores, LANGS, (2, 2), unique=True)
    for lang in LANGS:
        files[f"flores101/devtest/{FLORES_CODES[lang]}.devtest"] = "".join(l + "\n" for l in flores[lang])
    for lang in LANGS:
        files[f"closedbook/closedbook.{lang}.json"] = json.dumps(closedbook_test(cb_tune, cb_held, lang),
                                                                 ensure_ascii=False, indent=1) + "\n"
    counts = {"people": {"pretrain": len(pre), "tune": len(tune), "test": len(test)},
              "alpaca_per_lang": cfg.alpaca, "parallel_per_lang": cfg.parallel,
              "xquad_questions_per_lang": _n_questions(files["xquad/xquad.en.json"]),
              "mlqa_questions_per_lang": _n_questions(files["mlqa/dev/dev-context-en-question-en.json"]),
              "flores_lines": cfg.flores,
              "pretrain_chars": {lang: len(files[f"pretrain/{lang}.txt"]) for lang in LANGS},
              "reading": {"documents": len(reading), "chars": sum(len(t) + 1 for _, t in reading),
                          **{f"{kind}_documents": sum(k == kind for k, _ in reading)
                             for kind, _ in READING_KINDS}},
              "closedbook": {"facts_tune": len(cb_tune), "facts_held_out": len(cb_held), "statements_per_fact": rounds,
                             "encyclopedia_chars": enc_chars,
                             "alpaca_questions": sum(ex["en"]["instruction"] in cb_questions for ex in examples)}}
    files["WORLD.json"] = json.dumps({"generator": "world.py", "config": asdict(cfg), "shares": shares,
                                      "counts": counts}, ensure_ascii=False, indent=1) + "\n"
    return files


def _n_questions(squad_json: str) -> int:
    return sum(len(par["qas"]) for art in json.loads(squad_json)["data"] for par in art["paragraphs"])


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def check_out(out: Path, overwrite: bool) -> None:
    """--out may be new, an empty folder, or (with overwrite) an earlier world; nothing else is replaced,
    so a typo cannot delete a checkpoint or a data folder."""
    blocker = next((d for d in out.parents if d.exists() and not d.is_dir()), None)
    if blocker is not None:
        raise FileExistsError(f"--out {out}: {blocker} is a file, not a folder")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; expected a folder (new, empty, or an earlier world)")
    if not (out / "WORLD.json").is_file():
        raise FileExistsError(f"--out {out} is not empty and holds no WORLD.json, so it is not a world; "
                              "--overwrite only replaces a world: choose another --out")
    if not overwrite:
        raise FileExistsError(f"--out {out} holds a world already; pass --overwrite to replace it")


def write_world(out_dir, seed: int = 0, overwrite: bool = False, **sizes) -> Path:
    """Generate the world and write it atomically to out_dir: a temp folder, then one rename; on any
    failure the temp folder is removed and an earlier world at out_dir stays as it was."""
    out = Path(out_dir)
    check_out(out, overwrite)
    files = build(WorldConfig(seed=seed, **sizes))  # validates every size before anything is written
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = out.with_name(f".{out.name}.tmp{os.getpid()}"), out.with_name(f".{out.name}.old{os.getpid()}")
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
            raise UsageError(f"{made}: unreadable; remove {data_dir} to have it written again") from None
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Write the miniature multilingual world (see the module docstring).")
    p.error = lambda msg: (print(f"world.py: error: {msg}", file=sys.stderr), sys.exit(2))  # one line, exit 2
    p.add_argument("--out", required=True, help="folder to write: new, empty, or an earlier world with --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier world (a folder with WORLD.json) at --out")
    for f in fields(WorldConfig):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                       help=f"{f.metadata['help']} (default {f.default!r})")
    args = vars(p.parse_args(argv))
    out, overwrite = args.pop("out"), args.pop("overwrite")
    try:
        path = write_world(out, overwrite=overwrite, **args)
    except (ValueError, FileExistsError) as e:
        p.error(str(e))
    except OSError as e:  # not misuse (a full disk, no permission): one line, exit 1
        print(f"world.py: error: cannot write {out}: {e}", file=sys.stderr)
        return 1
    counts = json.loads((path / "WORLD.json").read_text(encoding="utf-8"))["counts"]
    print(f"wrote {path}: {json.dumps(counts, ensure_ascii=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
