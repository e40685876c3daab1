"""generate.py: streamed greedy/sampled tokens equal Llama.generate, golden prompt templates, streaming text
equal to the whole decode (byte-fallback Chinese and Hindi), a LoRA adapter equal to its merged model,
stdin and interactive modes, and bad input -> one line + exit 2.

A 'nano' model with random weights and a 300-piece sentencepiece trained on English only (so Chinese
and Hindi come out as byte pieces); the whole file takes a few seconds plus two CLI subprocesses.
    python -m pytest -q tests/test_generate.py
"""
import io
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import in_process, write_byte_level_bpe
import tokenizer
from tokenizer import Tokenizer
import generate as G
import lora as L
from checkpoint import load_model, save_model
from model import PRESETS, Llama

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--device", "cpu", "--dtype", "fp32", "--threads", "1"]
ENGLISH = "The cat sleeps on the sofa. Berlin is the capital of Germany. I like green tea. Translate into German.\n"
# SmolLM2-Instruct's tokenizer_config.json "chat_template", verbatim (HuggingFaceTB/SmolLM2-135M-Instruct)
SMOLLM2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
           "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
           "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
           "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A checkpoint folder: random 'nano' weights scaled x8 (peaked logits: varied, non-trivial greedy text)."""
    root = tmp_path_factory.mktemp("generate")
    (root / "text.txt").write_text(ENGLISH * 200)
    tok = Tokenizer.train([root / "text.txt"], root / "model" / "tokenizer.model", vocab_size=300)
    torch.manual_seed(0)
    model = Llama(replace(PRESETS["nano"], vocab_size=tok.vocab_size))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8 if p.dim() == 2 else 1)
    save_model(model, root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def loaded(folder):
    model, tok, rt, tok_dir = G.load(folder, "cpu", "fp32", 1)
    return model, tok, tok_dir


def test_stream_equals_generate_greedy_eos_and_sampled(loaded):
    model, tok, _ = loaded
    ids = G.prompt_ids(tok, "Translate into German.", G.GenConfig(), None)
    idx, T = torch.tensor([ids]), len(ids)
    ref = model.generate(idx, 24, decode="dynamic")[0, T:].tolist()
    assert list(G.stream_ids(model, ids, 24)) == ref and len(set(ref)) > 4   # power: a varied answer
    assert list(G.stream_ids(model, ids, 24, decode="static")) == ref
    eos = ref[6]                                   # a token that occurs: the stream stops right after it
    ref_eos = model.generate(idx, 24, eos_id=eos)[0, T:].tolist()
    assert list(G.stream_ids(model, ids, 24, eos_id=eos)) == ref_eos == ref[:ref.index(eos) + 1]
    kw = dict(temperature=0.9, top_k=50, top_p=0.95)
    torch.manual_seed(3)
    sampled = model.generate(idx, 16, **kw)[0, T:].tolist()
    torch.manual_seed(3)
    assert list(G.stream_ids(model, ids, 16, **kw)) == sampled != ref[:16]



def test_graph_decode_lives_here_and_auto_is_dynamic_on_the_cpu():
    torch.manual_seed(0)
    model = Llama(PRESETS["nano"]).eval()
    idx = torch.randint(3, 100, (2, 5))
    ref = model.generate(idx, 8, decode="dynamic")
    for decode in ("auto", "dynamic", "static"):
        assert torch.equal(G.generate(model, idx, 8, decode=decode), ref), decode
    with pytest.raises(ValueError, match="graph needs CUDA"):
        G.generate(model, idx, 2, decode="graph")
    with pytest.raises(ValueError, match="generate.py"):     # model.py has no CUDA-graph decoder
        model.generate(idx, 2, decode="graph")

def test_answer_prints_the_decoded_greedy_text(loaded, capsys):
    model, tok, tok_dir = loaded
    cfg = G.GenConfig(max_new_tokens=20)
    ids = torch.tensor([G.prompt_ids(tok, "Hello", cfg)])
    ref = model.generate(ids, 20, eos_id=tok.eos_id)[0, ids.size(1):]
    text = G.answer(model, tok, "Hello", cfg, tok_dir)
    out, err = capsys.readouterr()
    assert text == tok.decode(ref) and out == text + "\n" and text.strip()
    assert "tokens/s" in err and len(err.splitlines()) == 1


def test_templates_render_exactly(tmp_path, loaded):
    _, tok, _ = loaded
    assert tokenizer.format_prompt("Translate into German.", "The cat sleeps.") == (
        "Below is an instruction that describes a task, paired with an input that provides further context. "
        "Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate into German."
        "\n\n### Input:\nThe cat sleeps.\n\n### Response:")
    assert G.prompt_ids(tok, "Hi there", G.GenConfig()) == [tok.bos_id] + tok.encode(
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nHi there\n\n### Response:")
    assert G.prompt_ids(tok, "Hi there", G.GenConfig(template="none")) == [tok.bos_id] + tok.encode("Hi there")
    # golden strings = what transformers' apply_chat_template(add_generation_prompt=True) gives for these templates
    assert tokenizer.render_chat(SMOLLM2, "Hi there") == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, "
                                                  "trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi there"
                                                  "<|im_end|>\n<|im_start|>assistant\n")
    chatml = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}"
              "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    assert tokenizer.render_chat(chatml, "Hi") == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    # a template that writes the BOS text: the BOS id is put, never the pieces of "<s>"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": {"content": "<s>"}, "chat_template": "{{ bos_token }}[INST] {{ messages[0]['content'] }} [/INST]"}))
    chat = G.GenConfig(template="chat")
    assert G.prompt_ids(tok, "Hi", chat, tmp_path) == [tok.bos_id] + tok.encode("[INST] Hi [/INST]")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": SMOLLM2}))
    assert G.prompt_ids(tok, "Hi", chat, tmp_path) == tok.encode(tokenizer.render_chat(SMOLLM2, "Hi"))   # no BOS in it
    (tmp_path / "tokenizer_config.json").write_text("{}")
    (tmp_path / "chat_template.jinja").write_text(chatml)                # where transformers >= 4.43 saves it
    assert G.prompt_ids(tok, "Hi", chat, tmp_path) == tok.encode(tokenizer.render_chat(chatml, "Hi"))
    (tmp_path / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="tokenizer_config.json: no chat_template"):
        G.prompt_ids(tok, "Hi", chat, tmp_path)


def test_streamed_text_equals_whole_decode_with_byte_pieces(loaded):
    _, tok, _ = loaded
    text = "你好 नमस्ते world, the cat sleeps."
    ids = tok.encode(text)
    assert sum(3 <= i <= 258 for i in ids) > 20           # Chinese and Hindi are byte-fallback pieces here
    pieces = list(G.stream_text(tok, ids))
    assert "".join(pieces) == tok.decode(ids) == text and len(pieces) > 5
    assert not any("\ufffd" in p for p in pieces)          # no half character ever printed
    assert " the" in pieces and "".join(tok.decode([i]) for i in ids).endswith("world,thecatsleeps.")  # vs piece by piece
    assert "".join(G.stream_text(tok, ids + [tok.eos_id])) == text                                       # EOS silent
    cut = ids[:2]                                          # ended inside 你: the decoder's own U+FFFD at the end
    assert "".join(G.stream_text(tok, cut)) == tok.decode(cut) and tok.decode(cut).endswith("\ufffd")


def test_lora_adapter_generates_what_the_merged_model_generates(folder, tmp_path, capsys):
    model = load_model(folder)
    cfg = L.LoraConfig(r=4, alpha=8, dropout=0.1, target_modules=L.ALL_LINEAR)   # dropout: must be off in load()
    L.inject_lora(model, cfg)
    torch.manual_seed(1)
    with torch.no_grad():
        for m in L.lora_modules(model).values():
            m.lora_B.weight.normal_(0, 0.5)                # B != 0, so the adapter changes the answer
    L.save_adapter(model, tmp_path / "adapter", cfg, base_name=str(folder))
    L.unload_lora(model)
    save_model(model, tmp_path / "merged")
    shutil.copy(folder / "tokenizer.model", tmp_path / "merged")
    texts = {}
    for name in ("adapter", "merged", "base"):
        m, tok, _, tok_dir = G.load(folder if name == "base" else tmp_path / name, "cpu", "fp32", 1)
        texts[name] = G.answer(m, tok, "Translate into German.", G.GenConfig(max_new_tokens=24), tok_dir)
    assert tok_dir == folder and texts["adapter"] == texts["merged"] != texts["base"]   # tokenizer from the base
    capsys.readouterr()


def test_stdin_and_interactive_modes(folder, loaded, capsys, monkeypatch):
    model, tok, tok_dir = loaded
    cfg = G.GenConfig(max_new_tokens=8)
    expect = [G.answer(model, tok, p, cfg, tok_dir) for p in ("Hello", "Berlin is")]
    capsys.readouterr()
    r = subprocess.run([sys.executable, str(ROOT / "generate.py"), "--model", str(folder), "--max-new-tokens", "8",
                        *FAST], input="Hello\n\nBerlin is\n", capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(t + "\n" for t in expect) and r.stderr.count("tokens/s") == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello\n\n"))          # -i: EOF after one turn ends cleanly
    assert G.main(["--model", str(folder), "-i", "--max-new-tokens", "8", *FAST]) == 0
    assert capsys.readouterr().out == "> " + expect[0] + "\n> > "   # a blank line asks again


def test_bad_input_exits_2_with_one_line(folder, tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "no-tok").mkdir()
    shutil.copy(folder / "config.json", tmp_path / "no-tok")
    (tmp_path / "ad").mkdir()
    (tmp_path / "ad" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "nowhere"}))
    m = ["--model", str(folder), *FAST]
    cases = {"no config.json or adapter_config.json": ["--model", str(tmp_path / "empty"), "hi"],
             "no tokenizer.model or tokenizer.json": ["--model", str(tmp_path / "no-tok"), "hi"],
             "base_model_name_or_path 'nowhere'": ["--model", str(tmp_path / "ad"), "hi"],
             "prompt argument: empty": [*m, "  "],
             "--top-k 5: greedy": [*m, "--top-k", "5", "hi"],
             "--top-p 1.5: expected a value in (0, 1]": [*m, "--temperature", "1", "--top-p", "1.5", "hi"],
             "--temperature -1.0": [*m, "--temperature", "-1", "hi"],
             "tokenizer_config.json: no chat_template": [*m, "--template", "chat", "hi"],
             "--dtype 'fp8'": ["--model", str(folder), "--dtype", "fp8", "hi"],
             "--max-new-tokens: invalid int value": [*m, "--max-new-tokens", "x", "hi"]}
    for expect, argv in cases.items():
        assert exit_status(argv) == 2, expect
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0], (expect, err)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n \n"))
    assert G.main(m) == 2 and "stdin: no prompt" in capsys.readouterr().err
    for i, (argv, expect) in enumerate(((["--model", str(tmp_path / "empty"), "hi"], "no config.json"),
                                        ([*m, "--temperature", "0.5", "--top-p", "0", "hi"], "--top-p 0.0"))):
        r = (subprocess.run([sys.executable, str(ROOT / "generate.py"), *argv], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
             if i == 0 else in_process(G.main, argv, capsys))   # the real command line once
        assert r.returncode == 2 and r.stdout == "" and r.stderr.strip().splitlines() == [r.stderr.strip()]
        assert expect in r.stderr


def exit_status(argv) -> int:
    """main()'s return value, or the status argparse exits with."""
    try:
        return G.main(argv)
    except SystemExit as e:
        return e.code


def test_a_tokenizer_json_folder_streams_and_answers(tmp_path, capsys):
    # model folders that ship a byte-level BPE tokenizer.json (SmolLM2, Llama-3) instead of tokenizer.model
    folder = tmp_path / "bpe"
    hf = write_byte_level_bpe(folder, [ENGLISH] * 20, 300)
    torch.manual_seed(0)
    nano = replace(PRESETS["nano"], vocab_size=hf.get_vocab_size(), bos_token_id=0, eos_token_id=1)
    save_model(Llama(nano), folder)
    model, tok, _, tok_dir = G.load(folder, "cpu", "fp32", 1)
    text = "你好 नमस्ते, the cat sleeps."      # multi-byte characters split across byte-level pieces
    ids = tok.encode(text)
    assert "".join(G.stream_text(tok, ids)) == tok.decode(ids) == text
    cfg = G.GenConfig(max_new_tokens=12)
    prompt = torch.tensor([G.prompt_ids(tok, "Hello", cfg, tok_dir)])
    ref = model.generate(prompt, 12, eos_id=tok.eos_id)[0, prompt.size(1):]
    assert G.answer(model, tok, "Hello", cfg, tok_dir) == tok.decode(ref)
