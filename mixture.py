"""mixture.py — the training data of each model in the paper: CoIT, MuIT and the ablations,
and the inputs of a train.py run.

    mix = build_mixture("coit", "../shared/data", ["zh"], n_translation=600, n_alpaca=600, seed=0)
    print(composition(mix, tok))  # examples per source x language, target tokens, tokens per char

A recipe names the parts (docs/paper.md):

    alpaca       English Alpaca only                         the paper's Alpaca baseline
    coit         English Alpaca + Alpaca in X + en->X pairs  x-LLaMA (one language X)
    muit         the union of coit over several languages    m-LLaMA; the translation budget uniform
                                                             (--budget) or from an allocation file
                                                             {"de": 4000, ...} (scaling.py allocate)
    trans_only   en->X pairs only                            ablation
    instr_only   English Alpaca + Alpaca in X                ablation (no translation)
    coit_x2en    like coit with X->en pairs                  ablation (direction)

The translation budget of muit is split evenly (even_split, the remainder to the first languages
given) or by scaling laws fitted to a sweep: allocate() maximises the sum of predicted scores
subject to the budget and bounds (equal marginal gains, then integer sizes; scaling.py explains
the laws and writes the allocation file).

Subsets are the FIRST N examples of each Alpaca file and the FIRST N pairs of each corpus (stems in
sorted order), as in the scaling study; each translation pair becomes an instruction with one of the
33 paraphrases of data.TRANSLATION_INSTRUCTIONS (by index), and every example carries its source and
language, so train.py can log the loss of each part.

train.py reads its inputs through `prepare`, with the world's ask documents (replay, read_blocks)
mixed in: all checked before anything in --out is touched.

    python mixture.py --data ../shared/data --recipe coit --langs zh --tokenizer runs/smollm2
    python mixture.py --help                               # every flag
"""
from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import torch.distributed as dist

import checkpoint
import world as W
from cli import Parser, UsageError, add_config_flags, check_config, guard, opt, read_text
from data import (DataError, alpaca_path, check_lang, load_json, read_alpaca, read_parallel,
                  translation_example)
from tokenizer import Tokenizer, encode_example, pack_blocks, pretrain_examples

RECIPES = {  # recipe -> (English Alpaca, translated Alpaca, translation direction or None)
    "alpaca": (True, False, None),        # the English-only baseline
    "coit": (True, True, "en-X"),         # x-LLaMA: one language
    "muit": (True, True, "en-X"),         # m-LLaMA: several languages
    "trans_only": (False, False, "en-X"),  # ablation: translation data only
    "instr_only": (True, True, None),     # ablation: (translated) instructions only
    "coit_x2en": (True, True, "X-en"),    # ablation: X->en translation instead of en->X
}


def even_split(langs, budget: int) -> dict[str, int]:
    """B/L pairs each, the remainder one each to the first B mod L languages (the order given)."""
    q, r = divmod(int(budget), len(langs))
    return {l: q + (i < r) for i, l in enumerate(langs)}


def translation_counts(langs, available: dict, n_translation=None, budget=None,
                       allocation=None) -> dict:
    """Pairs per language: allocation (dict or JSON file) | budget split uniformly |
    n_translation each | all."""
    if sum(x is not None for x in (n_translation, budget, allocation)) > 1:
        raise ValueError("give at most one of n_translation, budget, allocation")
    if allocation is not None:
        if not isinstance(allocation, dict):
            allocation = load_json(Path(allocation))
            if not isinstance(allocation, dict):
                raise DataError("allocation file must hold an object like {\"de\": 4000}")
        if set(allocation) != set(langs):
            raise DataError(f"allocation languages {sorted(allocation)} do not match --langs "
                            f"{list(langs)}")
        counts = {}
        for l in langs:
            v = allocation[l]
            if not isinstance(v, (int, float)) or v < 0 or int(v) != v:
                raise DataError(f"allocation[{l!r}] = {v!r}: expected a non-negative whole number")
            counts[l] = int(v)
    elif budget is not None:
        counts = even_split(langs, budget)  # the remainder goes to the first languages given
    elif n_translation is not None:
        counts = {l: int(n_translation) for l in langs}
    else:
        counts = dict(available)
    for l, n in counts.items():
        if n > available[l]:
            raise DataError(f"asked for {n} en-{l} translation pairs but only {available[l]} "
                            "exist")
    return counts


# ----------------------------------------------------------------------------- allocation
# The translation budget of a MuIT mixture split by fitted scaling laws (scaling.LawFit: predict,
# marginal, inverse_marginal, unit_gain), or uniformly within bounds.

def _bounds(langs, budget, minimum, available):
    if budget != int(budget) or budget <= 0:
        raise ValueError(f"--budget must be a positive whole number, got {budget}")
    low = minimum.get if isinstance(minimum, dict) else (lambda l, default: minimum)
    lo = {l: int(math.ceil(low(l, 1))) for l in langs}
    hi = {l: (int(available[l]) if available and l in available else None) for l in langs}
    for l in langs:
        if lo[l] <= 0:
            raise ValueError(f"--min: sizes must be positive (the laws are undefined at 0), "
                             f"got {lo[l]} for {l}")
        if hi[l] is not None and hi[l] < lo[l]:
            raise ValueError(f"--available: {l} has {hi[l]} pairs, below the minimum {lo[l]}")
    if budget < sum(lo.values()):
        raise ValueError(f"--budget {budget} is below the sum of minimums {sum(lo.values())} "
                         f"({len(langs)} langs)")
    if all(h is not None for h in hi.values()) and budget > sum(hi.values()):
        raise ValueError(f"--budget {budget} is above the sum of available data "
                         f"{sum(hi.values())}")
    return lo, hi


def _water_level(f, budget, lo, hi, langs, lo_t, hi_t, decreasing):
    """Bisection on t (log scale) so that sum_l clip(f(l, t), lo_l, hi_l) = budget."""
    def clipped(l, t):
        return min(max(f(l, t), lo[l]), math.inf if hi[l] is None else hi[l])
    for _ in range(300):
        mid = math.sqrt(lo_t * hi_t)
        if (sum(clipped(l, mid) for l in langs) > budget) == decreasing:
            lo_t = mid
        else:
            hi_t = mid
    t = math.sqrt(lo_t * hi_t)
    return {l: clipped(l, t) for l in langs}


def _to_integers(x, budget, lo, hi, gain):
    """Round down, hand out the remainder by largest unit gain, then unit moves until none
    helps."""
    n = {l: min(max(int(math.floor(v)), lo[l]), v if hi[l] is None else hi[l])
         for l, v in x.items()}
    n = {l: int(v) for l, v in n.items()}
    cap = lambda l: math.inf if hi[l] is None else hi[l]  # noqa: E731
    while sum(n.values()) < budget:
        l = max((l for l in n if n[l] < cap(l)), key=lambda l: gain(l, n[l]))
        n[l] += 1
    while sum(n.values()) > budget:
        l = min((l for l in n if n[l] > lo[l]), key=lambda l: gain(l, n[l] - 1))
        n[l] -= 1
    for _ in range(10 * len(n) + 1000):  # concave + separable: no improving move = optimal
        up = [l for l in n if n[l] < cap(l)]
        down = [l for l in n if n[l] > lo[l]]
        if not up or not down:
            break
        i = max(up, key=lambda l: gain(l, n[l]))
        j = min((l for l in down if l != i), key=lambda l: gain(l, n[l] - 1), default=None)
        if j is None or gain(i, n[i]) <= gain(j, n[j] - 1) * (1 + 1e-12) + 1e-15:
            break
        n[i] += 1
        n[j] -= 1
    assert sum(n.values()) == budget
    return n


def objective(fits, sizes, weights=None) -> float:
    return float(sum((weights or {}).get(l, 1.0) * fits[l].predict(sizes[l]) for l in sizes))


def allocate(fits: dict[str, LawFit], budget: int, minimum=1, available=None,
             weights=None) -> dict[str, int]:
    """Integer sizes maximising sum_l w_l S_l(X_l), sum X_l = budget, min <= X_l <= available."""
    langs = sorted(fits)
    w = {l: float((weights or {}).get(l, 1.0)) for l in langs}
    for l in langs:
        f = fits[l]
        if f.alpha <= 0 or (f.form == "power" and f.beta <= 0) or w[l] <= 0:
            raise ValueError(f"{l}: the law must be increasing (alpha, beta > 0) and its weight "
                             f"> 0 to allocate; got alpha={f.alpha:g} beta={f.beta:g} "
                             f"weight={w[l]:g}")
    lo, hi = _bounds(langs, budget, minimum, available)
    # equal marginal gains: X_l(lambda) = inverse of w_l S_l'; sum is decreasing in lambda
    lam_hi = max(w[l] * float(fits[l].marginal(lo[l])) for l in langs) * 2
    lam_lo = min(w[l] * float(fits[l].marginal(max(budget, 1))) for l in langs) / 2
    x = _water_level(lambda l, lam: fits[l].inverse_marginal(lam / w[l]), budget, lo, hi, langs,
                     lam_lo, lam_hi, decreasing=True)
    return _to_integers(x, budget, lo, hi, lambda l, v: w[l] * fits[l].unit_gain(v))


def uniform_split(langs, budget: int, minimum=1, available=None) -> dict[str, int]:
    """even_split, clipped to the bounds with the rest spread over the others
    (integers, sum = B)."""
    langs = list(langs)
    lo, hi = _bounds(langs, budget, minimum, available)
    even = even_split(langs, budget)
    if all(lo[l] <= n and (hi[l] is None or n <= hi[l]) for l, n in even.items()):
        return even
    pos = {l: i for i, l in enumerate(langs)}
    x = _water_level(lambda l, t: t, budget, lo, hi, langs, 1e-9, 2.0 * budget + 1,
                     decreasing=False)
    n = {l: max(lo[l], int(math.floor(v + 1e-9))) for l, v in x.items()}
    while sum(n.values()) < budget:  # the remainder, one unit at a time to the smallest open share
        open_ = (l for l in langs if hi[l] is None or n[l] < hi[l])
        n[min(open_, key=lambda l: (n[l], pos[l]))] += 1
    while sum(n.values()) > budget:
        n[max((l for l in langs if n[l] > lo[l]), key=lambda l: (n[l], pos[l]))] -= 1
    return n


# ----------------------------------------------------------------------------- mixtures

def build_mixture(recipe: str, data_dir, langs, *, n_translation=None, budget=None,
                  allocation=None, n_alpaca=None, seed: int = 0) -> list[dict]:
    """The training mixture of a recipe, shuffled with `seed`; each example carries source and lang.

    First-N subsets: n_alpaca and the translation counts take the FIRST N of each file/corpus.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r} (expected one of {', '.join(RECIPES)})")
    for name, v in (("n_alpaca", n_alpaca), ("n_translation", n_translation), ("budget", budget)):
        if v is not None and (not isinstance(v, int) or v < 0):  # a negative N would slice [:-N]
            raise DataError(f"--{name.replace('_', '-')} {v}: expected a whole number >= 0")
    langs = [langs] if isinstance(langs, str) else list(langs)
    use_en, use_x, direction = RECIPES[recipe]
    if recipe == "alpaca":
        langs = []
    else:
        for l in langs:
            check_lang(l, allow_en=False)
        if not langs:
            raise ValueError(f"recipe {recipe!r} needs at least one non-English language")
        if recipe in ("coit", "coit_x2en") and len(langs) != 1:
            raise ValueError(f"recipe {recipe!r} takes one language, got {langs}")
    out = []

    def add_alpaca(lang):
        exs = read_alpaca(alpaca_path(data_dir, lang))
        if n_alpaca is not None:
            if n_alpaca > len(exs):
                raise DataError(f"asked for {n_alpaca} Alpaca examples but "
                                f"{alpaca_path(data_dir, lang)} has {len(exs)}")
            exs = exs[:n_alpaca]
        out.extend({**e, "source": "alpaca", "lang": lang} for e in exs)

    if use_en:
        add_alpaca("en")
    if use_x:
        for l in langs:
            add_alpaca(l)
    if direction:
        corpora = {l: read_parallel(data_dir, l) for l in langs}
        counts = translation_counts(langs, {l: len(p) for l, p in corpora.items()},
                                    n_translation, budget, allocation)
        for l in langs:
            for i, (en, x) in enumerate(corpora[l][:counts[l]]):
                ex = (translation_example(en, x, "en", l, index=i) if direction == "en-X"
                      else translation_example(x, en, l, "en", index=i))
                out.append({**ex, "source": "translation", "lang": l})
    random.Random(seed).shuffle(out)
    return out


def composition(examples: list[dict], tok: Tokenizer | None = None) -> str:
    """Table: examples per source x language (+ target tokens, tokens per char with a tokenizer)."""
    rows: dict[tuple, list] = {}
    for ex in examples:
        r = rows.setdefault((ex.get("source", "?"), ex.get("lang", "?")), [0, 0, 0])
        r[0] += 1
        if tok is not None:
            r[1] += len(tok.encode(ex["output"])) + 1  # + EOS
            r[2] += len(ex["output"])

    def line(src, lang, n, t, c):  # (t - n) / c: target tokens without EOS per output character
        cols = f"{src:<12} {lang:<5} {n:>9}"
        return cols + (f" {t:>14} {(t - n) / max(c, 1):>9.3f}" if tok else "")
    head = f"{'source':<12} {'lang':<5} {'examples':>9}"
    head += f" {'target_tokens':>14} {'tok/char':>9}" if tok else ""
    lines = [head, "-" * len(head)] + [line(*k, *v) for k, v in sorted(rows.items())]
    total = [sum(v[i] for v in rows.values()) for i in range(3)]
    return "\n".join(lines + ["-" * len(head), line("total", "", *total)])


@dataclass
class MixtureConfig:
    data: str | None = opt(None, "data folder (../shared/data or a world)", required=True)
    recipe: str = opt("coit", "mixture recipe", choices=tuple(RECIPES))
    langs: str = opt("de", "comma-separated non-English languages")
    tokenizer: str | None = opt(None, "model folder with tokenizer.model or tokenizer.json (adds "
                                      "token columns)")
    n_translation: int | None = opt(None, "first N translation pairs per language",
                                    range="[0, inf)")
    budget: int | None = opt(None, "translation pairs in total, split uniformly", range="[0, inf)")
    allocation: str | None = opt(None, "JSON file {lang: pairs} (from scaling.py allocate)")
    n_alpaca: int | None = opt(None, "first N Alpaca examples per language", range="[0, inf)")
    seed: int = opt(0, "shuffling seed")


def main(argv=None) -> int:
    """Build a recipe's training mixture and print its composition; exit 2 on bad input."""
    parser = add_config_flags(Parser(prog="mixture.py", doc=__doc__), MixtureConfig)
    cfg = MixtureConfig(**vars(parser.parse_args(argv)))

    def body():
        check_config(cfg)
        tok = Tokenizer.from_folder(cfg.tokenizer) if cfg.tokenizer else None
        mix = build_mixture(cfg.recipe, cfg.data, cfg.langs.split(","),
                            n_translation=cfg.n_translation, budget=cfg.budget,
                            allocation=cfg.allocation, n_alpaca=cfg.n_alpaca, seed=cfg.seed)
        print(composition(mix, tok))
    return guard("mixture.py", body, usage=(ValueError, FileNotFoundError))


def check_data(data_dir, recipe: str, langs: list[str]) -> None:
    """The data folder must hold the files the recipe reads (one line naming what is missing)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"--data {root}: folder not found")
    need = []
    if recipe == "pretrain":
        if not list((root / "pretrain").glob("*.txt")):
            need.append(root / "pretrain" / "<lang>.txt")
    else:
        if recipe != "trans_only":
            need.append(root / "alpaca" / "alpaca_en.json")
        for x in langs if recipe != "alpaca" else []:
            if recipe != "trans_only":
                need.append(root / "alpaca" / f"alpaca_{x}.json")
            if recipe != "instr_only":
                need.append(root / "parallel" / f"en-{x}")
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise DataError(f"--data {root}: missing {', '.join(missing)}")


def encoded_mixture(cfg, tok: Tokenizer) -> list[dict]:
    """train.py's mixture for a TrainConfig `cfg`, tokenized; examples truncated away are
    dropped."""
    langs = cfg.langs.split(",") if cfg.recipe == "muit" else [cfg.lang]
    budget, allocation = cfg.budget, None  # uniform: build_mixture splits the budget evenly
    if cfg.allocation != "uniform":
        budget, allocation = None, cfg.allocation
    mix = build_mixture(cfg.recipe, cfg.data, langs, n_translation=cfg.n_translation,
                        budget=budget, allocation=allocation, n_alpaca=cfg.n_alpaca, seed=cfg.seed)
    encoded = []
    for ex in mix:
        enc = encode_example(tok, ex, cfg.max_len)
        if enc is not None:
            encoded.append(dict(enc, source=ex["source"], lang=ex["lang"]))
    if not encoded:
        raise DataError(f"--data {cfg.data}: recipe {cfg.recipe} produced no training examples")
    return encoded + replay_examples(cfg, tok, len(encoded))


# --------------------------------------------------------------- replay: practice in binding
# Binding a question to the right passage, practised (docs/world.md): the world's ask documents,
# in the base's read phase and in every fine-tuning recipe alike; real data has none (default 0).
REPLAY_SHARE = 0.3


def replay_share(cfg) -> float:
    """--replay; by default REPLAY_SHARE in fine-tuning when DATA/read/en.txt exists, else 0."""
    path = Path(cfg.data) / "read" / "en.txt"
    if cfg.replay is None:
        return REPLAY_SHARE if path.is_file() and cfg.recipe != "pretrain" else 0.0
    if cfg.replay and not path.is_file():
        raise DataError(f"--replay {cfg.replay}: {path} is missing (world.py writes it)")
    return cfg.replay


def ask_documents(cfg, tok: Tokenizer) -> list[list[int]]:
    """DATA/read/en.txt's documents, encoded, shuffled with --seed."""
    path = Path(cfg.data) / "read" / "en.txt"
    docs = [tok.encode(d) for d in read_text(path).splitlines() if d.strip()]
    if not docs:
        raise DataError(f"{path}: no documents")
    random.Random(cfg.seed).shuffle(docs)
    return docs


def replay_examples(cfg, tok: Tokenizer, n_mix: int) -> list[dict]:
    """Fine-tuning: n_mix * share / (1 - share) ask documents, so they are `share` of the
    examples, cycled, each [bos] doc [eos] cut at --max-len, every token a label."""
    if not (share := replay_share(cfg)):
        return []
    ids = [[tok.bos_id, *d, tok.eos_id][:cfg.max_len] for d in ask_documents(cfg, tok)]
    return [dict(input_ids=ids[i % len(ids)], labels=list(ids[i % len(ids)]), source="replay",
                 lang="en") for i in range(round(n_mix * share / (1 - share)))]


def read_blocks(cfg, tok: Tokenizer, n_blocks: int) -> list[dict]:
    """The base's read phase: ask documents packed into blocks, `share` of these and n_blocks."""
    share = replay_share(cfg)
    return pack_blocks(ask_documents(cfg, tok), tok, cfg.max_len, "read", "en",
                       round(n_blocks * share / (1 - share))) if share else []


# ------------------------------------------------------------- a run's inputs, made on first use
@dataclass
class Inputs:
    """What a run reads, all checked before anything in --out is touched (`prepare` makes them)."""
    base: Path | None          # the checkpoint fine-tuned; None when pretraining from scratch
    tokenizer: Tokenizer
    examples: list[dict]       # tokenized: input_ids, labels, source, lang


def prepare(cfg, rank: int, world: int, make_base) -> Inputs:
    """Everything a train.TrainConfig `cfg` reads, checked before anything in --out is touched:
    the world, the base (the shipped one, or `make_base(data, out, **settings)`:
    train.ensure_base), the tokenizer, the tokenized examples."""
    def once(fn):  # rank 0 does the cached work first, the others then find it done
        r = fn() if rank == 0 else None
        if world > 1:
            dist.barrier()
        return r if rank == 0 else fn()

    if cfg.data == type(cfg).data:  # the default --data: the world is written when missing
        once(lambda: W.ensure(cfg.data))
    check_data(cfg.data, cfg.recipe, cfg.langs.split(",") if cfg.recipe == "muit"
                       else [cfg.lang])
    out = Path(cfg.out)
    if cfg.recipe == "pretrain":  # from --base: its tokenizer; from scratch: one trained aside
        tok_path = out / "tokenizer.model"
        if not cfg.base and (not tok_path.is_file() or cfg.overwrite):
            tok_path = out.with_name(f".{out.name}.tokenizer.model")
            if cfg.overwrite and rank == 0:
                tok_path.unlink(missing_ok=True)
            once(lambda: Tokenizer.train_on_data(cfg.data, tok_path, cfg.vocab_size, cfg.seed))
        tok = base_tokenizer(Path(cfg.base)) if cfg.base else Tokenizer(tok_path)
        text = pretrain_examples(Path(cfg.data), tok, cfg.max_len)
        base = Path(cfg.base) if cfg.base else None
        return Inputs(base, tok, text + read_blocks(cfg, tok, len(text)))
    inherit = {k: getattr(cfg, k) for k in ("seed", "device", "dtype", "threads", "progress",
                                            "log_every")}
    base = Path(cfg.base) if cfg.base else \
        None if cfg.rebuild_base else checkpoint.shipped_base(cfg.data)
    if base is None:
        base = once(lambda: make_base(cfg.data, cfg.base_out, **inherit))
    tok = base_tokenizer(base)
    return Inputs(base, tok, encoded_mixture(cfg, tok))


def base_tokenizer(base: Path) -> Tokenizer:
    if Tokenizer.find(base) is None:
        raise UsageError(f"--base {base}: no tokenizer.model or tokenizer.json there")
    return Tokenizer.from_folder(base)


if __name__ == "__main__":
    sys.exit(main())
