"""Layer-wise cross-lingual alignment of hidden states (the paper's representation analysis).

For parallel sentences (Flores-101 devtest, or the miniature world's Flores-style files), take
the hidden states of every layer -- the embedding output, then each block; the last one after
the final norm, as Hugging Face's output_hidden_states -- and mean-pool them over the
sentence's real tokens. The official code divides by the padded length (a bug); here padding
never enters the mean. Per layer and language X, with cosine similarity of pooled vectors:

    pair       mean cos(en_i, X_i) over translation pairs
    nonpair    mean cos(en_i, X_j), i != j, over all non-pairs (a random non-pair's expectation)
    gap        pair - nonpair: alignment beyond the shared direction every pooled vector has
    retrieval  top-1 accuracy (%) of finding X_i among all X_j from en_i (en -> X)

The paper reports alignment strongest in the middle layers of m-LLaMA; the probe names the
layer with the largest mean gap (and the best retrieval) for every model, side by side.
It also measures in-context copying (repeat_accuracy): next-token accuracy on a sentence fed
twice, first copy vs second. Extractive QA needs a model that can look back and copy, and
bind (bind_test): of two people's spans of the same relation, prefer the asked person's.
Sentences are encoded as [BOS] + tokens, as in training; BOS is fed but not pooled (its state
is the same for every sentence and would inflate every cosine) -- our choice, not the paper's.

Commands:
    python probe.py --models runs/base,runs/x-llama-de --langs de --data runs/world --limit 200
    python probe.py --models /path/llama-7b,/path/x-llama-zh-7b --langs zh,ar,hi \
        --data ../shared/data --out runs/probe.json --overwrite   # replace an earlier result
    python -c "import probe; print(probe.bind_test('assets/base', 'runs/world'))"   # binding
Device, dtype and CPU threads come from device.decide (--device/--dtype/--threads, default
measured; the choice is printed). Writes the JSON (per model, per language, per layer; an
existing one is replaced only with --overwrite), prints a table per model with the best layer
marked, and a per-layer chart: PNG beside the JSON when matplotlib is installed, a text chart
(printed and written to <out>.txt) otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

import data
from cli import Parser, add_config_flags, opt
from device import decide
from cli import atomic_path, write_atomic
from checkpoint import load_model, read_config
from model import Llama
from tokenizer import Tokenizer, format_prompt


@dataclass
class ProbeConfig:
    models: str = opt("runs/base", "comma-separated checkpoint folders, compared side by side")
    langs: str = opt("de", "comma-separated target languages (each compared with en)")
    data: str = opt("runs/world", "data folder holding flores101/devtest/<code>.devtest")
    limit: int | None = opt(None, "use only the first N sentences (Flores devtest has 1012)")
    batch_size: int = opt(16, "sentences per forward pass")
    max_len: int = opt(256, "max tokens per sentence including BOS (longer ones are cut)")
    device: str = opt("auto", "auto, cpu or cuda (device.decide)")
    dtype: str = opt("auto", "auto (CPU: bf16 only where measured clearly faster; CUDA: bf16), "
                             "fp32, bf16, fp16 (float32, bfloat16, float16 also accepted)")
    threads: int = opt(0, "CPU threads (0: all cores if a short measurement shows them faster "
                          "than one)")
    out: str = opt("runs/probe.json", "results JSON; the plot goes beside it (.png, or .txt "
                                      "without matplotlib)")
    overwrite: bool = opt(False, "replace an existing --out")


# ----------------------------------------------------------------------------- pooled states

def pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the tokens where mask is 1: (B, T, C), (B, T) -> (B, C) in float32."""
    m = mask.to(torch.float32)[..., None]                          # (B, T, 1)
    return (hidden.float() * m).sum(1) / m.sum(1)


@torch.no_grad()
def pooled_states(model: Llama, tok: Tokenizer, sentences: list[str], batch_size: int = 16,
                  max_len: int = 256, desc: str = "probe") -> list[torch.Tensor]:
    """n_layers+1 tensors (N, C): each sentence's hidden states mean-pooled over its own tokens."""
    rows = []
    for i, s in enumerate(sentences):
        ids = tok.encode(s)[: max_len - 1]
        if not ids:
            raise ValueError(f"{desc}: sentence {i + 1} is empty; nothing to pool")
        rows.append([tok.bos_id] + ids)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # similar lengths batch together
    device = next(model.parameters()).device
    out: list[torch.Tensor] | None = None
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc=desc, leave=False, disable=len(rows) <= batch_size):
        chunk = order[start:start + batch_size]
        T = max(len(rows[i]) for i in chunk)
        idx = torch.full((len(chunk), T), tok.pad_id, dtype=torch.long)
        attn = torch.zeros((len(chunk), T), dtype=torch.long)
        for b, i in enumerate(chunk):                              # right padding
            idx[b, : len(rows[i])] = torch.tensor(rows[i])
            attn[b, : len(rows[i])] = 1
        hs = model.hidden_states(idx.to(device), attention_mask=attn.to(device))
        keep = attn.clone()
        keep[:, 0] = 0                                             # BOS is context, not content
        if out is None:
            out = [torch.empty(len(rows), h.size(-1)) for h in hs]
        for layer, h in enumerate(hs):
            out[layer][chunk] = pool(h, keep.to(h.device)).cpu()
    assert out is not None
    return out


def alignment(en: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """en, x: (N, C) pooled vectors of N translation pairs (row i of each is one pair)."""
    n = en.size(0)
    if n < 2 or x.size(0) != n:
        raise ValueError(f"alignment needs >= 2 aligned pairs, got {n} English and {x.size(0)} "
                         "target sentences")
    sim = F.normalize(en.double(), dim=-1) @ F.normalize(x.double(), dim=-1).T  # (N, N) cosines
    pair = sim.diagonal().mean().item()
    nonpair = ((sim.sum() - sim.diagonal().sum()) / (n * (n - 1))).item()
    retrieval = 100.0 * (sim.argmax(dim=1) == torch.arange(n)).double().mean().item()
    return {"pair": pair, "nonpair": nonpair, "gap": pair - nonpair, "retrieval": retrieval}


@torch.no_grad()
def repeat_accuracy(model: Llama, tok: Tokenizer, sentences: list[str],
                    max_len: int = 256) -> dict[str, float]:
    """In-context copying: feed [BOS] s s for each sentence and take greedy next-token accuracy
    (%) on tokens 2..L of the first copy and of the second (a copy's first token follows BOS or
    the join).
    A model that can look back and copy (an induction head) is far better on the second copy;
    extractive QA needs exactly that, so a small rise means QA cannot work yet."""
    device = next(model.parameters()).device
    hits, n = [0, 0], [0, 0]
    for s in sentences:
        ids = tok.encode(s)[: (max_len - 1) // 2]
        if len(ids) < 3:
            continue
        x = torch.tensor([[tok.bos_id] + ids + ids], device=device)
        pred = model(x)[0][0].argmax(-1).cpu()                        # pred[i] guesses token i + 1
        L = len(ids)
        # tokens 2..L of each copy
        for half, (lo, hi) in enumerate(((2, L + 1), (L + 2, 2 * L + 1))):
            hits[half] += int((pred[lo - 1:hi - 1] == x[0, lo:hi].cpu()).sum())
            n[half] += hi - lo
    if not n[0]:
        raise ValueError("repeat_accuracy: no sentence of at least 3 tokens")
    return {"first": 100.0 * hits[0] / n[0], "second": 100.0 * hits[1] / n[1]}


def fresh_namer(data_dir, rng):
    """A corpus.Namer that counts every capitalised word of data_dir as used, so the names it hands
    out are written nowhere in the world."""
    import re

    from corpus import Namer
    namer = Namer(rng)
    for path in sorted(Path(data_dir).rglob("*")):  # every word of the world is "seen"
        if path.is_file() and path.suffix in (".txt", ".json", ".devtest", ".jsonl"):
            namer.seen["en"] |= set(re.findall(r"[A-Z][a-z]+", path.read_text(encoding="utf-8")))
    return namer


def fresh_sentences(data_dir, n: int = 200, seed: int = 1234) -> list[str]:
    """n English passages of 2-3 sentences about a person with fresh names (person, teacher,
    towns): spelled like the world's names but written nowhere in data_dir, so nothing but the
    first copy can predict them in the second (the study's copy gate; docs/world.md)."""
    import random

    from corpus import fresh_people, passage, sentence
    rng = random.Random(seed)
    namer = fresh_namer(data_dir, rng)
    out = []
    for _ in range(n):
        person = fresh_people(rng, namer, 1, towns=0.5, latin_only=True)
        out.append(" ".join(sentence(f, "en")[0] for f in passage(rng, person, (1, 1), (2, 3))))
    return out


def bind_items(data_dir, n: int = 200, seed: int = 4321) -> list[dict]:
    """n questions on fresh passages like world-XQuAD's (2-3 people, corpus.reading_passage) whose
    passage also states the asked relation of another person: {context, question, answer, others},
    `others` being those other people's spans. Copying cannot tell them apart; binding can."""
    import random

    from corpus import passage_text, question, reading_passage, value_text
    rng = random.Random(seed)
    namer, items = fresh_namer(data_dir, rng), []
    while len(items) < n:
        facts, askable = reading_passage(rng, namer)
        context = passage_text(facts, "en")[0]
        for j in askable:
            rel, person, _ = facts[j]
            gold = value_text(facts[j], "en")
            others = sorted({value_text(f, "en") for f in facts
                             if f[0] == rel and f[1] is not person} - {gold})
            if others and len(items) < n:
                items.append({"context": context, "question": question(facts[j], "en"),
                              "answer": gold, "others": others})
    return items


def bind_prompt(tok: Tokenizer, item: dict, answer: str, template: str) -> tuple[list, list]:
    """(prompt ids, answer ids). "doc": the reading documents' "<passage> Q: <question> A: <answer>"
    (a base model's own format); "alpaca": the evaluation's prompt and a response ending in EOS."""
    if template == "doc":
        text = f"{item['context']} Q: {item['question']} A:"
        prompt, full = tok.encode(text), tok.encode(f"{text} {answer}")
        if full[:len(prompt)] != prompt:
            raise ValueError(f"bind_prompt: {answer!r} does not tokenize apart from its prompt")
        return [tok.bos_id] + prompt, full[len(prompt):]
    ex = data.qa_example(item["context"], item["question"], "en")
    return ([tok.bos_id] + tok.encode(format_prompt(ex["instruction"], ex["input"])),
            tok.encode(answer) + [tok.eos_id])


@torch.no_grad()
def answer_logprob(model: Llama, prompt: list[int], answer: list[int]) -> float:
    """log p(answer | prompt), summed over the answer's tokens."""
    device = next(model.parameters()).device
    x = torch.tensor([prompt + answer], device=device)
    logp = torch.log_softmax(model(x[:, :-1])[0][0].float(), -1)
    return sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(answer))


def bind_accuracy(items: list[dict], logprob) -> dict[str, float]:
    """Share (%) of items whose answer is likelier than every other person's span (logprob(item,
    span)); chance is the mean of 1 / (1 + others) (a model that copies a span of the right
    relation but picks the person at random)."""
    hits = sum(all(logprob(it, it["answer"]) > logprob(it, o) for o in it["others"])
               for it in items)
    return {"bind": 100.0 * hits / len(items),
            "chance": 100.0 * sum(1 / (1 + len(it["others"])) for it in items) / len(items),
            "n": len(items)}


def _load(model_dir, device, dtype, threads) -> tuple[Llama, Tokenizer]:
    cfg = read_config(Path(model_dir) / "config.json")
    rt = decide(device=device, dtype=dtype, threads=threads,
                shape=(cfg.hidden_size, cfg.intermediate_size))
    model = load_model(model_dir, dtype=rt.torch_dtype, device=rt.device).to(rt.device).eval()
    return model, Tokenizer.from_folder(model_dir).check_fits(model.config.vocab_size)


def copy_test(model_dir, data_dir, n: int = 200, device="auto", dtype="auto",
              threads=0) -> dict[str, float]:
    """repeat_accuracy of a checkpoint on fresh_sentences: {"first", "second", "n"}."""
    model, tok = _load(model_dir, device, dtype, threads)
    return {**repeat_accuracy(model, tok, fresh_sentences(data_dir, n)), "n": n}


def bind_test(model_dir, data_dir, n: int = 200, template: str = "doc", device="auto",
              dtype="auto", threads=0) -> dict[str, float]:
    """bind_accuracy of a checkpoint on bind_items: {"bind", "chance", "n"} (docs/world.md)."""
    if template not in ("doc", "alpaca"):
        raise ValueError(f"template {template!r}: expected doc or alpaca")
    model, tok = _load(model_dir, device, dtype, threads)
    return bind_accuracy(bind_items(data_dir, n), lambda it, a: answer_logprob(
        model, *bind_prompt(tok, it, a, template)))


def probe_loaded(model: Llama, tok: Tokenizer, sentences: dict[str, list[str]], langs,
                 batch_size=16, max_len=256) -> dict:
    """sentences: {"en": [...], lang: [...]} line-aligned. Returns {layers, n, langs: {lang: {pair,
    nonpair, gap, retrieval: one value per layer; repeat: repeat_accuracy}}, mean: {gap, retrieval},
    best_layer: {gap, retrieval}, repeat: repeat_accuracy on English}."""
    en = pooled_states(model, tok, sentences["en"], batch_size, max_len, desc="probe en")
    result = {"layers": len(en), "n": len(sentences["en"]), "langs": {},
              "repeat": repeat_accuracy(model, tok, sentences["en"], max_len)}
    for lang in langs:
        xs = pooled_states(model, tok, sentences[lang], batch_size, max_len, desc=f"probe {lang}")
        scores = [alignment(e, x) for e, x in zip(en, xs)]
        result["langs"][lang] = {k: [s[k] for s in scores]
                                 for k in ("pair", "nonpair", "gap", "retrieval")}
        result["langs"][lang]["repeat"] = repeat_accuracy(model, tok, sentences[lang], max_len)
    per = result["langs"].values()
    layers = range(len(en))
    result["mean"] = {k: [sum(p[k][l] for p in per) / len(langs) for l in layers]
                      for k in ("gap", "retrieval")}
    result["best_layer"] = {k: max(layers, key=lambda l: result["mean"][k][l])
                            for k in ("gap", "retrieval")}
    return result


# ----------------------------------------------------------------------------- reports

def table(name: str, r: dict) -> str:
    langs = list(r["langs"])
    head = (f"{'layer':>5} " + " ".join(f"{l + ' gap':>8} {l + ' ret%':>8}" for l in langs)
            + f" {'mean gap':>9} {'mean ret':>9}")
    lines = [f"== {name}: {r['layers']} layers (embeddings + {r['layers'] - 1} blocks), "
             f"{r['n']} pairs per language", head]
    gap, ret = r["mean"]["gap"], r["mean"]["retrieval"]
    for layer in range(r["layers"]):
        cells = " ".join(f"{r['langs'][l]['gap'][layer]:>8.4f} "
                         f"{r['langs'][l]['retrieval'][layer]:>8.1f}" for l in langs)
        mark = " *" if layer == r["best_layer"]["gap"] else ""
        lines.append(f"{layer:>5} {cells} {gap[layer]:>9.4f} {ret[layer]:>9.1f}{mark}")
    bg, br = r["best_layer"]["gap"], r["best_layer"]["retrieval"]
    lines.append(f"strongest alignment: layer {bg} of {r['layers'] - 1} by gap ({gap[bg]:.4f}); "
                 f"layer {br} by retrieval ({ret[br]:.1f}%)  (* = best gap)")
    if "repeat" in r:
        rep = {"en": r["repeat"],
               **{l: r["langs"][l]["repeat"] for l in langs if "repeat" in r["langs"][l]}}
        copies = ", ".join(f"{l} {v['first']:.1f} -> {v['second']:.1f}%" for l, v in rep.items())
        lines.append("in-context copying, next-token accuracy on a sentence's 1st -> 2nd copy: "
                     + copies)
    return "\n".join(lines)


def text_chart(results: dict[str, dict], key: str = "gap", width: int = 50) -> str:
    """One bar per layer and model of the mean `key` over languages."""
    vals = [v for r in results.values() for v in r["mean"][key]]
    lo, hi = min(0.0, min(vals)), max(vals)
    scale = width / (hi - lo) if hi > lo else 0.0
    lines = [f"mean {key} per layer (bar from {lo:.3g} to {hi:.3g})"]
    for name, r in results.items():
        lines.append(name)
        for layer, v in enumerate(r["mean"][key]):
            lines.append(f"  {layer:>3} |{'#' * int(round((v - lo) * scale)):<{width}}| {v:.4f}")
    return "\n".join(lines)


def plot(results: dict[str, dict], out: Path) -> str:
    """PNG beside the JSON with matplotlib, else a text chart in <out>.txt. Returns the path
    written."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        text = text_chart(results, "gap") + "\n\n" + text_chart(results, "retrieval")
        print(text)
        path = out.with_suffix(".txt")
        path.write_text(text + "\n", encoding="utf-8")
        return str(path)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in results.items():
        for ax, key in zip(axes, ("gap", "retrieval")):
            ax.plot(range(r["layers"]), r["mean"][key], marker="o", label=name)
            ax.set_xlabel("layer (0 = embeddings)")
            ax.set_ylabel({"gap": "cos(pairs) - cos(non-pairs)",
                           "retrieval": "top-1 retrieval en->X (%)"}[key])
    axes[0].legend()
    fig.tight_layout()
    path = out.with_suffix(".png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return str(path)


# ----------------------------------------------------------------------------- command line

def load_sentences(data_dir, langs, limit=None) -> dict[str, list[str]]:
    sents = {l: data.read_flores(data_dir, l)[:limit] for l in ["en", *langs]}
    for l in langs:
        if len(sents[l]) != len(sents["en"]):
            raise ValueError(f"{data.flores_path(data_dir, l)}: {len(sents[l])} lines, but "
                             f"English has {len(sents['en'])}; Flores files must be line-aligned")
    return sents


def probe(models, langs, data_dir, limit=None, batch_size=16, max_len=256, device="auto",
          dtype="auto", threads=0) -> dict[str, dict]:
    """Library entry point: checkpoint folders -> {str(folder): probe_loaded(...) result},
    tables printed."""
    langs = [data.check_lang(l, allow_en=False) for l in langs]
    if not langs:
        raise ValueError("--langs: give at least one target language, e.g. --langs de,zh")
    sents = load_sentences(data_dir, langs, limit)
    folders = [Path(m) for m in models]
    for path in folders:  # check every folder before spending time on the first
        if not (path / "config.json").is_file() or Tokenizer.find(path) is None:
            raise ValueError(f"--models: {path} is not a checkpoint folder (needs config.json "
                             "and tokenizer.model or tokenizer.json)")
    first = read_config(folders[0] / "config.json")  # measure at the (first) model's own shapes
    rt = decide(device=device, dtype=dtype, threads=threads,
                shape=(first.hidden_size, first.intermediate_size))
    print(f"probe: {rt.why}")
    print(f"probe: weights in {rt.dtype}, {len(sents['en'])} pairs x {len(langs)} language(s)")
    results = {}
    for path in folders:
        model = load_model(path, dtype=rt.torch_dtype, device=rt.device).to(rt.device)
        tok = Tokenizer.from_folder(path).check_fits(model.config.vocab_size)
        results[str(path)] = probe_loaded(model, tok, sents, langs, batch_size, max_len)
        print(table(str(path), results[str(path)]))
        del model
    if len(results) > 1:
        print("side by side: " + "; ".join(
            f"{n}: layer {r['best_layer']['gap']}/{r['layers'] - 1} gap "
            f"{max(r['mean']['gap']):.4f}, best retrieval {max(r['mean']['retrieval']):.1f}%"
            for n, r in results.items()))
    return results


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an --out that cannot take the JSON, before any model is loaded."""
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; expected the path of a JSON file, "
                         f"e.g. {out / 'probe.json'}")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out} exists (an earlier result); pass --overwrite to replace "
                         "it, or another --out")
    blocker = next((d for d in out.parents if d.exists() and not d.is_dir()), None)
    if blocker is not None:
        raise ValueError(f"--out {out}: {blocker} is a file, not a folder")


def run(cfg: ProbeConfig) -> dict[str, dict]:
    out = Path(cfg.out)
    check_out(out, cfg.overwrite)
    models = [m for m in cfg.models.split(",") if m]
    langs = [l for l in cfg.langs.split(",") if l]
    results = probe(models, langs, cfg.data, cfg.limit, cfg.batch_size, cfg.max_len, cfg.device,
                    cfg.dtype, cfg.threads)
    report = {"config": asdict(cfg), "models": results}
    write_atomic(out, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out} and {plot(results, out)}")
    return results


def main(argv=None) -> int:
    p = Parser(prog="probe.py", description=__doc__.split("\n\n")[0],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(p, ProbeConfig)
    cfg = ProbeConfig(**vars(p.parse_args(argv)))
    try:
        for flag, value, low in (("--limit", cfg.limit, 2), ("--batch-size", cfg.batch_size, 1),
                                 ("--max-len", cfg.max_len, 2)):
            if value is not None and value < low:
                raise ValueError(f"{flag} must be >= {low}, got {value}")
        run(cfg)
    except (ValueError, FileNotFoundError) as e:  # device.DeviceError is a ValueError too
        print(f"probe.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback
        print("\nprobe.py: interrupted; nothing was written", file=sys.stderr)
        sys.exit(130)
