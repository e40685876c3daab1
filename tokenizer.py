"""tokenizer.py — text <-> token ids with LLaMA's conventions, for sentencepiece and tokenizer.json:
the tokenizer, the prompt (the Alpaca template or the model folder's chat template), a supervised
example in ids, and the batches train.py steps through.

    tok = Tokenizer.from_folder("runs/base")       # tokenizer.model, else tokenizer.json
    ids = tok.encode("Hallo Welt")                 # no BOS, no EOS: prompt_ids and
    tok.decode([tok.bos_id] + ids + [tok.eos_id])  #   encode_example put them in place
    Tokenizer.train(["a.txt", "b.txt"], "runs/spm/tokenizer.model", vocab_size=8000)
    prompt_ids(tok, "Translate ...", "alpaca", input="Hallo")   # [bos] + the Alpaca prompt
    encode_example(tok, {"instruction": ..., "input": ..., "output": ...}, max_len=512)
    make_batch(next(iterate_batches(encoded, batch_size=16, seed=0)), tok.pad_id)  # idx, targets

Conventions (../shared/CONVENTIONS.md): sentencepiece with unk=0 bos=1 eos=2 and no pad piece
(pad_id=0 only ever sits under a mask); BPE with byte fallback, so no text maps to unk, and digits
split one by one. A Hugging Face tokenizer.json (LLaMA-3, SmolLM; study/convert.py writes one from a
GGUF) is read through the optional `tokenizers` package; its BOS/EOS come from tokenizer_config.json
and its pad_id is the EOS id (again only under a mask). A supervised example: prompt and response
tokenized separately, BOS first, the prompt masked with -100, EOS appended; an example whose
response is truncated away entirely is dropped (and counted).

Command line (train.py trains the miniature world's tokenizer the same way, through
train_on_data, on first use; an existing OUT/tokenizer.model is refused unless --overwrite):

    python tokenizer.py --text ../shared/data/flores101/devtest/*.devtest --out runs/spm \
        --vocab-size 8000
"""
from __future__ import annotations

import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch
from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment  # jinja2 comes with torch
from tqdm import tqdm

from cli import Parser, add_config_flags, check_config, guard, opt
from data import DataError, read_alpaca
from model import IGNORE_INDEX
from cli import copy_atomic, parse_json, read_bytes, read_json, read_text, write_atomic


class Tokenizer:
    """LLaMA conventions for sentencepiece and tokenizer.json: encode() adds no BOS/EOS, decode()
    takes a whole sequence."""

    def __init__(self, model_path: str | os.PathLike):
        self.path = Path(model_path)
        self.sp = self.hf = None
        if self.path.suffix == ".json":  # Hugging Face tokenizer.json (LLaMA-3, SmolLM bases)
            self._init_hf()
        else:
            what = "a sentencepiece tokenizer.model"
            if not read_bytes(self.path, what):  # missing, a folder: one line
                raise DataError(f"{self.path}: empty file (expected {what})")
            try:
                self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
            except RuntimeError as e:  # "could not parse ModelProto", "unk is not defined"
                raise DataError(f"{self.path}: not a sentencepiece model "
                                f"({str(e).splitlines()[0]}; expected {what})") from None
            self.vocab_size = self.sp.get_piece_size()
            self.bos_id, self.eos_id = self.sp.bos_id(), self.sp.eos_id()
            pad = self.sp.pad_id()
            self.pad_id = pad if pad >= 0 else self.sp.unk_id()  # LLaMA: 0 (unk)
        if self.bos_id is None or self.bos_id < 0 or self.eos_id is None or self.eos_id < 0:
            raise DataError(f"{self.path}: tokenizer has no BOS/EOS token")
        self._skip = {self.bos_id, self.eos_id, self.pad_id}

    def _init_hf(self) -> None:
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError:
            raise DataError(f"{self.path}: reading tokenizer.json needs the optional package "
                            "'tokenizers'") from None
        what = "a Hugging Face tokenizer.json"
        text = read_text(self.path, what)
        parse_json(text, str(self.path), what)  # broken syntax: the line and column
        try:
            self.hf = HFTokenizer.from_str(text)
        except Exception as e:  # the tokenizers package raises a bare Exception for a bad structure
            raise DataError(f"{self.path}: not a tokenizer.json ({str(e).splitlines()[0]}; "
                            f"expected {what})") from None
        cfg_path = self.path.with_name("tokenizer_config.json")
        cfg = (read_json(cfg_path, "a tokenizer config (JSON object)", dict)
               if cfg_path.is_file() else {})

        def token_id(name):
            t = cfg.get(name)
            t = t.get("content") if isinstance(t, dict) else t
            if t is not None and not isinstance(t, str):
                raise DataError(f"{cfg_path}: {name} = {t!r}: expected a token string")
            return None if t is None else self.hf.token_to_id(t)
        self.vocab_size = self.hf.get_vocab_size(with_added_tokens=True)
        self.bos_id, self.eos_id = token_id("bos_token"), token_id("eos_token")
        pad = token_id("pad_token")
        self.pad_id = pad if pad is not None else self.eos_id  # only ever under a mask

    def check_fits(self, vocab_size: int) -> "Tokenizer":
        """A model with fewer embeddings than this tokenizer has pieces would fail at the first
        rare id."""
        if self.vocab_size > vocab_size:
            raise DataError(f"{self.path}: {self.vocab_size} tokenizer pieces but the model has "
                            f"{vocab_size} embeddings; use the tokenizer the model was trained "
                            "with")
        return self

    @staticmethod
    def find(folder: str | os.PathLike) -> Path | None:
        """A model folder's tokenizer file: tokenizer.model (sentencepiece), else tokenizer.json;
        None if neither."""
        paths = (Path(folder) / "tokenizer.model", Path(folder) / "tokenizer.json")
        return next((p for p in paths if p.exists()), None)  # a folder of that name: refused later

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> "Tokenizer":
        """tokenizer.model (sentencepiece), else tokenizer.json (+ tokenizer_config.json for
        BOS/EOS)."""
        path = cls.find(folder)
        if path is None:
            raise FileNotFoundError(f"{folder}: no tokenizer.model or tokenizer.json in the model "
                                    "folder")
        return cls(path)

    @classmethod
    def train_on_data(cls, data_dir, out_path, vocab_size: int, seed: int = 0) -> "Tokenizer":
        """The tokenizer of a pretraining run: trained on DATA/pretrain/*.txt and every Alpaca field
        in every language, each example inside the prompt template (cached: reused when present)."""
        out_path, data_dir = Path(out_path), Path(data_dir)
        if out_path.is_file():
            return cls(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        corpus = out_path.with_name(out_path.stem + "_corpus.txt")
        lines = [format_prompt(ex["instruction"], ex["input"]) + " " + ex["output"]
                 for f in sorted((data_dir / "alpaca").glob("alpaca_*.json"))
                 for ex in read_alpaca(f)]
        write_atomic(corpus, "\n".join(x.replace("\n", " ") for x in lines) + "\n")
        files = sorted(str(p) for p in (data_dir / "pretrain").glob("*.txt")) + [str(corpus)]
        try:
            return cls.train(files, out_path, vocab_size, seed)
        finally:
            corpus.unlink(missing_ok=True)

    @classmethod
    def train(cls, text_files, out_path, vocab_size: int, seed: int = 0,
              character_coverage: float = 0.9995, max_sentences: int = 2_000_000) -> "Tokenizer":
        """Train a BPE sentencepiece model the LLaMA way (byte fallback, digits split, no pad).

        Rare characters not covered by `character_coverage` become byte pieces (ids 3..258),
        so nothing ever maps to unk. Written atomically to out_path (e.g. DIR/tokenizer.model).
        """
        one = isinstance(text_files, (str, Path))
        files = [str(f) for f in ([text_files] if one else text_files)]
        for f in files:
            if not Path(f).is_file() or Path(f).stat().st_size == 0:
                raise DataError(f"{f}: tokenizer training text missing or empty")
        if vocab_size < 300:
            raise DataError(f"vocab_size={vocab_size}: need >= 300 (259 special+byte pieces come "
                            "first)")
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        spm.set_random_generator_seed(seed)
        # a fixed name: the same inputs give the same bytes
        prefix = out_path.parent / f".{out_path.name}.training"
        try:
            spm.SentencePieceTrainer.train(
                input=files, model_prefix=str(prefix), model_type="bpe", vocab_size=vocab_size,
                byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                character_coverage=character_coverage, normalization_rule_name="identity",
                add_dummy_prefix=True, remove_extra_whitespaces=False, split_digits=True,
                allow_whitespace_only_pieces=True, max_sentence_length=1 << 16,
                input_sentence_size=max_sentences, shuffle_input_sentence=True,
                num_threads=2, minloglevel=2)
        except RuntimeError as e:  # e.g. "Vocabulary size is smaller than required_chars"
            raise DataError(f"sentencepiece training failed (vocab_size={vocab_size}, "
                            f"character_coverage={character_coverage}): "
                            f"{str(e).splitlines()[-1]}") from None
        finally:
            Path(f"{prefix}.vocab").unlink(missing_ok=True)
        os.replace(f"{prefix}.model", out_path)
        return cls(out_path)

    def encode(self, text: str) -> list[int]:
        if self.sp:
            return self.sp.encode(text)
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        ids = [i for i in ids if i not in self._skip]
        return self.sp.decode(ids) if self.sp else self.hf.decode(ids, skip_special_tokens=False)

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / ("tokenizer.json" if self.hf else "tokenizer.model")
        if dst.resolve() != self.path.resolve():
            copy_atomic(self.path, dst)
            cfg = self.path.with_name("tokenizer_config.json")
            if self.hf and cfg.is_file():
                copy_atomic(cfg, folder / cfg.name)
        return dst


# ------------------------------------------------------------------------------------- prompts
# The Stanford Alpaca template, used for every language (docs/paper.md); the prompt ends right after
# "### Response:" and the response follows as its own tokens.
PROMPT_INPUT = ("Below is an instruction that describes a task, paired with an input that provides "
                "further context. Write a response that appropriately completes the request.\n\n"
                "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:")
PROMPT_NO_INPUT = ("Below is an instruction that describes a task. Write a response that "
                   "appropriately completes the request.\n\n"
                   "### Instruction:\n{instruction}\n\n### Response:")


def format_prompt(instruction: str, input: str = "") -> str:
    if input:
        return PROMPT_INPUT.format(instruction=instruction, input=input)
    return PROMPT_NO_INPUT.format(instruction=instruction)


TEMPLATES = ("alpaca", "chat", "none")


def chat_template(tok_dir) -> tuple[str, dict]:
    """The folder's chat template and its special tokens as text: {"bos_token": ...,
    "eos_token": ...}; a template that does not parse is refused here, before any prompt."""
    path = Path(tok_dir) / "tokenizer_config.json"
    tc = read_json(path, "a tokenizer config (JSON object)", dict) if path.is_file() else {}
    template, where = tc.get("chat_template"), path
    if isinstance(template, list):  # named: [{"name": "default", "template": ...}, ...]
        template = next((t.get("template") for t in template
                         if isinstance(t, dict) and t.get("name") == "default"), None)
    jinja = Path(tok_dir) / "chat_template.jinja"
    if template is None and jinja.is_file():  # transformers 4.43+
        template, where = read_text(jinja, "a Jinja chat template"), jinja
    if not template:
        raise DataError(f"{path}: no chat_template in {tok_dir}; use --template alpaca or none")
    if not isinstance(template, str):
        raise DataError(f"{where}: chat_template is a {type(template).__name__}; expected a "
                        "Jinja template string")
    special = {k: tc.get(k) for k in ("bos_token", "eos_token")}
    text = {k: (v.get("content") if isinstance(v, dict) else v) or "" for k, v in special.items()}
    if not all(isinstance(v, str) for v in text.values()):
        raise DataError(f"{path}: bos_token/eos_token: expected strings")
    _compile(template, where)
    return template, text


def _compile(template: str, where=None):
    """The template compiled in transformers' sandbox; a syntax error is one line naming it."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    try:
        return env.from_string(template)
    except TemplateError as e:
        line = f" line {e.lineno}" if getattr(e, "lineno", None) else ""
        raise DataError(f"{where or 'chat_template'}{line}: the chat template does not parse "
                        f"({e.message or type(e).__name__}; expected Jinja)") from None


def render_chat(template: str, prompt: str, special: dict | None = None) -> str:
    """One user turn + the assistant's opening, as transformers' apply_chat_template renders it."""
    def raise_exception(msg):
        raise DataError(f"chat_template: {msg}")
    compiled = _compile(template)
    compiled.globals["raise_exception"] = raise_exception
    try:
        return compiled.render(messages=[{"role": "user", "content": prompt}],
                               add_generation_prompt=True, **(special or {}))
    except TemplateError as e:  # an undefined filter, a sandbox refusal
        raise DataError(f"chat_template: cannot render ({e.message or type(e).__name__})") \
            from None


def prompt_ids(tok: Tokenizer, prompt: str, template: str = "alpaca", folder=None,
               input: str = "") -> list[int]:
    """Token ids of a prompt wrapped in `template`: "alpaca" (format_prompt, the paper's), "chat"
    (the model folder's own chat template, one user turn holding the prompt and then the input)
    or "none" (the raw text); BOS first unless the chat template already starts with it (its text
    "<s>" is replaced by the BOS id)."""
    if template not in TEMPLATES:
        raise ValueError(f"--template {template!r}: expected one of {', '.join(TEMPLATES)}")
    if template == "chat":
        chat, special = chat_template(folder)
        text = render_chat(chat, f"{prompt}\n\n{input}" if input else prompt, special)
        bos = special["bos_token"]
        if not (bos and text.startswith(bos)):  # the template decides whether there is a BOS
            return tok.encode(text)
        text = text[len(bos):]                  # its text "<s>" is not the BOS id: put the id
    else:
        text = format_prompt(prompt, input) if template == "alpaca" else prompt
    return [tok.bos_id] + tok.encode(text)


# ------------------------------------------------------------------------- supervised examples
def encode_example(tok: Tokenizer, ex: dict, max_len: int) -> dict | None:
    """[bos] + prompt + response + [eos]; labels -100 on bos+prompt (unshifted, HF style),
    truncated to max_len from the right; None when no response token survives."""
    prompt = [tok.bos_id] + tok.encode(format_prompt(ex["instruction"], ex.get("input", "")))
    response = tok.encode(ex["output"]) + [tok.eos_id]
    ids = (prompt + response)[:max_len]
    if len(ids) <= len(prompt):
        return None
    labels = [IGNORE_INDEX] * len(prompt) + ids[len(prompt):]
    return {"input_ids": ids, "labels": labels}


def encode_examples(tok: Tokenizer, examples: list[dict], max_len: int, desc: str = "tokenize",
                    verbose: bool = True) -> tuple[list[dict], int]:
    """encode_example over a list; returns (encoded, n_dropped) and reports the drops."""
    out, dropped = [], 0
    for ex in tqdm(examples, desc=desc, disable=not verbose or len(examples) < 5000, leave=False):
        e = encode_example(tok, ex, max_len)
        if e is None:
            dropped += 1
        else:
            out.append(e)
    if verbose and dropped:
        print(f"dropped {dropped} of {len(examples)} examples: no response token fits in "
              f"max_len={max_len}")
    return out, dropped


# ------------------------------------------------------------------------------------------ batches
def make_batch(encoded: list[dict], pad_id: int) -> dict:
    """Right-padded LongTensors (B, T-1): idx = ids[:-1], targets = labels[1:] (-100 on padding)."""
    T = max(len(e["input_ids"]) for e in encoded)
    B = len(encoded)
    idx = torch.full((B, T - 1), pad_id, dtype=torch.long)
    targets = torch.full((B, T - 1), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((B, T - 1), dtype=torch.long)
    for b, e in enumerate(encoded):
        n = len(e["input_ids"]) - 1
        idx[b, :n] = torch.tensor(e["input_ids"][:-1])
        targets[b, :n] = torch.tensor(e["labels"][1:])
        mask[b, :n] = 1
    return {"idx": idx, "targets": targets, "attention_mask": mask}


def iterate_batches(encoded: list[dict], batch_size: int | None = None,
                    max_tokens: int | None = None, seed: int = 0, epoch: int = 0, group: int = 64):
    """Lists of examples, each example once per epoch, grouped by length: shuffle (seed, epoch),
    cut into chunks of `group` batches, sort each chunk by length, cut it into batches of
    `batch_size` examples or of at most `max_tokens` padded tokens (B * longest; a longer example
    alone), shuffle the batches. A pure function of (seed, epoch): a resumed run skips its past."""
    if (batch_size is None) == (max_tokens is None):
        raise ValueError("iterate_batches: give exactly one of batch_size or max_tokens")
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(encoded)))
    rng.shuffle(order)
    chunk = group * (batch_size or max(1, max_tokens // 64))
    batches = []
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(encoded[i]["input_ids"]))
        if batch_size:
            batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
            continue
        cur, longest = [], 0
        for i in part:
            n = len(encoded[i]["input_ids"])
            if cur and (len(cur) + 1) * max(longest, n) > max_tokens:
                batches.append(cur)
                cur, longest = [], 0
            cur.append(i)
            longest = max(longest, n)
        if cur:
            batches.append(cur)
    rng.shuffle(batches)
    for b in batches:
        yield [encoded[i] for i in b]


def n_targets(ex: dict) -> int:
    """Target tokens of one encoded example (labels are shifted by one in the loss)."""
    return sum(1 for t in ex["labels"][1:] if t != IGNORE_INDEX)


def pretrain_examples(data_dir: Path, tok: Tokenizer, block: int) -> list[dict]:
    """DATA/pretrain/*.txt's documents (one a line) as pretraining blocks (pack_blocks)."""
    docs = [doc for f in sorted((data_dir / "pretrain").glob("*.txt"))
            for doc in read_text(f).splitlines() if doc.strip()]
    return pack_blocks([tok.encode(d) for d in docs], tok, block, "pretrain", "mix")


def pack_blocks(docs: list[list[int]], tok: Tokenizer, block: int, source: str, lang: str,
                n: int | None = None) -> list[dict]:
    """Documents as [bos] doc [eos], end to end, cut into blocks of `block` + 1 tokens (each the
    next's first): every whole block, or `n` blocks with the documents cycled."""
    stream = [t for d in docs for t in [tok.bos_id, *d, tok.eos_id]]
    if n is not None:
        stream *= math.ceil((n * block + 1) / max(len(stream), 1))
    n = (len(stream) - 1) // block if n is None else n
    chunks = [stream[i * block: i * block + block + 1] for i in range(n)]
    return [dict(input_ids=c, labels=c, source=source, lang=lang) for c in chunks]


def micro_batches(encoded: list[dict], global_bs: int, seed: int, skip: int):
    """Endless stream of (epoch, global micro-batch); epochs are reshuffled with (seed, epoch)."""
    epoch = 0
    while True:
        for batch in iterate_batches(encoded, batch_size=global_bs, seed=seed, epoch=epoch):
            if skip > 0:
                skip -= 1
                continue
            yield epoch, batch
        epoch += 1


@dataclass
class TokenizerConfig:
    text: list[str] | None = opt(None, "training text files (one sentence or document a line)",
                                 required=True)
    out: str | None = opt(None, "folder to write tokenizer.model into", required=True)
    vocab_size: int = opt(8000, "pieces in total, incl. 259 special and byte pieces",
                          range="[300, inf)")
    seed: int = opt(0, "sentencepiece sampling seed")
    overwrite: bool = opt(False, "replace an existing OUT/tokenizer.model (a checkpoint's ids "
                                 "would no longer match it)")


def main(argv=None) -> int:
    parser = add_config_flags(Parser(prog="tokenizer.py", doc=__doc__), TokenizerConfig)
    cfg = TokenizerConfig(**vars(parser.parse_args(argv)))

    def body():
        check_config(cfg)
        dst = Path(cfg.out) / "tokenizer.model"
        if dst.exists() and not cfg.overwrite:  # a checkpoint's token ids belong to its tokenizer
            raise DataError(f"{dst} exists; a new tokenizer would not match the ids of a model "
                            "trained with it (pass --overwrite to replace it)")
        tok = Tokenizer.train(cfg.text, dst, cfg.vocab_size, cfg.seed)
        print(f"wrote {tok.path} ({tok.vocab_size} pieces)")
    return guard("tokenizer.py", body, usage=(FileNotFoundError,))


if __name__ == "__main__":
    sys.exit(main())
