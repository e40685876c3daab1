"""evaluate.py: CLI errors, batched generation, resume, and an end-to-end run of a tiny checkpoint
(the metrics themselves are tested in tests/test_metrics.py).

    python -m pytest -q tests/test_evaluate.py
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import data
import tokenizer
import device
import evaluate as E
import metrics
from conftest import in_process, tiny_checkpoint
from checkpoint import read_config, save_model
from model import Llama, LlamaConfig

ROOT = Path(__file__).resolve().parent.parent
CPU = ["--device", "cpu", "--threads", "1", "--dtype", "fp32"]  # no measuring, same numbers everywhere


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
        code = E.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and expect in err[0], err
    # the real command line: exit status 2 and one line; --json prints the documented keys
    r = _cli("score", "--metric", "bleu", "--hyp", str(tmp_path / "h.txt"), "--ref", str(tmp_path / "r.txt"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "h.txt: 1 hypotheses" in r.stderr
    E.main(["score", "--metric", "bleu", "--hyp", str(tmp_path / "h.txt"), "--ref", str(tmp_path / "h.txt"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["score"] == pytest.approx(100.0) and out["metric"] == "bleu" and "version:xllama-1" in out["signature"]


def _refused(capsys, argv, *needles):
    """E.main(argv) exits 2 with one stderr line holding every needle."""
    code = E.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert all(n in err[0] for n in needles), (needles, err)


def test_score_bad_files_and_flags_refused(tmp_path, capsys):
    good = tmp_path / "good.txt"
    good.write_text("der Hund\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n \n")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "latin1.txt").write_bytes("Straße\n".encode("latin-1"))
    score = lambda hyp, ref, *more: ["score", "--metric", "chrf", "--hyp", str(hyp), "--ref", str(ref), *more]
    for bad in ("empty.txt", "blank.txt", "empty.jsonl"):  # never a score of 0.00 with exit 0
        _refused(capsys, score(tmp_path / bad, good), bad, "empty")
        _refused(capsys, score(good, tmp_path / bad), bad, "empty")
    _refused(capsys, score(tmp_path / "latin1.txt", good), "latin1.txt", "not UTF-8")
    for wo in ("-3", "3"):
        _refused(capsys, score(good, good, "--word-order", wo), f"--word-order {wo}",
                 "expected a value in [0, 2]")
    E.main(score(good, good, "--word-order", "1"))
    assert "chrF2+|" in capsys.readouterr().out
    # a line cut by a crash: the note goes to stderr, stdout stays one JSON object
    pj = tmp_path / "p.jsonl"
    pj.write_text('{"prediction": "a b", "reference": "a b"}\n{"prediction": "c d", "refer')
    E.main(["score", "--metric", "chrf", "--hyp", str(pj), "--ref", str(pj), "--json"])
    cap = capsys.readouterr()
    assert json.loads(cap.out)["score"] == pytest.approx(100.0)
    assert "p.jsonl:2: unreadable line skipped" in cap.err
    r = in_process(E.main, score(tmp_path / "empty.txt", good), capsys)  # evaluate.py itself: test_cli_bad_input...
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1


def test_score_mlqa_all_seven_languages(tmp_path):
    from metrics import MLQA_LANGS
    assert set(MLQA_LANGS) == {"en", "ar", "de", "es", "hi", "vi", "zh"}
    hyp, ref = tmp_path / "h.txt", tmp_path / "r.txt"
    hyp.write_text("la casa\nunos libros\n")
    ref.write_text("casa\tcasas\nlibros\n")
    r = E.score_files("mlqa", str(hyp), str(ref), lang="es")  # Spanish articles dropped: both exact
    assert r["em"] == pytest.approx(100.0) and "lang:es" in r["signature"]
    assert E.score_files("mlqa", str(hyp), str(ref), lang="en")["em"] == 0.0  # "la", "unos" are not English articles
    for lang in MLQA_LANGS:  # every MLQA language is accepted
        assert E.score_files("mlqa", str(hyp), str(hyp), lang=lang)["em"] == pytest.approx(100.0)


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
    (root / "text.txt").write_text("\n".join((CONTEXTS + EN + DE) * 30))
    return d, tiny_checkpoint(root / "model", [root / "text.txt"], kv_heads=2)


def test_end_to_end_tiny_checkpoint_and_rescore(tmp_path, monkeypatch):
    d, m = tiny_world(tmp_path)
    out_qa, out_mt = tmp_path / "qa", tmp_path / "mt"
    E.main(["--model", str(m), "--task", "xquad", "--lang", "de", "--data", str(d), "--limit", "4",
            "--batch-size", "3", "--max-new-tokens", "6", "--out", str(out_qa)] + CPU)
    E.main(["--model", str(m), "--task", "flores", "--lang", "de", "--direction", "en-X", "--data", str(d),
            "--batch-size", "2", "--max-new-tokens", "6", "--out", str(out_mt)] + CPU)
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
    real = E.G.generate_responses
    monkeypatch.setattr(E.G, "generate_responses", lambda model, tok, prompts, *a: calls.append(len(prompts)) or real(model, tok, prompts, *a))
    E.main(["--model", str(m), "--task", "xquad", "--lang", "de", "--data", str(d), "--limit", "4",
            "--batch-size", "3", "--max-new-tokens", "6", "--out", str(out_qa)] + CPU)
    assert calls == [2]
    assert json.loads((out_qa / "scores.json").read_text())["f1"] == pytest.approx(qa["f1"])


def test_batched_generation_equals_one_by_one(tmp_path):
    """Left padding + attention mask: a prompt's greedy answer does not depend on its batch mates."""
    d, m = tiny_world(tmp_path)
    rt = device.decide("cpu", "fp32", threads=1)
    model, tok = E._load_model(m, rt)
    with torch.no_grad():  # larger random weights, so that different prompts give different continuations
        for p in model.parameters():
            p.mul_(8 if p.dim() == 2 else 1)
    prompts = [tokenizer.prompt_ids(tok, "Übersetze.", "alpaca", None, x) for x in ["Hallo", "Der Hund spielt im Garten mit dem Ball.",
                                                                              "Ich mag grünen Tee."]]
    batched, _ = E.G.generate_responses(model, tok, prompts, 8, rt.device)
    single = [E.G.generate_responses(model, tok, [p], 8, rt.device)[0][0] for p in prompts]
    assert batched == single and len(set(batched)) > 1  # the test has power only when outputs differ


def test_resume_refuses_other_settings_and_task_all(tmp_path, capsys):
    d, m = tiny_world(tmp_path)
    base = ["--model", str(m), "--lang", "de", "--data", str(d), "--limit", "2", "--max-new-tokens", "4"] + CPU
    E.main(base + ["--task", "xquad", "--out", str(tmp_path / "o")])
    capsys.readouterr()
    # same folder, other generation length: refuse, one line (the last flag wins)
    code = E.main(base + ["--max-new-tokens", "5", "--task", "xquad", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "max_new_tokens" in err[0]
    torch.manual_seed(1)  # a retrained model in the same folder: its predictions are not the old ones
    cfg = read_config(m / "config.json")
    save_model(Llama(cfg), m)
    assert E.main(base + ["--task", "xquad", "--out", str(tmp_path / "o")]) == 2
    assert "other weights" in capsys.readouterr().err
    # --task all: XQuAD + Flores both directions; MLQA absent in this data folder -> skipped, said so
    res = E.evaluate(m, "all", "de", d, limit=2, batch_size=2, out_dir=tmp_path / "all", max_new_tokens=4,
                     device="cpu", threads=1, dtype="float32")  # the torch spelling is accepted too
    assert set(res) == {"xquad-de", "flores-de-en-X", "flores-de-X-en"}
    out = capsys.readouterr().out
    assert out.count("device cpu (") == 1  # one device decision, printed once, for all three tasks
    assert json.loads((tmp_path / "all" / "xquad-de" / "eval_config.json").read_text())["dtype"] == "fp32"
    assert "skipped mlqa de" in out and "| lang | XQuAD acc | MLQA acc | Flores en→X BLEU | Flores X→en BLEU |" in out
    assert res["flores-de-X-en"]["n"] == 2 and (tmp_path / "all" / "flores-de-X-en" / "scores.json").is_file()


def test_world_xquad_and_flores_end_to_end(tmp_path):
    """The miniature world's XQuAD-de and Flores en->de through the CLI; `score` recomputes scores.json."""
    import world
    d = world.write_world(tmp_path / "world", seed=0, pretrain_chars=20000, alpaca=20, parallel=20)
    m = tiny_checkpoint(tmp_path / "model", [d / "pretrain" / "en.txt", d / "pretrain" / "de.txt"], max_positions=1024)
    for task in ("xquad", "flores"):
        E.main(["--model", str(m), "--task", task, "--lang", "de", "--data", str(d), "--limit", "3",
                "--max-new-tokens", "5"] + CPU)
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
    # held-out instructions: the last of the Alpaca file, scored by the language of the responses
    E.main(["--model", str(m), "--task", "instruct", "--lang", "de", "--data", str(d), "--limit", "3",
            "--max-new-tokens", "5"] + CPU)
    ins = json.loads((m / "eval" / "instruct-de" / "scores.json").read_text())
    rows = [json.loads(l) for l in (m / "eval" / "instruct-de" / "predictions.jsonl").read_text().splitlines()]
    held = data.read_alpaca(data.alpaca_path(d, "de"))[-data.HELD_OUT:][:3]
    assert ins["n"] == 3 and [r["reference"] for r in rows] == [ex["output"] for ex in held]
    rate = metrics.language_rate([r["prediction"] for r in rows], "de")
    assert ins["lang_rate"] == (None if rate is None else pytest.approx(100 * rate))


def test_device_flags_refused_before_loading(tmp_path, capsys, monkeypatch):
    d, m = tiny_world(tmp_path)
    loads = []
    monkeypatch.setattr(E.checkpoint, "load_model",
                        lambda *a, **k: loads.append(a) or pytest.fail("model loaded"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    base = ["--model", str(m), "--task", "xquad", "--lang", "de", "--data", str(d), "--out", str(tmp_path / "o")]
    _refused(capsys, base + ["--device", "tpu"], "--device 'tpu'", "expected one of auto, cpu, cuda")
    _refused(capsys, base + ["--device", "cuda"], "--device cuda", "no CUDA GPU")
    _refused(capsys, base + ["--device", "cpu", "--threads", "-1"], "--threads -1")
    _refused(capsys, base + ["--device", "cpu", "--dtype", "fp16"], "--dtype fp16 needs CUDA")
    _refused(capsys, base + ["--dtype", "half"], "--dtype 'half'")
    assert not loads and not (tmp_path / "o").exists()
    r = in_process(E.main, [*base, "--device", "tpu"], capsys)  # as `sys.exit(main())`: status 2, one line
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--device 'tpu'" in r.stderr


def test_weights_cast_to_the_decided_dtype(tmp_path):
    d, m = tiny_world(tmp_path)
    rt = device.decide("cpu", "bfloat16", threads=1, measure=lambda *a, **k: 1e9)
    model, _ = E._load_model(m, rt)
    assert rt.dtype == "bf16" and {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_bad_eval_input_refused_before_generation(tmp_path, capsys, monkeypatch):
    d, m = tiny_world(tmp_path)
    monkeypatch.setattr(E.G, "generate_responses", lambda *a: pytest.fail("generation started"))
    out = tmp_path / "o"
    base = ["--model", str(m), "--task", "flores", "--lang", "de", "--data", str(d), "--out", str(out)] + CPU
    for flag, v in (("--max-new-tokens", "-5"), ("--max-new-tokens", "0"), ("--limit", "0"), ("--limit", "-2"),
                    ("--batch-size", "0")):
        _refused(capsys, base + [flag, v], f"{flag} {v}", "[1, inf)")
    _refused(capsys, base + ["--spm", str(tmp_path / "missing.model")], "--spm", "missing.model: file not found")
    (tmp_path / "junk.model").write_text("not a model")
    _refused(capsys, base + ["--spm", str(tmp_path / "junk.model")], "--spm", "junk.model: not a sentencepiece model")
    assert not out.exists()  # nothing written by any refusal above
    out.write_text("a file")
    _refused(capsys, base, f"--out {out}", "existing file")
    out.unlink()
    out.mkdir()
    (out / "eval_config.json").write_text('{"model": "x", "dtyp')  # cut mid-write
    _refused(capsys, base, "eval_config.json", "unreadable JSON")
    assert (out / "eval_config.json").read_text() == '{"model": "x", "dtyp'  # kept, not overwritten
    flores = d / "flores101" / "devtest"
    (flores / "deu.devtest").write_text("\n".join(DE[:4]) + "\n")  # one line short: no silent zip()
    _refused(capsys, base + ["--out", str(tmp_path / "o2")], "eng.devtest has 5 lines", "deu.devtest has 4")
    assert not (tmp_path / "o2").exists()


def test_bad_checkpoints_one_line(tmp_path, capsys):
    # a model with fewer embeddings than its tokenizer has pieces, wrong shapes, truncated weights
    d, m = tiny_world(tmp_path)
    small = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    save_model(Llama(small), tmp_path / "small")
    (tmp_path / "small" / "tokenizer.model").write_bytes((m / "tokenizer.model").read_bytes())
    base = ["--task", "flores", "--lang", "de", "--data", str(d), "--limit", "2"] + CPU
    _refused(capsys, ["--model", str(tmp_path / "small")] + base, "tokenizer.model", "tokenizer pieces")
    blob = (m / "model.safetensors").read_bytes()
    (m / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    _refused(capsys, ["--model", str(m)] + base, "model.safetensors", "unreadable weights")


def test_no_passage_control_asks_the_same_questions_without_the_passage(tmp_path):
    import world
    d = world.write_world(tmp_path / "w", seed=0, pretrain_chars=20000, alpaca=20, parallel=20,
                          xquad_passages=3, mlqa_passages=2, flores=4)
    with_p = data.load_examples("xquad", "de", d)
    without = data.load_examples("xquad", "de", d, passage=False)
    assert [r["question"] for r in with_p] == [r["question"] for r in without]
    for a, b in zip(with_p, without):
        assert a["context"] in a["input"] and a["context"] not in b["input"]
        assert a["question"] in b["input"] and b["input"].endswith(a["input"].split("\n")[-1])
    # the control's answers are names the question alone never gives away (chance ~0)
    chance = E.qa_chance([r["question"] for r in without], [r["answers"] for r in without], "de")
    assert chance < 5.0 and not any(r["answers"][0] in r["question"] for r in without)
