"""probe.py: pooling over real tokens only, layers = blocks + 1, batched = one by one, exact scores."""
import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tokenizer import Tokenizer
import probe
from checkpoint import save_model
from model import PRESETS, Llama

WORDS = ("haus baum katze hund wasser feuer stadt fluss berg licht nacht tag sonne mond stern "
         "house tree cat dog water fire city river mountain light night day sun moon star").split()


def sentences(n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))) + "." for _ in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny tokenizer trained with Tokenizer.train and a tiny random Llama."""
    root = tmp_path_factory.mktemp("probe")
    text = root / "text.txt"
    text.write_text("\n".join(sentences(400, 0)) + "\n")
    tok = Tokenizer.train([text], root / "tok" / "tokenizer.model", vocab_size=320, seed=0)
    cfg = dataclasses.replace(PRESETS["nano"], vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128,
                              num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(0)
    return Llama(cfg).eval(), tok, root


def test_layers_are_blocks_plus_one(tiny):
    model, tok, _ = tiny
    states = probe.pooled_states(model, tok, sentences(5, 1), batch_size=4)
    assert len(states) == model.config.num_hidden_layers + 1
    assert all(s.shape == (5, model.config.hidden_size) for s in states)


def test_pooled_equals_direct_mean_one_by_one(tiny):
    """Batched (right-padded, sorted by length) equals running each sentence alone and averaging
    its hidden states over its tokens by hand (BOS fed, not pooled)."""
    model, tok, _ = tiny
    sents = sentences(6, 2) + ["sun."]
    batched = probe.pooled_states(model, tok, sents, batch_size=4)
    single = probe.pooled_states(model, tok, sents, batch_size=1)
    for i, s in enumerate(sents):
        idx = torch.tensor([[tok.bos_id] + tok.encode(s)])
        hs = model.hidden_states(idx)
        for layer, h in enumerate(hs):
            ref = h[0, 1:].float().mean(0)
            torch.testing.assert_close(single[layer][i], ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(batched[layer][i], ref, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_pooled_vectors(tiny):
    model, tok, _ = tiny
    short, long = "cat.", " ".join(WORDS * 2) + "."
    alone = probe.pooled_states(model, tok, [short], batch_size=1)
    padded = probe.pooled_states(model, tok, [short, long], batch_size=2)  # short is padded to long
    for a, p in zip(alone, padded):
        torch.testing.assert_close(p[0], a[0], atol=1e-5, rtol=1e-5)
    h = torch.randn(2, 6, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    h2 = h.clone()
    h2[0, 3:] = 1e6                                     # garbage at pad positions
    torch.testing.assert_close(probe.pool(h2, mask), probe.pool(h, mask))
    torch.testing.assert_close(probe.pool(h, mask)[0], h[0, :3].mean(0))


def test_identical_inputs_cosine_one_retrieval_100(tiny):
    model, tok, _ = tiny
    s = sentences(12, 3)
    r = probe.probe_loaded(model, tok, {"en": s, "de": list(s)}, ["de"], batch_size=5)
    assert r["layers"] == model.config.num_hidden_layers + 1 and r["n"] == 12
    for layer in range(r["layers"]):
        assert r["langs"]["de"]["pair"][layer] == pytest.approx(1.0, abs=1e-6)
        assert r["langs"]["de"]["retrieval"][layer] == 100.0
        assert r["langs"]["de"]["nonpair"][layer] < 1.0


def test_alignment_against_loops():
    g = torch.Generator().manual_seed(0)
    en, x = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    x[2] = en[2] * 3.0                                  # one exact pair (cosine 1, scale-free)
    got = probe.alignment(en, x)
    cos = [[float(torch.dot(en[i], x[j]) / (en[i].norm() * x[j].norm())) for j in range(6)] for i in range(6)]
    pair = sum(cos[i][i] for i in range(6)) / 6
    nonpair = sum(cos[i][j] for i in range(6) for j in range(6) if i != j) / 30
    hits = sum(max(range(6), key=lambda j: cos[i][j]) == i for i in range(6))
    assert got["pair"] == pytest.approx(pair, abs=1e-12)
    assert got["nonpair"] == pytest.approx(nonpair, abs=1e-12)
    assert got["gap"] == pytest.approx(pair - nonpair, abs=1e-12)
    assert got["retrieval"] == pytest.approx(100.0 * hits / 6)
    assert cos[2][2] == pytest.approx(1.0) and max(range(6), key=lambda j: cos[2][j]) == 2
    shuffled = probe.alignment(en, en[[1, 0, 2, 3, 4, 5]])  # two swapped rows -> 4 of 6 retrieved
    assert shuffled["retrieval"] == pytest.approx(100.0 * 4 / 6)


def _world(root, n=10):
    d = root / "data" / "flores101" / "devtest"
    d.mkdir(parents=True, exist_ok=True)
    (d / "eng.devtest").write_text("\n".join(sentences(n, 4)) + "\n")
    (d / "deu.devtest").write_text("\n".join(sentences(n, 5)) + "\n")
    return root / "data"


@pytest.fixture(scope="module")
def two_checkpoints(tiny, tmp_path_factory):
    """Two random tiny models saved as checkpoint folders (HF layout + tokenizer.model)."""
    model, tok, _ = tiny
    root = tmp_path_factory.mktemp("ckpts")
    dirs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = root / f"m{seed}"
        save_model(Llama(model.config), folder)
        tok.save(folder)
        dirs.append(str(folder))
    return dirs


def test_cli_two_models_side_by_side(two_checkpoints, tmp_path, capsys):
    dirs = two_checkpoints
    out = tmp_path / "probe.json"
    argv = ["--models", ",".join(dirs), "--langs", "de", "--data", str(_world(tmp_path)),
            "--limit", "8", "--batch-size", "3", "--device", "cpu", "--dtype", "float32", "--threads", "1", "--out", str(out)]
    assert probe.main(argv) == 0
    saved = json.loads(out.read_text())
    res = saved["models"]
    assert set(res) == set(dirs) and saved["config"]["threads"] == 1
    for r in res.values():
        assert r["n"] == 8 and len(r["langs"]["de"]["gap"]) == r["layers"] == 4
        assert r["best_layer"]["gap"] == max(range(4), key=lambda i: r["mean"]["gap"][i])
    printed = capsys.readouterr().out
    assert "strongest alignment: layer" in printed and "side by side" in printed
    assert "probe: device cpu (" in printed and "1 thread(s) (--threads)" in printed  # device.decide's line
    assert out.with_suffix(".png").exists() or out.with_suffix(".txt").exists()
    # a finished result is not replaced silently; --overwrite replaces it (fp32 spelled the short way)
    before = out.read_bytes()
    assert probe.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and str(out) in err[0], err
    assert out.read_bytes() == before
    assert probe.main([a if a != "float32" else "fp32" for a in argv] + ["--overwrite"]) == 0
    assert json.loads(out.read_text())["config"]["dtype"] == "fp32"


def test_cli_bad_input_one_line(two_checkpoints, tmp_path, capsys):
    data_dir = _world(tmp_path)
    (tmp_path / "done.json").write_text("{}")
    (tmp_path / "afile").write_text("x")
    model = two_checkpoints[0]
    for argv, needle in ((["--models", str(tmp_path / "nope"), "--data", str(data_dir)], "not a checkpoint"),
                         (["--models", str(tmp_path), "--langs", "xx", "--data", str(data_dir)], "xx"),
                         (["--models", str(tmp_path), "--langs", "zh", "--data", str(data_dir)], "zho_simpl"),
                         (["--limit", "1"], "--limit"),
                         (["--models", model, "--data", str(data_dir), "--dtype", "half"], "--dtype 'half'"),
                         (["--models", model, "--data", str(data_dir), "--threads", "-1"], "--threads -1"),
                         (["--models", model, "--data", str(data_dir), "--out", str(tmp_path)], "is a folder"),
                         (["--models", model, "--data", str(data_dir), "--out", str(tmp_path / "done.json")], "--overwrite"),
                         (["--models", model, "--data", str(data_dir), "--out", str(tmp_path / "afile" / "p.json")],
                          "is a file, not a folder")):
        assert probe.main(argv + (["--out", str(tmp_path / "o.json")] if "--out" not in argv else [])) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert (tmp_path / "done.json").read_text() == "{}" and not (tmp_path / "o.json").exists()
    with pytest.raises(SystemExit) as e:  # argparse's own errors: one line too, exit 2
        probe.main(["--threads", "many"])
    assert e.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


def test_probe_does_not_import_scaling():
    code = "import sys, probe; sys.exit('scaling' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(probe.__file__).parent).returncode == 0


def test_pooled_states_match_transformers(tiny, tmp_path):
    """Reference: HF LlamaForCausalLM with output_hidden_states on the same right-padded batch,
    pooled by hand over the real tokens (BOS excluded)."""
    transformers = pytest.importorskip("transformers")
    model, tok, _ = tiny
    save_model(model, tmp_path / "m")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.float32).eval()
    sents = sentences(5, 6)
    ours = probe.pooled_states(model, tok, sents, batch_size=5)
    rows = [[tok.bos_id] + tok.encode(s) for s in sents]
    T = max(map(len, rows))
    idx = torch.tensor([r + [tok.pad_id] * (T - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
    with torch.no_grad():
        hs = hf(input_ids=idx, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(hs) == len(ours)
    keep = mask.clone()
    keep[:, 0] = 0
    for layer, h in enumerate(hs):
        ref = (h * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
        torch.testing.assert_close(ours[layer], ref, atol=1e-4, rtol=1e-4)


class Copier(torch.nn.Module):
    """A perfect induction head: predicts the token that followed the last earlier occurrence of the
    current token, else token 0."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.dummy = vocab, torch.nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        row, logits = idx[0].tolist(), torch.zeros(1, idx.size(1), self.vocab)
        for i, t in enumerate(row):
            prev = [j for j in range(i) if row[j] == t]
            logits[0, i, row[prev[-1] + 1] if prev else 0] = 1.0
        return logits, None


def test_repeat_accuracy_separates_copying_from_not(tiny):
    model, tok, _ = tiny
    sents = [s for s in sentences(30, 3) if len(set(tok.encode(s))) == len(tok.encode(s))][:10]
    assert len(sents) >= 3
    r = probe.repeat_accuracy(Copier(tok.vocab_size), tok, sents)
    assert r["second"] == 100.0 and r["first"] == 0.0       # copies the whole 2nd copy, nothing before it
    r = probe.repeat_accuracy(model, tok, sents)             # a random model: no better on the 2nd copy
    assert 0 <= r["first"] <= 100 and abs(r["second"] - r["first"]) < 20
    with pytest.raises(ValueError, match="3 tokens"):
        probe.repeat_accuracy(model, tok, ["a"])


def test_bind_accuracy_counts_questions_whose_answer_is_likeliest():
    items = [{"context": "c", "question": "q", "answer": "A", "others": ["B"]},
             {"context": "c", "question": "q", "answer": "A", "others": ["B", "C"]}]
    oracle = probe.bind_accuracy(items, lambda it, a: 0.0 if a == it["answer"] else -1.0)
    assert oracle == {"bind": 100.0, "chance": pytest.approx(100 * (1 / 2 + 1 / 3) / 2), "n": 2}
    assert probe.bind_accuracy(items, lambda it, a: 0.0)["bind"] == 0.0            # a tie is no preference
    half = probe.bind_accuracy(items, lambda it, a: {"A": 0.0, "B": -1.0, "C": 1.0}[a])
    assert half["bind"] == 50.0                                                   # C beats A in the second


def test_answer_logprob_sums_the_answer_tokens_after_its_prompt(tiny):
    model, tok, _ = tiny
    item = {"context": "the cat sees the dog.", "question": "who sees the dog?", "answer": "cat", "others": []}
    prompt, answer = probe.bind_prompt(tok, item, "cat", "doc")
    assert tok.decode(answer).strip() == "cat" and prompt[0] == tok.bos_id
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([prompt + answer]))[0][0], -1)
    want = sum(logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(answer))
    assert probe.answer_logprob(model, prompt, answer) == pytest.approx(want, abs=1e-4)
    prompt, answer = probe.bind_prompt(tok, item, "cat", "alpaca")
    assert answer[-1] == tok.eos_id and "Response" in tok.decode(prompt)
