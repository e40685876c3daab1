"""evaluate.py: metric parity with sacrebleu and the official SQuAD/MLQA rules, answer extraction,
response language, CLI errors, and an end-to-end run of a tiny checkpoint.

    python -m pytest -q tests/test_evaluate.py
"""
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import data
import evaluate as E
from model import Llama, LlamaConfig

ROOT = Path(__file__).resolve().parent.parent
FLORES_LANGS = ("de", "zh", "ar", "el", "hi", "tr", "vi")
N_LINES = 500  # of 1012 Flores devtest lines: keeps the parity test near 10 s on a shared CPU


def perturb(lines, seed):
    """Hypotheses = references with dropped words, swapped neighbours, truncation and empty lines."""
    rng, out = random.Random(seed), []
    for line in lines:
        w, k = line.split(), rng.random()
        if k < 0.1:
            out.append("")
        elif k < 0.3 and len(w) > 2:
            del w[rng.randrange(len(w))]
            out.append(" ".join(w))
        elif k < 0.5 and len(w) > 2:
            i = rng.randrange(len(w) - 1)
            w[i], w[i + 1] = w[i + 1], w[i]
            out.append(" ".join(w))
        elif k < 0.7:
            out.append(line[:max(1, len(line) // 3)])
        elif k < 0.8:  # dropped AND swapped
            w = w[1:]
            w.reverse()
            out.append(" ".join(w))
        else:
            out.append(line)
    return out


# ----------------------------------------------------------------------------- BLEU / chrF parity
def test_sacrebleu_parity_flores(shared_data):
    sacrebleu = pytest.importorskip("sacrebleu")
    for lang in FLORES_LANGS:
        refs = data.read_flores(shared_data, lang)[:N_LINES]
        hyps = perturb(refs, seed=len(lang) + ord(lang[0]))
        toks = ["13a", "zh"] if lang == "zh" else ["13a"]
        for tok in toks:
            ours, ref = E.corpus_bleu(hyps, refs, tokenize=tok), sacrebleu.corpus_bleu(hyps, [refs], tokenize=tok)
            assert abs(ours.score - ref.score) <= 0.01, (lang, tok, ours.score, ref.score)
            assert ours.sys_len == ref.sys_len and ours.ref_len == ref.ref_len
        for wo in (0, 2):
            ours, ref = E.chrf(hyps, refs, word_order=wo).score, sacrebleu.corpus_chrf(hyps, [refs], word_order=wo).score
            assert abs(ours - ref) <= 0.01, (lang, wo, ours, ref)
        for h, r in list(zip(hyps, refs))[:60]:
            tok = "zh" if lang == "zh" else "13a"
            ours, ref = E.sentence_bleu(h, r, tokenize=tok).score, sacrebleu.sentence_bleu(h, [r], tokenize=tok).score
            assert abs(ours - ref) <= 0.01, (lang, h, r, ours, ref)


def test_bleu_smoothing_and_effective_order_parity():
    sacrebleu = pytest.importorskip("sacrebleu")
    hyps = ["the cat sat", "a dog", "", "on the mat there sat a cat", "x y z w v"]
    refs = ["the cat sat on the mat", "the dog barked", "nothing", "there sat a cat on the mat", "x y z q v"]
    for smooth in ("exp", "floor", "add-k", "none"):
        for eff in (False, True):
            ours = E.corpus_bleu(hyps, refs, smooth=smooth, use_effective_order=eff).score
            ref = sacrebleu.corpus_bleu(hyps, [refs], smooth_method=smooth, use_effective_order=eff).score
            assert abs(ours - ref) <= 0.01, (smooth, eff, ours, ref)
            for h, r in zip(hyps, refs):
                ours = E.sentence_bleu(h, r, smooth=smooth, use_effective_order=eff).score
                ref = sacrebleu.sentence_bleu(h, [r], smooth_method=smooth, use_effective_order=eff).score
                assert abs(ours - ref) <= 0.01, (smooth, eff, h, ours, ref)


def test_zh_tokenizer_reproduces_sacrebleu_range_quirk():
    pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh
    line = "他说—“好的”。Version 2.0, 3-4 km… ←→ 你好abc"
    assert E.tokenize_zh(line) == TokenizerZh()(line)
    assert "—" in E.tokenize_zh("a—b").split()  # U+2014 is split off, as sacreBLEU does


def test_spbleu_matches_sacrebleu_on_pieces(tmp_path):
    sacrebleu = pytest.importorskip("sacrebleu")
    text = tmp_path / "t.txt"
    text.write_text("\n".join(f"Der Hund {i} läuft schnell über die Straße und die Katze schläft." for i in range(200)))
    tok = data.Tokenizer.train([text], tmp_path / "sp.model", vocab_size=320)
    hyps, refs = ["Der Hund läuft über die Straße.", "Katze schläft"], ["Der Hund läuft schnell.", "Die Katze schläft."]
    pieces = lambda s: " ".join(tok.sp.encode(s, out_type=str))
    ours = E.corpus_bleu(hyps, refs, tokenize=f"spm:{tmp_path / 'sp.model'}", use_effective_order=True)
    ref = sacrebleu.corpus_bleu([pieces(h) for h in hyps], [[pieces(r) for r in refs]], tokenize="none",
                                use_effective_order=True)
    assert abs(ours.score - ref.score) <= 0.01
    assert "tok:spm-sp" in ours.signature and ours.signature.endswith("version:xllama-1")


def test_signatures_name_this_implementation():
    b = E.corpus_bleu(["a b"], ["a b"])
    assert b.signature == "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:xllama-1"
    assert E.chrf(["a"], ["a"], word_order=2).signature.startswith("chrF2++|nrefs:1|")
    assert "version:xllama-1" in E.chrf(["a"], ["a"]).signature
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        E.corpus_bleu(["a", "b"], ["a"])


# ----------------------------------------------------------------------------- QA metrics
def test_squad_v11_rules():
    # "The Eiffel Tower!" -> lower, drop "!", drop article "the" -> "eiffel tower" == gold: EM 1, F1 1
    assert E.squad_em_f1("The Eiffel Tower!", ["Eiffel Tower"]) == (1.0, 1.0)
    # pred {in, 1889} vs gold {1889}: P=1/2, R=1 -> F1 = 2/3; EM 0
    em, f1 = E.squad_em_f1("in 1889", "1889")
    assert em == 0.0 and f1 == pytest.approx(2 / 3)
    # max over golds: second gold matches exactly
    assert E.squad_em_f1("Paris", ["France", "paris."]) == (1.0, 1.0)
    # SQuAD v1.1 strips ASCII punctuation only: "«Paris»" keeps the guillemets -> no match at all
    assert E.squad_em_f1("«Paris»", ["Paris"]) == (0.0, 0.0)
    # repeated tokens count once per occurrence: pred {a?} "cat cat dog" vs "cat dog dog":
    # common = {cat:1, dog:1} = 2, P=2/3, R=2/3 -> F1=2/3
    assert E.squad_em_f1("cat cat dog", ["cat dog dog"])[1] == pytest.approx(2 / 3)
    # everything normalised away on both sides: EM 1 ("" == ""), F1 0 (no common tokens, official)
    assert E.squad_em_f1("the", ["a"]) == (1.0, 0.0)


def test_mlqa_rules_per_language():
    # de articles: "der Rhein" -> "rhein"; Unicode punctuation: „ “ are P* -> removed
    assert E.mlqa_em_f1("„der Rhein“", ["Rhein"], "de") == (1.0, 1.0)
    # English articles are NOT German articles: "the Rhein" keeps "the": P=1/2 R=1 -> F1 2/3
    assert E.mlqa_em_f1("the Rhein", ["Rhein"], "de")[1] == pytest.approx(2 / 3)
    # en: the SQuAD article rule, plus Unicode punctuation (« » removed, unlike SQuAD v1.1)
    assert E.mlqa_em_f1("«the Paris»", ["Paris"], "en") == (1.0, 1.0)
    # zh: mixed segmentation, each Han character a token: pred 北京市 = {北,京,市}, gold 北京 = {北,京}
    # -> P=2/3 R=1 F1=0.8; the full-width "。" is P* and removed
    em, f1 = E.mlqa_em_f1("北京市。", ["北京"], "zh")
    assert em == 0.0 and f1 == pytest.approx(0.8)
    # zh: Latin runs stay whole words between Han characters: "在ABC公司" -> 在 abc 公 司
    assert E.mlqa_normalize("在ABC公司", "zh") == ["在", "abc", "公", "司"]
    # ar: the official pattern removes every "ال" (prefix or not): "القاهرة" -> "قاهرة" == gold "قاهرة"
    assert E.mlqa_em_f1("القاهرة", ["قاهرة"], "ar") == (1.0, 1.0)
    # vi: "của" is in MLQA's Vietnamese article list: "thủ đô của Pháp" -> [thủ, đô, pháp]
    assert E.mlqa_normalize("thủ đô của Pháp", "vi") == ["thủ", "đô", "pháp"]
    # hi: no articles, danda "।" is P* and removed
    assert E.mlqa_em_f1("नई दिल्ली।", ["नई दिल्ली"], "hi") == (1.0, 1.0)
    # el, tr: no articles (MLQA has neither language): the Greek article stays, F1 = 2/3
    assert E.mlqa_em_f1("η Αθήνα", ["Αθήνα"], "el")[1] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="--lang 'xx'"):
        E.mlqa_em_f1("a", ["a"], "xx")


def test_containment_and_extract_answer():
    # the paper's metric: FIRST gold only, lower-cased substring of the raw response
    assert E.containment("I think it is Berlin, Germany.", ["berlin", "Paris"]) == 1.0
    assert E.containment("Paris", ["berlin", "Paris"]) == 0.0
    assert E.extract_answer("Berlin\nFrage: Wo?") == "Berlin"  # first non-empty line
    assert E.extract_answer("\n\n  Antwort: Berlin  \n") == "Berlin"  # data.QA_PROMPTS label stripped
    assert E.extract_answer("### Response: the Rhine") == "the Rhine"
    assert E.extract_answer("context...\n### Response:\nAnswer:\n1889\n### Instruction:") == "1889"
    assert E.extract_answer("答案：北京") == "北京"
    assert E.extract_answer("   \n") == ""
    assert E.extract_answer("Answers vary") == "Answers vary"  # a label needs its colon


def test_response_language():
    cases = {"Der Hund ist nicht groß, aber die Katze schläft.": "de", "Bu kitap çok güzel ve ilginç.": "tr",
             "Tôi là sinh viên và tôi thích học tiếng Anh.": "vi", "The weather is nice and the sun is out.": "en",
             "今天天气很好。": "zh", "الطقس جميل اليوم": "ar", "Ο καιρός είναι ωραίος σήμερα.": "el",
             "आज मौसम अच्छा है।": "hi", "Das ist gut, OK 北京": "de"}
    for text, lang in cases.items():
        assert E.response_language(text) == lang, text
    assert E.response_language("1234 !!") is None and E.response_language("Berlin") is None  # no evidence
    # rate over decidable texts only: "Berlin" does not count against German
    assert E.language_rate(["今天很好", "hello there, the cat", "北京", "Berlin"], "zh") == pytest.approx(2 / 3)
    assert E.language_rate(["Berlin", "42"], "de") is None


def test_response_language_on_flores_references(shared_data):
    """Full sentences of the real Flores-101 devtest: >= 99% identified (measured 99.8-100%)."""
    for lang in data.LANGS:
        lines = data.read_flores(shared_data, lang)
        assert E.language_rate(lines, lang) >= 0.99, lang


# ----------------------------------------------------------------------------- CLI errors
def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    (tmp_path / "h.txt").write_text("a b c d e\n")
    (tmp_path / "r.txt").write_text("a b c d e\nd e f\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    cases = {"1 hypotheses but": ["score", "--metric", "bleu", "--hyp", str(tmp_path / "h.txt"),
                                  "--ref", str(tmp_path / "r.txt")],
             "--lang 'xx'": ["score", "--metric", "mlqa", "--hyp", str(tmp_path / "r.txt"),
                             "--ref", str(tmp_path / "r.txt"), "--lang", "xx"],
             "--lang 'fr'": ["--model", str(tmp_path / "model"), "--task", "xquad", "--lang", "fr"],
             "no tokenizer.model": ["--model", str(tmp_path / "model"), "--task", "flores", "--lang", "de",
                                    "--data", str(tmp_path / "no-data-needed")]}
    (tmp_path / "no-data-needed" / "flores101" / "devtest").mkdir(parents=True)
    for f in ("eng", "deu"):
        (tmp_path / "no-data-needed" / "flores101" / "devtest" / f"{f}.devtest").write_text("x\n")
    for expect, argv in cases.items():
        with pytest.raises(SystemExit) as e:
            E.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 2 and len(err) == 1 and expect in err[0], err
    # the real command line: exit status 2 and one line; --json prints the documented keys
    r = _cli("score", "--metric", "bleu", "--hyp", str(tmp_path / "h.txt"), "--ref", str(tmp_path / "r.txt"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "h.txt: 1 hypotheses" in r.stderr
    E.main(["score", "--metric", "bleu", "--hyp", str(tmp_path / "h.txt"), "--ref", str(tmp_path / "h.txt"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["score"] == pytest.approx(100.0) and out["metric"] == "bleu" and "version:xllama-1" in out["signature"]


# ----------------------------------------------------------------------------- end to end
CONTEXTS = ["Berlin ist die Hauptstadt von Deutschland. Der Rhein fließt durch Köln.",
            "Die Katze schläft auf dem Sofa. Der Hund spielt im Garten mit dem Ball."]
EN = ["The cat sleeps on the sofa.", "Berlin is the capital of Germany.", "The dog plays in the garden.",
      "The Rhine flows through Cologne.", "I like green tea."]
DE = ["Die Katze schläft auf dem Sofa.", "Berlin ist die Hauptstadt von Deutschland.",
      "Der Hund spielt im Garten.", "Der Rhein fließt durch Köln.", "Ich mag grünen Tee."]


def tiny_world(root: Path) -> tuple[Path, Path]:
    """A data folder with XQuAD-de (5 questions) and Flores en/de (5 lines), and a random tiny checkpoint."""
    d = root / "data"
    qas = [("Was ist die Hauptstadt?", "Berlin", 0), ("Wodurch fließt der Rhein?", "durch Köln", 58),
           ("Wo schläft die Katze?", "auf dem Sofa", 17), ("Wer spielt?", "Der Hund", 31),
           ("Womit spielt der Hund?", "mit dem Ball", 59)]
    paras = [{"context": CONTEXTS[min(i // 2, 1)], "qas": [{"id": f"q{i}", "question": q,
                                                            "answers": [{"text": a, "answer_start": s}]}]}
             for i, (q, a, s) in enumerate(qas)]
    (d / "xquad").mkdir(parents=True)
    (d / "xquad" / "xquad.de.json").write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paras}]}))
    (d / "flores101" / "devtest").mkdir(parents=True)
    (d / "flores101" / "devtest" / "eng.devtest").write_text("\n".join(EN) + "\n")
    (d / "flores101" / "devtest" / "deu.devtest").write_text("\n".join(DE) + "\n")
    m = root / "model"
    (root / "text.txt").write_text("\n".join((CONTEXTS + EN + DE) * 30))
    tok = data.Tokenizer.train([root / "text.txt"], m / "tokenizer.model", vocab_size=400)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    Llama(cfg).save_pretrained(m)
    return d, m


def test_end_to_end_tiny_checkpoint_and_rescore(tmp_path, monkeypatch):
    d, m = tiny_world(tmp_path)
    out_qa, out_mt = tmp_path / "qa", tmp_path / "mt"
    E.main(["--model", str(m), "--task", "xquad", "--lang", "de", "--data", str(d), "--limit", "4",
            "--batch-size", "3", "--max-new-tokens", "6", "--out", str(out_qa), "--device", "cpu"])
    E.main(["--model", str(m), "--task", "flores", "--lang", "de", "--direction", "en-X", "--data", str(d),
            "--batch-size", "2", "--max-new-tokens", "6", "--out", str(out_mt), "--device", "cpu"])
    qa = json.loads((out_qa / "scores.json").read_text())
    rows = [json.loads(l) for l in (out_qa / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1", "q2", "q3"] and qa["n"] == 4
    assert {"context", "question", "answers", "prediction", "answer"} <= set(rows[0])
    assert not (out_qa / "predictions.partial.jsonl").exists()
    pj = str(out_qa / "predictions.jsonl")
    assert E.score_files("contain", pj, pj)["score"] == pytest.approx(qa["contain"])
    mlqa = E.score_files("mlqa", pj, pj, lang="de")
    assert mlqa["em"] == pytest.approx(qa["em"]) and mlqa["f1"] == pytest.approx(qa["f1"])

    mt = json.loads((out_mt / "scores.json").read_text())
    pj = str(out_mt / "predictions.jsonl")
    assert mt["n"] == 5 and {"bleu", "chrf++", "spbleu"} <= set(mt)
    assert E.score_files("bleu", pj, pj, lang="de")["score"] == pytest.approx(mt["bleu"])
    assert E.score_files("chrf", pj, pj, word_order=2)["score"] == pytest.approx(mt["chrf++"])
    # the same numbers from plain text files through the CLI's code path
    hyp, ref = tmp_path / "hyp.txt", tmp_path / "ref.txt"
    preds = [json.loads(l)["prediction"] for l in Path(pj).read_text().splitlines()]
    hyp.write_text("".join(p.replace("\n", " ") + "\n" for p in preds))
    ref.write_text("\n".join(DE) + "\n")
    if not any("\n" in p for p in preds):
        assert E.score_files("bleu", str(hyp), str(ref))["score"] == pytest.approx(mt["bleu"])

    # resume: keep 2 predictions, the rerun generates only the 2 missing ones and reproduces the scores
    kept = (out_qa / "predictions.jsonl").read_text().splitlines()[:2]
    (out_qa / "predictions.jsonl").write_text("\n".join(kept) + "\n")
    calls = []
    real = E.generate_responses
    monkeypatch.setattr(E, "generate_responses", lambda model, tok, prompts, *a: calls.append(len(prompts)) or real(model, tok, prompts, *a))
    E.main(["--model", str(m), "--task", "xquad", "--lang", "de", "--data", str(d), "--limit", "4",
            "--batch-size", "3", "--max-new-tokens", "6", "--out", str(out_qa), "--device", "cpu"])
    assert calls == [2]
    assert json.loads((out_qa / "scores.json").read_text())["f1"] == pytest.approx(qa["f1"])


def test_batched_generation_equals_one_by_one(tmp_path):
    """Left padding + attention mask: a prompt's greedy answer does not depend on its batch mates."""
    d, m = tiny_world(tmp_path)
    model, tok, device = E._load_model(m, "cpu")
    with torch.no_grad():  # larger random weights, so that different prompts give different continuations
        for p in model.parameters():
            p.mul_(8 if p.dim() == 2 else 1)
    prompts = [data.format_prompt("Übersetze.", x) for x in ["Hallo", "Der Hund spielt im Garten mit dem Ball.",
                                                               "Ich mag grünen Tee."]]
    batched, _ = E.generate_responses(model, tok, prompts, 8, device)
    single = [E.generate_responses(model, tok, [p], 8, device)[0][0] for p in prompts]
    assert batched == single and len(set(batched)) > 1  # the test has power only when outputs differ


def test_resume_refuses_other_settings_and_task_all(tmp_path, capsys):
    d, m = tiny_world(tmp_path)
    base = ["--model", str(m), "--lang", "de", "--data", str(d), "--limit", "2", "--max-new-tokens", "4",
            "--device", "cpu"]
    E.main(base + ["--task", "xquad", "--out", str(tmp_path / "o")])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # same folder, other generation length: refuse, one line
        E.main(base[:-4] + ["--max-new-tokens", "5", "--device", "cpu", "--task", "xquad", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "max_new_tokens" in err[0]
    torch.manual_seed(1)  # a retrained model in the same folder: its predictions are not the old ones
    cfg = LlamaConfig.from_json(m / "config.json")
    Llama(cfg).save_pretrained(m)
    with pytest.raises(SystemExit):
        E.main(base + ["--task", "xquad", "--out", str(tmp_path / "o")])
    assert "other weights" in capsys.readouterr().err
    # --task all: XQuAD + Flores both directions; MLQA absent in this data folder -> skipped, said so
    res = E.evaluate(m, "all", "de", d, limit=2, batch_size=2, out_dir=tmp_path / "all", max_new_tokens=4, device="cpu")
    assert set(res) == {"xquad-de", "flores-de-en-X", "flores-de-X-en"}
    out = capsys.readouterr().out
    assert "skipped mlqa de" in out and "| lang | XQuAD acc | MLQA acc | Flores en→X BLEU | Flores X→en BLEU |" in out
    assert res["flores-de-X-en"]["n"] == 2 and (tmp_path / "all" / "flores-de-X-en" / "scores.json").is_file()


def test_world_xquad_and_flores_end_to_end(tmp_path):
    """The miniature world's XQuAD-de and Flores en->de through the CLI; `score` recomputes scores.json."""
    import world
    d = world.write_world(tmp_path / "world", seed=0, pretrain_chars=20000, alpaca=20, parallel=20)
    m = tmp_path / "model"
    tok = data.Tokenizer.train([d / "pretrain" / "en.txt", d / "pretrain" / "de.txt"], m / "tokenizer.model",
                               vocab_size=400)
    torch.manual_seed(0)
    Llama(LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, max_position_embeddings=1024)).save_pretrained(m)
    for task in ("xquad", "flores"):
        E.main(["--model", str(m), "--task", task, "--lang", "de", "--data", str(d), "--limit", "3",
                "--max-new-tokens", "5", "--device", "cpu"])
    qa_dir, mt_dir = m / "eval" / "xquad-de", m / "eval" / "flores-de-en-X"
    for out in (qa_dir, mt_dir):
        assert (out / "predictions.jsonl").is_file() and (out / "scores.json").is_file()
    qa, mt = (json.loads((o / "scores.json").read_text()) for o in (qa_dir, mt_dir))
    pq, pm = str(qa_dir / "predictions.jsonl"), str(mt_dir / "predictions.jsonl")
    assert E.score_files("mlqa", pq, pq, lang="de")["f1"] == pytest.approx(qa["f1"])
    assert E.score_files("contain", pq, pq)["score"] == pytest.approx(qa["contain"])
    assert E.score_files("bleu", pm, pm, lang="de")["score"] == pytest.approx(mt["bleu"])
    rows = [json.loads(l) for l in Path(pm).read_text().splitlines()]
    assert [r["reference"] for r in rows] == data.read_flores(d, "de")[:3]
