"""Shared test fixtures: where the real data lives, and one torch thread for the whole suite."""
import builtins
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

# `python -m study.X` in a subprocess finds the lesson and the study from any working folder.
REPO = Path(__file__).resolve().parent.parent
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

# The real datasets sit beside the checkout (../shared/data); tests that read them skip when absent.
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

# The test models are tiny (many small ops), where OpenMP threads cost more than they bring, and a
# fixed count keeps the suite's numbers the same everywhere; device.decide is tested on its own.
torch.set_num_threads(1)


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see README: Data)")
    return SHARED_DATA


def hide_matplotlib(monkeypatch) -> None:
    """Importing matplotlib fails from now on, as on a machine without it (the text-chart fallbacks)."""
    real = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)


def write_byte_level_bpe(folder: Path, texts: list[str], vocab_size: int):
    """A tokenizer.json folder like SmolLM2's or Llama-3's (byte-level BPE, <|begin|>/<|end|> as BOS/EOS),
    trained on `texts`; returns the tokenizers.Tokenizer (skips the test without the optional package)."""
    tk = pytest.importorskip("tokenizers", reason="optional package tokenizers (tokenizer.json folders) not installed")
    hf = tk.Tokenizer(tk.models.BPE(unk_token=None))
    hf.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|begin|>", "<|end|>"],
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
    hf.train_from_iterator(texts, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    hf.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<|begin|>", "eos_token": "<|end|>"}))
    return hf


def tiny_checkpoint(folder: Path, texts: list[Path], max_positions: int = 512, kv_heads: int = 4) -> Path:
    """A random 2-block model folder (seed 0) with a 400-piece tokenizer.model trained on `texts`."""
    from tokenizer import Tokenizer
    from checkpoint import save_model
    from model import Llama, LlamaConfig
    tok = Tokenizer.train(texts, folder / "tokenizer.model", vocab_size=400)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=kv_heads,
                      max_position_embeddings=max_positions)
    save_model(Llama(cfg), folder)
    return folder


def in_process(main, argv: list[str], capsys) -> subprocess.CompletedProcess:
    """A script's main(argv) run in this process, its result shaped like subprocess.run's: the exit
    status (main's return value or SystemExit's code, as `sys.exit(main())` makes it) and what it
    printed. Each script's own command line is still run once for real in its tests; the other cases
    of a misuse test go through the same main() here, without paying ~2-3 s of `import torch` each."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    if isinstance(code, str):               # sys.exit("message"): printed on stderr, status 1
        err, code = err + code + "\n", 1
    return subprocess.CompletedProcess(list(argv), 0 if code is None else code, out, err)
