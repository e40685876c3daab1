"""The miniature world's people and every text made of their facts, in 8 languages.

People have names in every script (Kamiro, Κάμιρο, कामिरो, كاميرو, 卡米罗) and one value per relation.
A fact is (relation, person, value); `sentence` and `question` render it in en de zh ar el hi tr vi
from lexicon.json (data only; docs/world.md). Made from them: passages, Alpaca examples, the
encyclopedia's words, reading and ask documents, the SQuAD-style test passages; world.py chooses
how many and writes the files (python world.py --help).
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

from data import LANGS, qa_example


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
            gen = {"a": "ın", "e": "in", "i": "in", "o": "un", "u": "un"}[last]
            out[slot + ".gen"] = (name + "'n" + gen, self.gender)
            out[slot + ".dat"] = (name + "'y" + ("a" if last in "aou" else "e"), self.gender)
        return out


def _spell(sylls: list[str]) -> dict[str, str]:
    """A name, given as latin CV syllables, in every script."""
    latin = "".join(sylls).capitalize()
    greek = "".join(L.CONSONANTS[s[0]][0] + L.VOWELS[s[1]][1 if i == 0 else 0]
                    for i, s in enumerate(sylls))  # the first syllable accented
    names = {lang: latin for lang in ("en", "de", "tr", "vi")}
    names["el"] = greek[0].upper() + greek[1:]
    names["hi"] = "".join(L.CONSONANTS[s[0]][1] + L.VOWELS[s[1]][2] for s in sylls)
    names["ar"] = "".join(L.CONSONANTS[s[0]][2] + L.VOWELS[s[1]][3] for s in sylls)
    names["zh"] = "".join(L.ZH_SYLLABLES[s] for s in sylls)
    return names


LEXICON_WORDS = {w.lower() for table in (L.CITIES, L.JOBS, L.NOUNS, L.COLORS, L.FOODS, L.LANGUAGES,
                                         L.MONTHS)
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
            if names["en"].lower() in LEXICON_WORDS or any(names[l] in self.seen[l]
                                                            for l in scripts):
                continue
            for lang in scripts:
                self.seen[lang].add(names[lang])
            return dict.fromkeys(LANGS, names["en"]) if latin_only else names
        raise ValueError(f"the {len(self.sylls) ** 3} three-syllable names are used up: "
                         "lower --reading or --people-*")


def make_people(namer: Namer, n: int) -> list[Person]:
    """n people with fresh names (unique in every script, distinct from every lexicon word)."""
    return [Person(namer(), namer.rng.choice("mf")) for _ in range(n)]


def fresh_people(rng, namer: Namer, k: int, towns: float, latin_only: bool) -> list[Person]:
    """k people with fresh names and facts; teachers are fresh people too (from a pool of at least
    2, so with k = 1 the teacher is a fresh name seen only as a teacher); each of "from"/"lives" is
    a fresh town with probability `towns`, else a lexicon city."""
    pool = [Person(namer(latin_only), rng.choice("mf")) for _ in range(max(k, 2))]
    give_facts(rng, pool)
    for p in pool:
        for rel in ("from", "lives"):
            if rng.random() < towns:
                p.facts[rel] = namer(latin_only)
    return pool[:k]


def give_facts(rng: random.Random, pool: list[Person]) -> None:
    """One value per relation for each person; teachers come from the same pool."""
    for i, p in enumerate(pool):
        home, city = rng.sample(range(len(L.CITIES)), 2)
        t = rng.randrange(len(pool) - 1)
        p.facts = {"from": home, "lives": city, "job": rng.randrange(len(L.JOBS)),
                   "age": rng.randint(18, 79),
                   "has": (rng.randrange(len(L.COUNTS)), rng.randrange(len(L.NOUNS))),
                   "color": rng.randrange(len(L.COLORS)), "food": rng.randrange(len(L.FOODS)),
                   "speaks": rng.randrange(len(L.LANGUAGES)), "teacher": pool[t + (t >= i)],
                   "month": rng.randrange(len(L.MONTHS))}


# --------------------------------------------------------------------------------- rendering
SLOT = re.compile(r"\{(\w+(?:\.\w+)?)(?::([^{}]*))?\}")
TABLES = {"from": ("city", L.CITIES), "lives": ("city", L.CITIES), "color": ("color", L.COLORS),
          "food": ("food", L.FOODS), "speaks": ("lang", L.LANGUAGES), "month": ("month", L.MONTHS)}


def pick(word: str, gender: str) -> str:
    """'m|f|n' alternatives -> the one agreeing with gender (a missing form: the first)."""
    alts = word.split("|")
    i = "mfn".index(gender)
    return alts[i] if i < len(alts) else alts[0]


def slots(rel: str, p: Person, value, lang: str) -> dict[str, tuple[str, str]]:
    """Slot name -> (text, gender) for one fact in one language."""
    k, s = K[lang], p.forms(lang, "P")
    if rel in TABLES:
        name, table = TABLES[rel]
        fresh = isinstance(value, dict)  # a fresh town: its name in every script
        s[name] = (value[lang] if fresh else table[value][k], "m")
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


def render(template: str, s: dict,
           answer: str | None = None) -> tuple[str, tuple[int, int] | None]:
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
    """Facts about rng-many people of the pool, rng-many distinct relations each, by person."""
    return [(r, p, p.facts[r]) for p in rng.sample(pool, rng.randint(*people))
            for r in rng.sample(rels, rng.randint(*per))]


# ------------------------------------------------------------------------ instruction examples
# Each maker draws its random choices once, then renders the same content in every language.

def _record(p: Person, rels, lang: str) -> str:
    f = L.FIELDS[lang]
    rows = [(f["name"], p.names[lang])]
    rows += [(f[r], value_text((r, p, p.facts[r]), lang)) for r in rels]
    return "\n".join(f"{a}: {b}" for a, b in rows)


def extractive_qa(facts: list, i: int) -> dict:
    """Extractive QA on the passage of `facts`, asking about facts[i], in every language."""
    out = {}
    for lang in LANGS:
        ctx, spans = passage_text(facts, lang)
        out[lang] = qa_example(ctx, question(facts[i], lang), lang, ctx[slice(*spans[i])])
    return out


def ex_qa(rng, pool):
    facts = passage(rng, pool, (1, 3), (1, 3))
    return extractive_qa(facts, rng.randrange(len(facts)))


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
        inp = (f"{t['label_text']}: {passage_text(facts, lang)[0]}\n"
               f"{t['label_statement']}: {sentence(claim, lang)[0]}")
        out[lang] = {"instruction": t["yesno"], "input": inp,
                     "output": L.YES_NO[lang][0 if true else 1]}
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
        out[lang] = {"instruction": L.TASKS[lang][kind], "input": passage_text(facts, lang)[0],
                     "output": answer}
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
    return {lang: {"instruction": L.TASKS[lang]["arith"].format(a=L.NUMBERS[a - 1][K[lang]],
                                                                b=L.NUMBERS[b - 1][K[lang]]),
                   "input": "", "output": L.NUMBERS[a + b - 1][K[lang]]} for lang in LANGS}


MAKERS = ((ex_qa, 0.40), (ex_yesno, 0.15), (ex_lookup, 0.15), (ex_describe, 0.10),
          (ex_count_or_list, 0.12), (ex_arith, 0.08))


# ------------------------------------------------------------------ the encyclopedia's words
# An encyclopedia fact is (relation, entity row, value row) over lexicon tables (a city's dish,
# colour and festival month; a job's tool); world.py chooses the facts and where they are stated.
ENC_WORDS = {"CITIES": L.CITIES, "JOBS": L.JOBS, "FOODS": L.FOODS, "COLORS": L.COLORS,
             "MONTHS": L.MONTHS, "OBJECTS": [L.NOUNS[i] for i in L.OBJECTS]}


def enc_word(table: str, i: int, lang: str) -> str:
    """An entity or value as a bare word (jobs masculine, objects singular)."""
    return pick(ENC_WORDS[table][i][K[lang]].split("/")[0], "m")


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
    prefix = L.ENC_STATEMENTS[fact[0]][0].split("{V}")[0]
    return prefix.format(E=enc_pair(fact, "en")[0]).rstrip()


# --------------------------------------------------------------------------- reading documents
# Extractive QA is answered by copying from the passage. People documents do not teach it (their
# values are lexicon words guessed from habit, their names recur: memorising pays as well), so
# reading documents add text only copying predicts: names handed out once in the whole world, that
# the document comes back to. English only, on top of the mix (--reading).
READING_KINDS = (("qa", 0.50), ("span", 0.25), ("words", 0.25))


def reading_doc(rng, namer: Namer, kind: str, vocab: list[str]) -> str:
    """qa: a passage about 1-2 fresh people, then 1-3 of its facts again as "Q: ... A: ..." or
    restated; span: 1-3 sentences about a fresh person written twice; words: 5-15 corpus words
    written twice."""
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
             else sentence(f, "en")[0]
             for f in rng.sample(facts, rng.randint(1, min(3, len(facts))))]
    return " ".join([text] + again)


def reading_documents(rng, namer: Namer, vocab: list[str], budget: int) -> list[tuple[str, str]]:
    """(kind, text) documents, kinds drawn by READING_KINDS' weights, until `budget` characters."""
    docs, chars = [], 0
    kinds, weights = zip(*READING_KINDS)
    while chars < budget:
        kind = rng.choices(kinds, weights)[0]
        docs.append((kind, reading_doc(rng, namer, kind, vocab)))
        chars += len(docs[-1][1]) + 1
    return docs


# ------------------------------------------------------------------------------ test passages
ASKED = ("from", "lives", "teacher")  # relations whose answer is a fresh name in the test passages


def reading_passage(rng, namer: Namer, latin_only: bool = False) -> tuple[list, list[int]]:
    """The facts of one passage about 2-3 people with fresh names (in every script, or Latin only)
    and fresh towns, taught by each other or by a fresh outsider; and which of the facts may be
    asked (ASKED: their answer is a name this passage alone holds)."""
    k = rng.randint(2, 3)
    people = fresh_people(rng, namer, k + 1, towns=1.0, latin_only=latin_only)
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
    """Extractive QA on a reading passage in every language: the task the test asks."""
    facts, askable = reading_passage(rng, namer)
    return extractive_qa(facts, rng.choice(askable))


def ask_document(rng, namer: Namer) -> str:
    """A reading passage in English, then its askable facts shuffled as "Q: ... A: ..."."""
    facts, askable = reading_passage(rng, namer, latin_only=True)
    qa = [f"Q: {question(facts[j], 'en')} A: {value_text(facts[j], 'en')}."
          for j in rng.sample(askable, len(askable))]
    return " ".join([passage_text(facts, "en")[0]] + qa)


def squad(rng, namer: Namer, n_passages: int, n_questions: int, langs,
          prefix: str) -> dict[str, list]:
    """SQuAD-format articles per language (same ids): one reading passage each, asking only ASKED
    relations, whose answers no other text in the world holds (without the passage: 0 %)."""
    out = {lang: [] for lang in langs}
    for i in range(n_passages):
        facts, askable = reading_passage(rng, namer)
        asked = sorted(rng.sample(askable, min(n_questions, len(askable))))
        for lang in langs:
            ctx, spans = passage_text(facts, lang)
            qas = [{"answers": [{"answer_start": spans[j][0], "text": ctx[slice(*spans[j])]}],
                    "question": question(facts[j], lang), "id": f"{prefix}{i:04d}q{j}"}
                   for j in asked]
            out[lang].append({"title": f"{prefix}{i:04d}",
                              "paragraphs": [{"context": ctx, "qas": qas}]})
    return out


def one_person_lines(rng, pool, n: int, langs, per: tuple[int, int],
                     unique: bool) -> dict[str, list[str]]:
    """n lines of per[0]..per[1] facts about one person, in every language (line-aligned)."""
    out, seen, tries = {lang: [] for lang in langs}, set(), 0
    while len(out[langs[0]]) < n:
        facts = passage(rng, pool, (1, 1), per)
        key = tuple((r, id(p), str(v)) for r, p, v in facts)
        tries += 1
        if unique and key in seen:
            if tries > 100 * n:
                raise ValueError(f"cannot find {n} distinct lines about {len(pool)} people "
                                 "(raise --people-test)")
            continue
        seen.add(key)
        for lang in langs:
            out[lang].append(passage_text(facts, lang)[0])
    return out
