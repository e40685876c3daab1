"""Tests for data.py, tokenizer.py and mixture.py: prompts (golden strings), tokenizer conventions, label masks, batches, readers
over the real data, bad-input messages, mixtures (the downloader: tests/test_download.py).

Run: python -m pytest -q tests/test_data.py     (offline, CPU, well under 45 s)
"""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import data as D
import mixture
import tokenizer
from conftest import in_process, write_byte_level_bpe
from tokenizer import Tokenizer

REPO = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------- golden prompts
# Written by hand from docs/paper.md's description of the Stanford Alpaca template (not generated).
GOLDEN_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\nSummarize the text.\n\n### Input:\nCats sleep a lot.\n\n### Response:")
GOLDEN_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\nName a color.\n\n### Response:")


def test_alpaca_template_golden():
    assert tokenizer.format_prompt("Summarize the text.", "Cats sleep a lot.") == GOLDEN_WITH_INPUT
    assert tokenizer.format_prompt("Name a color.") == GOLDEN_NO_INPUT
    assert tokenizer.format_prompt("Name a color.", "") == GOLDEN_NO_INPUT
    assert tokenizer.format_prompt("Use {braces}", "x {input}").count("{braces}") == 1  # user text is not re-formatted


def test_translation_example_golden_and_cycling():
    ins = D.TRANSLATION_INSTRUCTIONS
    assert len(ins) >= 30 and len(set(ins)) == len(ins)
    assert ins[0] == "Translate the following sentences from {source} to {target}."
    assert all("{source}" in s and "{target}" in s for s in ins)
    ex = D.translation_example("Good morning.", "Guten Morgen.", "en", "de")
    assert ex == {"instruction": "Translate the following sentences from English to German.",
                  "input": "Good morning.", "output": "Guten Morgen."}
    n = len(ins)
    assert D.translation_example("a", "b", "en", "zh", index=n + 1)["instruction"] == \
        ins[1].format(source="English", target="Chinese")
    assert D.translation_example("a", "b", "de", "en", index=0)["instruction"].endswith("from German to English.")


def test_qa_prompt_golden():
    ex = D.qa_example("Paris is in France.", "Where is Paris?", "en", answer="France")
    # the paper's layout (NJUNLP/x-LLM): instruction; context line, question line, a bare answer label
    assert ex == {"instruction": "Answer the question using the context.",
                  "input": "Context: Paris is in France.\nQuestion: Where is Paris?\nAnswer:", "output": "France"}
    de = D.qa_example("Paris liegt in Frankreich.", "Wo liegt Paris?", "de")
    assert de["input"] == "Kontext: Paris liegt in Frankreich.\nFrage: Wo liegt Paris?\nAntwort:" and de["output"] == ""
    assert tokenizer.format_prompt(de["instruction"], de["input"]).endswith(
        "### Input:\nKontext: Paris liegt in Frankreich.\nFrage: Wo liegt Paris?\nAntwort:\n\n### Response:")


SCRIPTS = {"zh": (0x4E00, 0x9FFF), "ar": (0x0600, 0x06FF), "el": (0x0370, 0x03FF), "hi": (0x0900, 0x097F)}


def test_qa_prompts_written_in_each_language():
    assert set(D.QA_PROMPTS) == set(D.LANGS)
    en = D.QA_PROMPTS["en"]
    for lang, p in D.QA_PROMPTS.items():
        assert set(p) == {"instruction", "context", "question", "answer"}
        if lang != "en":
            assert all(p[k] != en[k] for k in p), lang
        if lang in SCRIPTS:
            lo, hi = SCRIPTS[lang]
            for k, text in p.items():
                assert any(lo <= ord(c) <= hi for c in text), (lang, k)


# ------------------------------------------------------------------------------------ tokenizer
@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    lines = [tokenizer.format_prompt(p["instruction"], f"{p['context']}: x {p['question']}: y {p['answer']}")
             for p in D.QA_PROMPTS.values()]
    lines += [s.format(source="English", target=t) for s in D.TRANSLATION_INSTRUCTIONS for t in D.LANG_NAMES.values()]
    (d / "text.txt").write_text("\n".join(lines * 2), encoding="utf-8")
    return Tokenizer.train([d / "text.txt"], d / "m" / "tokenizer.model", vocab_size=600, seed=0)


def test_tokenizer_llama_conventions(tok, tmp_path):
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.vocab_size) == (0, 1, 2, 600)
    sp = tok.sp
    assert sp.unk_id() == 0 and sp.pad_id() == -1  # no pad piece: vocab stays as trained
    assert sp.id_to_piece(3) == "<0x00>" and sp.id_to_piece(258) == "<0xFF>"  # byte fallback
    text = "Hello  world\n\n### Response: 𝄞 ünïcödé 12"
    ids = tok.encode(text)
    assert ids[0] not in (1, 2) and ids[-1] not in (1, 2)  # no implicit BOS/EOS
    assert 0 not in ids  # unseen characters become bytes, never unk
    assert tok.decode([1] + ids + [2, 0, 0]) == text  # whole-sequence decode keeps spaces; skips bos/eos/pad
    assert tok.decode(torch.tensor(ids)) == text
    assert 1 not in tok.encode("<s>") and 2 not in tok.encode("</s>")  # the text is not a control token
    out = tok.save(tmp_path / "ckpt")
    assert out.read_bytes() == tok.path.read_bytes()
    assert Tokenizer.from_folder(tmp_path / "ckpt").encode(text) == ids


def test_tokenizer_training_is_deterministic(tok, tmp_path):
    text = Path(tok.path).parent.parent / "text.txt"
    a = Tokenizer.train([text], tmp_path / "a" / "tokenizer.model", vocab_size=600, seed=0)
    b = Tokenizer.train([text], tmp_path / "a" / "tokenizer.model", vocab_size=600, seed=0)
    assert a.path.read_bytes() == b.path.read_bytes()  # same inputs, same output path -> same bytes
    assert [tok.sp.id_to_piece(i) for i in range(600)] == [a.sp.id_to_piece(i) for i in range(600)]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["tokenizer.model"]  # no leftovers


def test_tokenizer_bad_input(tmp_path):
    (tmp_path / "t.txt").write_text("abc " * 50)
    with pytest.raises(D.DataError, match="vocab_size"):
        Tokenizer.train([tmp_path / "t.txt"], tmp_path / "x.model", vocab_size=100)
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(D.DataError, match="e.txt"):
        Tokenizer.train([tmp_path / "e.txt"], tmp_path / "x.model", vocab_size=400)
    with pytest.raises(FileNotFoundError, match="tokenizer.model"):
        Tokenizer.from_folder(tmp_path)


# ------------------------------------------------------------------------- examples and batches
def test_encode_example_exact_mask(tok):
    ex = {"instruction": "Name a color.", "input": "", "output": "Red and blue."}
    enc = tokenizer.encode_example(tok, ex, max_len=512)
    prompt = tok.encode(GOLDEN_NO_INPUT)
    resp = tok.encode("Red and blue.")
    assert enc["input_ids"] == [1] + prompt + resp + [2]
    assert enc["labels"] == [tokenizer.IGNORE_INDEX] * (1 + len(prompt)) + resp + [2]
    assert enc["input_ids"][-1] == tok.eos_id and enc["input_ids"].count(tok.bos_id) == 1
    # truncation keeps the prompt and what fits of the response; nothing of it -> dropped
    cut = tokenizer.encode_example(tok, ex, max_len=1 + len(prompt) + 2)
    assert cut["labels"] == [tokenizer.IGNORE_INDEX] * (1 + len(prompt)) + resp[:2]
    assert tokenizer.encode_example(tok, ex, max_len=1 + len(prompt)) is None
    empty = tokenizer.encode_example(tok, {**ex, "output": ""}, max_len=512)
    assert empty["labels"][-1] == 2 and sum(l != tokenizer.IGNORE_INDEX for l in empty["labels"]) == 1  # EOS alone is a target


def test_encode_examples_counts_drops(tok, capsys):
    short = {"instruction": "a", "input": "", "output": "b"}
    long_prompt = {"instruction": "word " * 200, "input": "", "output": "b"}
    enc, dropped = tokenizer.encode_examples(tok, [short, long_prompt, short], max_len=64)
    assert len(enc) == 2 and dropped == 1
    assert "dropped 1 of 3" in capsys.readouterr().out
    assert all(any(l != tokenizer.IGNORE_INDEX for l in e["labels"]) for e in enc)  # no all-masked example survives


def test_make_batch_padding_and_masking_exact():
    X = tokenizer.IGNORE_INDEX
    a = {"input_ids": [1, 5, 6, 7, 2], "labels": [X, X, 6, 7, 2]}
    b = {"input_ids": [1, 8, 2], "labels": [X, 8, 2]}
    batch = tokenizer.make_batch([a, b], pad_id=0)
    assert batch["idx"].tolist() == [[1, 5, 6, 7], [1, 8, 0, 0]]
    assert batch["targets"].tolist() == [[X, 6, 7, 2], [8, 2, X, X]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert all(v.dtype == torch.long for v in batch.values())
    # masked positions do not move the loss: change the logits there, the loss stays identical
    logits = torch.randn(2, 4, 10)
    loss = torch.nn.functional.cross_entropy(logits.view(-1, 10), batch["targets"].view(-1), ignore_index=tokenizer.IGNORE_INDEX)
    logits2 = logits.clone()
    logits2[batch["targets"] == tokenizer.IGNORE_INDEX] += 100 * torch.randn(3, 10)
    loss2 = torch.nn.functional.cross_entropy(logits2.view(-1, 10), batch["targets"].view(-1), ignore_index=tokenizer.IGNORE_INDEX)
    assert torch.equal(loss, loss2)


def _fake_encoded(n, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        L = rng.randint(3, 60)
        out.append({"input_ids": [1] + [i] * (L - 2) + [2], "labels": [tokenizer.IGNORE_INDEX] + [i] * (L - 2) + [2]})
    return out


def test_iterate_batches_seeded_complete_and_budgeted():
    enc = _fake_encoded(500)
    key = lambda bs: [e["input_ids"][1] for b in bs for e in b]
    b1 = list(tokenizer.iterate_batches(enc, batch_size=8, seed=3, epoch=0))
    assert key(b1) == key(list(tokenizer.iterate_batches(enc, batch_size=8, seed=3, epoch=0)))
    assert key(b1) != key(list(tokenizer.iterate_batches(enc, batch_size=8, seed=3, epoch=1)))
    assert sorted(key(b1)) == list(range(500)) and all(len(b) <= 8 for b in b1)
    tb = list(tokenizer.iterate_batches(enc, max_tokens=256, seed=0))
    assert sorted(key(tb)) == list(range(500))
    assert all(len(b) * max(len(e["input_ids"]) for e in b) <= 256 for b in tb)
    # length grouping wastes far less padding than random batches of the same size
    pad = lambda bs: sum(len(b) * max(len(e["input_ids"]) for e in b) - sum(len(e["input_ids"]) for e in b) for b in bs)
    shuffled = enc[:]
    random.Random(0).shuffle(shuffled)
    assert pad(b1) < 0.5 * pad([shuffled[i:i + 8] for i in range(0, 500, 8)])
    with pytest.raises(ValueError):
        next(tokenizer.iterate_batches(enc, batch_size=8, max_tokens=100))


# ------------------------------------------------------------------------------ real data readers
def _count_lines(path):
    return path.read_bytes().count(b"\n")


def test_readers_over_shared_data(shared_data):
    for lang in D.LANGS:
        qs = D.read_squad(D.xquad_path(shared_data, lang))
        assert len(qs) == 1190, lang
        assert all(q["context"][s:s + len(a)] == a for q in qs for a, s in zip(q["answers"], q["answer_starts"]))
        assert len(D.read_flores(shared_data, lang)) == 1012, lang
    assert len(D.read_flores(shared_data / "flores101" / "devtest", "zh")) == 1012  # the devtest folder itself
    mlqa = {"ar": 517, "de": 512, "en": 1148, "hi": 507, "vi": 511, "zh": 504}
    for lang, n in mlqa.items():
        assert len(D.read_squad(D.mlqa_path(shared_data, lang))) == n
    for lang in D.LANGS[1:]:
        folder = shared_data / "parallel" / f"en-{lang}"
        stems = sorted(p.name[:-4] for p in folder.glob("*.eng"))
        pairs = D.read_parallel(shared_data, lang)
        assert len(pairs) == sum(_count_lines(folder / f"{s}.eng") for s in stems), lang
        first = (folder / f"{stems[0]}.eng").read_text(encoding="utf-8").split("\n")[0]
        assert pairs[0][0] == first  # sorted by stem, .eng on the left
        assert pairs[-1][1] == (folder / f"{stems[-1]}.{lang}").read_text(encoding="utf-8").rstrip("\n").split("\n")[-1]


def test_alpaca_over_shared_data(shared_data):
    en = D.read_alpaca(D.alpaca_path(shared_data, "en"))
    zh = D.read_alpaca(D.alpaca_path(shared_data, "zh"))
    assert len(en) == len(zh) == 52002
    assert en[1]["instruction"] == "What are the three primary colors?"
    mix = mixture.build_mixture("coit", shared_data, ["zh"], n_translation=1000, n_alpaca=500, seed=0)
    counts = {}
    for ex in mix:
        counts[ex["source"], ex["lang"]] = counts.get((ex["source"], ex["lang"]), 0) + 1
    assert counts == {("alpaca", "en"): 500, ("alpaca", "zh"): 500, ("translation", "zh"): 1000}


def test_world_files_read_back(tmp_path):
    import world
    # every file of a world (the default passages and Flores lines), with no more pretraining text,
    # Alpaca and parallel pairs than the mixture below draws on: 0.8 s to write instead of 10 s
    out = Path(world.write_world(tmp_path / "w", seed=0, pretrain_chars=30_000, alpaca=60, parallel=120))
    n_flores = None
    mlqa = sorted((out / "mlqa" / "dev").glob("dev-context-*.json"))
    assert mlqa
    for p in mlqa:
        qs = D.read_squad(p)
        assert qs and all(q["context"][s:s + len(a)] == a for q in qs for a, s in zip(q["answers"], q["answer_starts"]))
    for lang in D.LANGS:
        for p in [D.xquad_path(out, lang)]:
            qs = D.read_squad(p)
            assert qs and all(q["context"][s:s + len(a)] == a for q in qs for a, s in zip(q["answers"], q["answer_starts"]))
        lines = D.read_flores(out, lang)
        assert n_flores in (None, len(lines))
        n_flores = len(lines)
        assert D.read_alpaca(D.alpaca_path(out, lang))
        if lang != "en":
            assert D.read_parallel(out, lang)
    langs = [l for l in D.LANGS if l != "en"]
    mix = mixture.build_mixture("muit", out, langs, budget=700, n_alpaca=50, seed=0)
    assert _counts(mix) == {**{("alpaca", l): 50 for l in D.LANGS}, **{("translation", l): 100 for l in langs}}


# ------------------------------------------------------------------------------------ bad input
def _one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert str(n) in msg, (n, msg)


def test_bad_input_one_clear_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[\n{"instruction": "a", "input": "", "output": "b"},\n{"instruction": "c" "input"}\n]')
    with pytest.raises(D.DataError) as e:
        D.read_alpaca(bad)
    _one_line(e, bad, "line 3", "not valid JSON")
    miss = tmp_path / "miss.json"
    miss.write_text(json.dumps([{"instruction": "a", "input": "", "output": "b"}, {"instruction": "a", "input": ""}]))
    with pytest.raises(D.DataError) as e:
        D.read_alpaca(miss)
    _one_line(e, miss, "record 1", "'output'")
    jl = tmp_path / "x.jsonl"
    jl.write_text('{"instruction": "a", "input": "", "output": "b"}\n{oops}\n')
    with pytest.raises(D.DataError) as e:
        D.read_alpaca(jl)
    _one_line(e, jl, "line 2")
    jl.write_text('{"instruction": "a", "input": "", "output": "b"}\n\n{"instruction": "a", "input": ""}\n')
    with pytest.raises(D.DataError) as e:
        D.read_alpaca(jl)
    _one_line(e, jl, "line 3", "'output'")
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(D.DataError) as e:
        D.read_alpaca(empty)
    _one_line(e, empty, "empty file")
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": "1", "answers": [{"text": "c", "answer_start": 0}]}]}]}]}))
    with pytest.raises(D.DataError) as e:
        D.read_squad(squad)
    _one_line(e, squad, "data[0].paragraphs[0].qas[0]", "'question'")
    par = tmp_path / "parallel" / "en-de"
    par.mkdir(parents=True)
    (par / "a.eng").write_text("one\ntwo\nthree\n")
    (par / "a.de").write_text("eins\nzwei\n")
    with pytest.raises(D.DataError) as e:
        D.read_parallel(tmp_path, "de")
    _one_line(e, "a.eng", "a.de", "3 lines", "has 2")
    (par / "a.de").write_text("eins\nzwei\ndrei\n")
    (par / "b.de").write_text("x\n")
    with pytest.raises(D.DataError) as e:
        D.read_parallel(tmp_path, "de")
    _one_line(e, "b.de", "b.eng")
    with pytest.raises(D.DataError) as e:
        D.read_parallel(tmp_path, "en")
    _one_line(e, "'en' is not accepted", "de,zh")
    for call in (lambda: D.read_flores(tmp_path, "xx"),
                 lambda: D.xquad_path(tmp_path, "fr"),
                 lambda: mixture.build_mixture("coit", tmp_path, ["qq"])):
        with pytest.raises(D.DataError) as e:
            call()
        _one_line(e, "unknown language code")
    with pytest.raises(FileNotFoundError) as e:
        D.xquad_path(tmp_path, "de")
    _one_line(e, "xquad.de.json")


def _squad(path, context="Berlin is big.", start=0, text="Berlin"):
    path.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "q-ok", "question": "?", "answers": [{"text": "Berlin", "answer_start": 0}]},
        {"id": "q-bad", "question": "Where?", "answers": [{"text": text, "answer_start": start}]}]}]}]}))
    return path


def test_read_squad_bad_records_name_file_record_and_field(tmp_path):
    assert len(D.read_squad(_squad(tmp_path / "ok.json"))) == 2
    cases = [(dict(start=40), "'answer_start' = 40", "outside the 14-character context"),
             (dict(start=10), "'answer_start' = 10", "6-character answer"),  # starts inside, ends past the end
             (dict(start=-1), "'answer_start' = -1", "outside"),
             (dict(start="abc"), "'answer_start' is \"abc\"", "expected a whole number"),
             (dict(start=True), "'answer_start' is true", "expected a whole number"),
             (dict(text=None), "'text' is null", "expected a string")]
    for kw, *needles in cases:
        with pytest.raises(D.DataError) as e:
            D.read_squad(_squad(tmp_path / "bad.json", **kw))
        _one_line(e, tmp_path / "bad.json", "qas[1] (id 'q-bad').answers[0]", *needles)
    with pytest.raises(D.DataError) as e:
        D.read_squad(_squad(tmp_path / "null.json", context=None))
    _one_line(e, "null.json", "data[0].paragraphs[0]", "'context' is null", "expected a string")
    latin1 = tmp_path / "latin1.json"
    doc = {"data": [{"paragraphs": [{"context": "Straße"}]}]}
    latin1.write_bytes(json.dumps(doc, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(D.DataError) as e:
        D.read_squad(latin1)
    _one_line(e, latin1, "not UTF-8")


def test_tokenizer_cli_refuses_to_overwrite(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(f"der Hund {i} läuft über die Straße" for i in range(200)))
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "tokenizer.model").write_bytes(b"the checkpoint's own tokenizer")
    argv = ["--text", str(text), "--out", str(out), "--vocab-size", "300"]
    r = subprocess.run([sys.executable, str(REPO / "tokenizer.py"), *argv], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "tokenizer.model exists" in r.stderr and "--overwrite" in r.stderr
    assert (out / "tokenizer.model").read_bytes() == b"the checkpoint's own tokenizer"
    r = in_process(tokenizer.main, [*argv, "--overwrite"], capsys)    # the same main(), in this process
    assert r.returncode == 0, r.stderr
    assert Tokenizer.from_folder(out).vocab_size == 300


def test_cli_misuse_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "dl"
    monkeypatch.chdir(tmp_path)
    mains = {"mixture.py": mixture.main, "tokenizer.py": tokenizer.main}
    for i, args in enumerate((["mixture.py", "--data", str(tmp_path), "--langs", "xx"], ["mixture.py"],
                              ["tokenizer.py", "--text", str(tmp_path / "none.txt"), "--out", str(out)])):
        r = (subprocess.run([sys.executable, str(REPO / args[0]), *args[1:]], capture_output=True, text=True,
                            cwd=tmp_path)                 # each script's real command line once
             if i != 1 else in_process(mains[args[0]], args[1:], capsys))
        assert r.returncode == 2, (args, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert "error:" in last and r.stderr.count("error:") == 1, r.stderr  # one clear line (after usage)
    assert not out.exists()


# -------------------------------------------------------------------------------------- mixtures
@pytest.fixture
def tiny_data(tmp_path):
    d = tmp_path / "data"
    (d / "alpaca").mkdir(parents=True)
    for lang in ("en", "de", "zh"):
        recs = [{"instruction": f"{lang}-ins-{i}", "input": "", "output": f"{lang}-out-{i}"} for i in range(12)]
        (d / "alpaca" / f"alpaca_{lang}.json").write_text(json.dumps(recs))
    for lang, stems in (("de", {"b": 5, "a": 4}), ("zh", {"only": 6})):
        par = d / "parallel" / f"en-{lang}"
        par.mkdir(parents=True)
        for stem, n in stems.items():
            (par / f"{stem}.eng").write_text("".join(f"en {stem}{i}\n" for i in range(n)))
            (par / f"{stem}.{lang}").write_text("".join(f"{lang} {stem}{i}\n" for i in range(n)))
    return d


def _counts(mix):
    c = {}
    for ex in mix:
        c[ex["source"], ex["lang"]] = c.get((ex["source"], ex["lang"]), 0) + 1
    return c


def test_mixture_composition_matches_request(tiny_data):
    coit = mixture.build_mixture("coit", tiny_data, ["de"], n_translation=5, seed=0)
    assert _counts(coit) == {("alpaca", "en"): 12, ("alpaca", "de"): 12, ("translation", "de"): 5}
    trans = [ex for ex in coit if ex["source"] == "translation"]
    # first-N subset: pairs in stem order (a0..a3 then b0), paraphrase i for the i-th pair
    expected = [("en a0", "de a0"), ("en a1", "de a1"), ("en a2", "de a2"), ("en a3", "de a3"), ("en b0", "de b0")]
    assert sorted((ex["input"], ex["output"]) for ex in trans) == expected
    for i, (src, tgt) in enumerate(expected):
        ex = next(e for e in trans if e["input"] == src)
        assert ex["instruction"] == D.TRANSLATION_INSTRUCTIONS[i].format(source="English", target="German")
    muit = mixture.build_mixture("muit", tiny_data, ["de", "zh"], budget=7, n_alpaca=3, seed=1)
    assert _counts(muit) == {("alpaca", "en"): 3, ("alpaca", "de"): 3, ("alpaca", "zh"): 3,
                             ("translation", "de"): 4, ("translation", "zh"): 3}
    assert {ex["instruction"] for ex in muit if ex["source"] == "alpaca"} == {
        f"{l}-ins-{i}" for l in ("en", "de", "zh") for i in range(3)}  # first N of each file
    alloc = mixture.build_mixture("muit", tiny_data, ["de", "zh"], allocation={"de": 2, "zh": 6})
    assert _counts(alloc)[("translation", "de")] == 2 and _counts(alloc)[("translation", "zh")] == 6
    (tiny_data / "alloc.json").write_text(json.dumps({"de": 9, "zh": 0}))
    from_file = mixture.build_mixture("muit", tiny_data, ["de", "zh"], allocation=tiny_data / "alloc.json")
    assert _counts(from_file)[("translation", "de")] == 9 and ("translation", "zh") not in _counts(from_file)
    assert _counts(mixture.build_mixture("muit", tiny_data, ["de", "zh"]))[("translation", "de")] == 9  # all pairs
    assert _counts(mixture.build_mixture("alpaca", tiny_data, [], n_alpaca=5)) == {("alpaca", "en"): 5}
    assert _counts(mixture.build_mixture("trans_only", tiny_data, ["zh"])) == {("translation", "zh"): 6}
    assert _counts(mixture.build_mixture("instr_only", tiny_data, ["de"])) == {("alpaca", "en"): 12, ("alpaca", "de"): 12}
    x2en = [e for e in mixture.build_mixture("coit_x2en", tiny_data, ["de"], n_translation=1) if e["source"] == "translation"]
    assert x2en == [{"instruction": "Translate the following sentences from German to English.",
                     "input": "de a0", "output": "en a0", "source": "translation", "lang": "de"}]


def test_mixture_bad_requests(tiny_data):
    with pytest.raises(D.DataError, match="only 9 exist"):
        mixture.build_mixture("coit", tiny_data, ["de"], n_translation=10)
    with pytest.raises(D.DataError, match="do not match"):
        mixture.build_mixture("muit", tiny_data, ["de", "zh"], allocation={"de": 2})
    with pytest.raises(D.DataError, match="whole number"):
        mixture.build_mixture("muit", tiny_data, ["de", "zh"], allocation={"de": 2.5, "zh": 1})
    with pytest.raises(ValueError, match="at most one"):
        mixture.build_mixture("muit", tiny_data, ["de", "zh"], budget=4, n_translation=2)
    with pytest.raises(ValueError, match="unknown recipe"):
        mixture.build_mixture("mix", tiny_data, ["de"])
    with pytest.raises(ValueError, match="one language"):
        mixture.build_mixture("coit", tiny_data, ["de", "zh"])
    with pytest.raises(FileNotFoundError, match="alpaca_el.json"):
        mixture.build_mixture("coit", tiny_data, ["el"])
    for kw in (dict(n_alpaca=-1), dict(n_translation=-5), dict(budget=-4)):  # would slice [:-N]
        with pytest.raises(D.DataError, match=f"--{next(iter(kw)).replace('_', '-')} -"):
            mixture.build_mixture("muit" if "budget" in kw else "coit", tiny_data, ["de"], **kw)


def test_mixture_seeded_order(tiny_data):
    a = mixture.build_mixture("muit", tiny_data, ["de", "zh"], seed=5)
    assert a == mixture.build_mixture("muit", tiny_data, ["de", "zh"], seed=5)
    b = mixture.build_mixture("muit", tiny_data, ["de", "zh"], seed=6)
    assert a != b and sorted(map(json.dumps, a)) == sorted(map(json.dumps, b))


def test_replay_mixes_ask_documents_into_fine_tuning_only_where_the_world_has_them(tiny_data, tok):
    """--replay: that share of the examples are DATA/read/en.txt's ask documents, every token a label as
    in pretraining; by default 0.3 where the file exists and 0 elsewhere (real data); asked for without
    the file, it is refused; in pretraining (the base's read phase) they are packed into blocks."""
    from dataclasses import replace

    import train
    cfg = train.TrainConfig(recipe="coit", lang="de", data=str(tiny_data), n_translation=5)
    plain = mixture.encoded_mixture(cfg, tok)
    assert len(plain) == 29 and {e["source"] for e in plain} == {"alpaca", "translation"}
    with pytest.raises(D.DataError, match="read/en.txt is missing"):
        mixture.encoded_mixture(replace(cfg, replay=0.3), tok)
    (tiny_data / "read").mkdir()
    (tiny_data / "read" / "en.txt").write_text("".join(f"Doc {i} is here. Q: Who? A: Ki{i}.\n" for i in range(7)))
    mixed = mixture.encoded_mixture(cfg, tok)
    replay = [e for e in mixed if e["source"] == "replay"]
    assert mixed[:29] == plain and len(replay) == len(mixed) - 29 == round(29 * 0.3 / 0.7)
    docs = {tok.decode(e["input_ids"][1:-1]) for e in replay}
    assert docs <= {f"Doc {i} is here. Q: Who? A: Ki{i}." for i in range(7)} and len(docs) == 7  # cycled
    assert all(e["labels"] == e["input_ids"] and e["input_ids"][0] == tok.bos_id
               and e["input_ids"][-1] == tok.eos_id and e["lang"] == "en" for e in replay)
    assert sum(e["source"] == "replay" for e in mixture.encoded_mixture(replace(cfg, replay=0.5), tok)) == 29
    assert mixture.encoded_mixture(replace(cfg, replay=0.0), tok) == plain
    assert mixture.replay_share(replace(cfg, recipe="pretrain")) == 0.0   # the text phase: none
    # the base's read phase: the documents packed end to end into blocks like the text's
    pre = replace(cfg, recipe="pretrain", replay=0.2, max_len=16)
    blocks = mixture.read_blocks(pre, tok, 40)
    assert len(blocks) == round(40 * 0.2 / 0.8) and all(len(b["input_ids"]) == 17 for b in blocks)
    stream = [t for b in blocks for t in b["input_ids"][:-1]] + blocks[-1]["input_ids"][-1:]  # each the next's first
    docs = [[tok.bos_id, *d, tok.eos_id] for d in mixture.ask_documents(pre, tok)]
    assert stream == [t for d in (docs * 5) for t in d][:len(stream)]   # in order, cycled
    assert {b["source"] for b in blocks} == {"read"} and all(b["labels"] == b["input_ids"] for b in blocks)
    assert mixture.read_blocks(replace(pre, replay=None), tok, 40) == []


def test_composition_table(tiny_data, tok):
    mix = mixture.build_mixture("coit", tiny_data, ["de"], n_translation=5)
    rows = {tuple(l.split()[:2]): l.split()[2:] for l in mixture.composition(mix).splitlines()[2:-2]}
    assert rows == {("alpaca", "de"): ["12"], ("alpaca", "en"): ["12"], ("translation", "de"): ["5"]}
    table = mixture.composition(mix, tok)
    lines = table.splitlines()
    assert "target_tokens" in lines[0] and "tok/char" in lines[0]
    trans = next(l for l in lines if l.startswith("translation")).split()
    outs = [e["output"] for e in mix if e["source"] == "translation"]
    assert int(trans[3]) == sum(len(tok.encode(o)) + 1 for o in outs)
    assert float(trans[4]) == pytest.approx(sum(len(tok.encode(o)) for o in outs) / sum(map(len, outs)), abs=1e-3)
    assert lines[-1].split()[1] == "29"


def test_tokenizer_json_backend_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers", reason="transformers not installed (test-only reference)")
    src = tmp_path / "src"
    write_byte_level_bpe(src, [GOLDEN_WITH_INPUT, GOLDEN_NO_INPUT, "Guten Morgen, 世界!"] * 5, 400)
    tok = Tokenizer.from_folder(src)
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (0, 1, 1)
    ref = transformers.PreTrainedTokenizerFast(tokenizer_file=str(src / "tokenizer.json"))
    for text in (GOLDEN_WITH_INPUT, "  two  spaces\n\nand 𝄞 ünï 世界"):
        ids = tok.encode(text)
        assert ids == ref.encode(text, add_special_tokens=False)
        assert tok.decode([0] + ids + [1, 1]) == text
    enc = tokenizer.encode_example(tok, {"instruction": "Name a color.", "input": "", "output": "Red"}, 512)
    assert enc["input_ids"][0] == 0 and enc["input_ids"][-1] == 1 and enc["labels"][-1] == 1
    tok.save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    assert Tokenizer.from_folder(tmp_path / "ckpt").encode("Guten") == tok.encode("Guten")


