"""train.py: bitwise resume, DDP (2 gloo processes) == 1 process, a smoke run whose loss falls and
whose checkpoint reloads (model.py and transformers), guards, and CLI misuse -> one line + exit 2.

Everything runs on a tiny miniature world and the 'nano' model; the whole file takes well under 2 min.
    python -m pytest -q tests/test_train.py
"""
import json
import os
import socket
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tokenizer import Tokenizer
import device as DV
import checkpoint
import plot
import world as W
import train as T
from model import PRESETS, Llama

TINY_WORLD = dict(alpaca=48, parallel=64, pretrain_chars=30_000, xquad_passages=4, mlqa_passages=2, flores=8)
FAST = dict(arch="nano", batch_size=4, max_len=96, threads=1, progress=False, samples=False, log_every=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny world and a 'nano' base pretrained on it for a few steps: (data dir, base dir, root)."""
    root = tmp_path_factory.mktemp("train")
    data = W.ensure(root / "world", seed=0, **TINY_WORLD)
    base = T.ensure_base(data, root / "base", vocab_size=1024, max_steps=20, **FAST)
    return data, base, root


def cfg(tiny, out, **kw) -> T.TrainConfig:
    data, base, root = tiny
    return T.TrainConfig(**{**FAST, "recipe": "coit", "lang": "de", "data": str(data), "base": str(base),
                            "out": str(root / out), "lr": 2e-3, **kw})


def weights(folder) -> dict:
    return load_file(str(Path(folder) / "model.safetensors"))


def test_the_base_is_pretrained_on_text_then_on_reading(tiny):
    """ensure_base: the text into OUT-text, then the read phase from it (30 % ask-document blocks)
    into OUT; `train.py --recipe pretrain --base DIR` is that second phase."""
    data, base, root = tiny
    text, read = (json.loads((Path(d) / "train_config.json").read_text()) for d in (root / "base-text", base))
    assert text["replay"] is None and text["max_steps"] == read["max_steps"] == 20
    assert read["base"] == str(root / "base-text") and read["replay"] == T.BASE_READ["replay"]
    assert read["lr"] == T.BASE_READ["lr"] != text["lr"]
    assert (root / "base-text" / "tokenizer.model").read_bytes() == (Path(base) / "tokenizer.model").read_bytes()
    assert not torch.equal(weights(root / "base-text")["model.embed_tokens.weight"],
                           weights(base)["model.embed_tokens.weight"])
    cli = T.config_from_args(["--recipe", "pretrain", "--base", str(root / "base-text"), "--data", str(data),
                              "--out", str(base), *sum(([f"--{k.replace('_', '-')}", str(v)] for k, v in
                                                        dict(FAST, vocab_size=1024, max_steps=20).items()
                                                        if not isinstance(v, bool)), []),
                              "--no-progress", "--no-samples"])
    assert cli == T.base_phases(data, base, vocab_size=1024, max_steps=20, **FAST)[1]
    assert T.ensure_base(data, base, vocab_size=1024, max_steps=20, **FAST) == base   # reused as it is


def test_get_lr_warmup_then_cosine():
    lrs = [T.get_lr(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))          # rising during warmup
    assert lrs[10] == pytest.approx(1.0)                              # peak right after warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))           # then never rising
    assert T.get_lr(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)     # ends at lr * min_ratio


@pytest.mark.parametrize("lora", [False, True])  # LoRA: dropout draws from the restored RNG states
def test_resume_is_bitwise_identical(tiny, lora):
    kw = dict(max_steps=6, grad_accum=2, save_every=100, lora=lora, lora_dropout=0.1)
    straight = T.run(cfg(tiny, f"straight{lora}", **kw))
    c = cfg(tiny, f"killed{lora}", **kw)
    T.run(T.TrainConfig(**{**c.__dict__, "stop_after": 3}))
    assert checkpoint.run_status(Path(c.out)) == "unfinished"
    with pytest.raises(T.UsageError, match="--resume"):       # an unfinished run is not silently restarted
        T.run(c)
    with pytest.raises(T.UsageError, match="--lr"):           # resuming with other hyper-parameters
        T.run(T.TrainConfig(**{**c.__dict__, "resume": True, "lr": 1e-3}))
    with open(Path(c.out) / "metrics.jsonl", "a") as f:        # a step logged after the last save, then killed
        f.write(json.dumps({"step": 4, "loss": 0.0}) + "\n")
    resumed = T.run(T.TrainConfig(**{**c.__dict__, "resume": True}))
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(l)["step"] for l in (Path(resumed) / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def _ddp_worker(rank: int, world: int, port: int, c: T.TrainConfig):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    T.run(c)


def _runs_worker(rank: int, world: int, runs: list[tuple[int, T.TrainConfig, str | None]]):
    """Several torchrun-like runs one after the other in the same 2 processes (each its own process
    group and port), and after each the run's status as rank 0 saw it: one spawn instead of one per
    run, each of which costs two fresh interpreters importing torch and train.py."""
    for port, c, status in runs:
        _ddp_worker(rank, world, port, c)
        if status is not None and rank == 0:
            got = checkpoint.run_status(Path(c.out))
            assert got == status, (c.out, got)


def _spawn(*configs: tuple[T.TrainConfig, str | None], world: int = 2):
    """Run each (config, the run status expected after it) under `world` gloo processes, in order."""
    socks = [socket.socket() for _ in configs]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        runs = [(s.getsockname()[1], c, status) for s, (c, status) in zip(socks, configs)]
    finally:
        for s in socks:
            s.close()
    torch.multiprocessing.spawn(_runs_worker, args=(world, runs), nprocs=world, join=True)


def test_ddp_two_gloo_processes_equal_one_process(tiny):
    # the same global micro-batches (4 examples, 2 accumulation steps): one process takes all 4,
    # each of two processes takes 2; shards hold different numbers of target tokens, so this also
    # checks the loss is normalised by the target tokens of the whole accumulated batch.
    # Adam turns tiny summation-order differences in near-zero gradients into updates of ~lr x 1e-3,
    # hence the small lr; the logged gradient norms (before clipping) check the gradient scale itself.
    kw = dict(max_steps=3, grad_accum=2, dtype="fp32", lr=1e-4)
    single = T.run(cfg(tiny, "single", **kw))
    c = cfg(tiny, "ddp", **{**kw, "batch_size": 2, "threads": 1})
    _spawn((c, None))
    a, b = weights(single), weights(c.out)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    norms = [[json.loads(l)["grad_norm"] for l in (Path(o) / "metrics.jsonl").read_text().splitlines()]
             for o in (single, c.out)]
    assert norms[0] == pytest.approx(norms[1], rel=1e-3)
    assert json.loads((Path(c.out) / "train_config.json").read_text())["world_size"] == 2


def test_smoke_loss_falls_and_checkpoint_reloads(tiny, capsys):
    out = T.run(cfg(tiny, "smoke", max_steps=30, lr=3e-3, samples=True))
    said = capsys.readouterr().out       # the end-of-run report, closed-book check against the base included
    assert "sample translation en->de" in said and "closed-book (de; the fact is stated only in English" in said
    assert "held-out closed-book QA in de" in said and "the base" in said
    losses = [json.loads(l)["loss"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.model", "train_config.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "train_config.json").read_text())["status"] == "finished"
    ours = checkpoint.load_model(out)
    idx = torch.tensor([[1] + Tokenizer.from_folder(out).encode("Translate the following sentences")])
    logits, _ = ours(idx)
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        ref = hf(idx).logits
    assert (logits - ref).abs().max().item() < 1e-4
    with pytest.raises(T.UsageError, match="--overwrite"):    # a finished run is never overwritten
        T.run(cfg(tiny, "smoke", max_steps=30))
    assert T.run(cfg(tiny, "smoke", max_steps=30, lr=3e-3, reuse=True)) == out
    with pytest.raises(T.UsageError, match="other settings"):  # reuse only the same run
        T.run(cfg(tiny, "smoke", max_steps=30, reuse=True))


def test_non_finite_loss_stops_and_keeps_last_good_state(tiny, monkeypatch):
    forward, calls = Llama.forward, [0]

    def poisoned(self, *a, **k):
        logits, loss = forward(self, *a, **k)
        calls[0] += 1
        return logits, loss * float("nan") if calls[0] == 5 else loss

    monkeypatch.setattr(Llama, "forward", poisoned)
    c = cfg(tiny, "nan", max_steps=8, save_every=2)
    with pytest.raises(T.NonFiniteLoss, match="step 4"):
        T.run(c)
    state = torch.load(Path(c.out) / "resume" / "state.pt", weights_only=False)
    assert state["step"] == 4 and checkpoint.run_status(Path(c.out)) == "unfinished"


@pytest.mark.parametrize("argv, needle", [
    (["--lang", "xx"], "--lang"),
    (["--recipe", "muit", "--langs", "de,qq"], "--langs"),
    (["--no-such-flag"], "unrecognized"),
    (["--max-steps", "many"], "--max-steps"),
    (["--base", "/nonexistent/llama"], "--base"),
    (["--data", "{empty}", "--base", "{base}"], "alpaca_en.json"),
    (["--data", "{nopar}", "--base", "{base}"], "parallel"),
    (["--recipe", "pretrain", "--data", "{data}", "--base", "{notok}"], "no tokenizer.model"),
])
def test_bad_flags_and_inputs_one_line_exit_2(tiny, argv, needle, capsys, tmp_path):
    data, base, _ = tiny
    (tmp_path / "empty").mkdir()
    nopar = tmp_path / "nopar" / "alpaca"
    nopar.mkdir(parents=True)
    for f in ("alpaca_en.json", "alpaca_de.json"):
        (nopar / f).write_text((Path(data) / "alpaca" / f).read_text())
    (tmp_path / "notok").mkdir()  # a base to continue pretraining from, without its tokenizer
    (tmp_path / "notok" / "config.json").write_text((Path(base) / "config.json").read_text())
    argv = [a.format(empty=tmp_path / "empty", base=base, nopar=nopar.parent, data=data, notok=tmp_path / "notok")
            for a in argv]
    with pytest.raises(SystemExit) as e:
        raise SystemExit(T.main(argv + ["--out", str(tmp_path / "out")]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_fsdp_two_gloo_processes_equal_one_process_and_resume(tiny):
    # FSDP2 (fully_shard) on the CPU with gloo: each block's weights sharded over 2 processes must train
    # like one process holding everything; a killed FSDP run resumes to the same weights.
    kw = dict(max_steps=4, grad_accum=2, dtype="fp32", lr=1e-4, threads=1)
    single = T.run(cfg(tiny, "fsdp-single", **kw))
    c = cfg(tiny, "fsdp", **{**kw, "batch_size": 2, "fsdp": True})
    killed = cfg(tiny, "fsdp-killed", **{**kw, "batch_size": 2, "fsdp": True})
    _spawn((c, None), (T.TrainConfig(**{**killed.__dict__, "stop_after": 2}), "unfinished"),
           (T.TrainConfig(**{**killed.__dict__, "resume": True}), None))
    a, b = weights(single), weights(c.out)
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    r = weights(killed.out)
    for k in b:
        assert torch.equal(b[k], r[k]), k


def test_out_of_memory_names_the_flags_that_help(tiny, monkeypatch, capsys):
    def oom(self, *a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(Llama, "forward", oom)
    c = cfg(tiny, "oom", max_steps=2)
    assert T.main(["--data", c.data, "--base", c.base, "--out", c.out, "--max-steps", "2", "--threads", "1",
                   "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of memory" in err[0] and "--batch-size" in err[0] and "--grad-ckpt" in err[0]


def test_fp16_grad_scaler_path_on_cpu(tiny, monkeypatch):
    # fp16 is refused on the CPU for real runs (CUDA only); forcing the decision exercises the GradScaler
    # path anyway: loss scaling, unscale before clipping, and the scaler's state in resume/state.pt
    decide = DV.decide
    monkeypatch.setattr(T.DV, "decide", lambda *a, **k: DV.Runtime(**{**decide("cpu", "fp32", 1).__dict__,
                                                                      "dtype": "fp16"}))
    c = cfg(tiny, "fp16", max_steps=4, stop_after=3)
    T.run(c)
    state = torch.load(Path(c.out) / "resume" / "state.pt", weights_only=False)
    assert state["scaler"] is not None and state["scaler"]["scale"] > 0
    out = T.run(T.TrainConfig(**{**c.__dict__, "resume": True}))
    losses = [json.loads(l)["loss"] for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and all(l == l and l < 20 for l in losses)


@pytest.mark.parametrize("argv, needle", [
    (["--max-steps", "-3"], "--max-steps"), (["--max-steps", "0"], "--max-steps"),
    (["--n-alpaca", "-1"], "--n-alpaca"), (["--n-translation", "-5"], "--n-translation"),
    (["--recipe", "muit", "--langs", "de,zh", "--budget", "-10"], "--budget"),
    (["--epochs", "0"], "--epochs"), (["--lr", "-1"], "--lr"), (["--beta2", "2"], "--beta2"),
    (["--lora", "--lora-r", "0"], "--lora-r"), (["--threads", "-1"], "--threads"),
    (["--warmup-ratio", "1.5"], "--warmup-ratio"), (["--device", "tpu"], "--device"),
    (["--dtype", "fp8"], "--dtype"), (["--fsdp", "--lora"], "--fsdp"),
    (["--recipe", "pretrain", "--arch", "bogus"], "--arch"),
])
def test_bad_numbers_one_line_exit_2(tiny, argv, needle, capsys, tmp_path):
    data, base, _ = tiny
    code = T.main(argv + ["--data", str(data), "--base", str(base), "--base-out", str(tmp_path / "b"),
                          "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists() and not (tmp_path / "b").exists()  # rejected before anything is written


def test_help_renders():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(Path(T.__file__)), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "about a third" in r.stdout and "option_strings" not in r.stdout


def _finished(tiny, name):
    c = cfg(tiny, name, max_steps=2)
    return c, T.run(c)


def test_overwrite_validates_before_deleting(tiny, tmp_path, capsys):
    data, base, _ = tiny
    c, out = _finished(tiny, "keep")
    before = (out / "model.safetensors").read_bytes()
    bad = tmp_path / "bad"
    (bad / "alpaca").mkdir(parents=True)
    (bad / "parallel").mkdir()
    (bad / "alpaca" / "alpaca_en.json").write_text("[{\"instruction\": 3")   # cut JSON
    (bad / "alpaca" / "alpaca_de.json").write_text("[]")
    (bad / "parallel" / "en-de").mkdir()
    code = T.main(["--data", str(bad), "--base", str(base), "--out", str(out), "--overwrite", "--threads", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "alpaca_en.json" in err[0], err
    assert (out / "model.safetensors").read_bytes() == before and checkpoint.run_status(out) == "finished"


def test_bad_out_and_run_files(tiny, tmp_path, capsys):
    data, base, _ = tiny
    common = ["--data", str(data), "--base", str(base), "--threads", "1", "--max-steps", "1", "--no-progress"]
    (tmp_path / "file").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "train_config.json").write_text("{\"status\": ")
    (tmp_path / "cut" / "resume").mkdir(parents=True)
    (tmp_path / "cut" / "train_config.json").write_text("{\"status\": \"running\"}")
    (tmp_path / "cut" / "resume" / "state.pt").write_bytes(b"PK\x03\x04 cut short")
    for out, extra, needle in (("file", [], "is a file"), ("other", [], "something other"),
                               ("other", ["--overwrite"], "something other"),
                               ("corrupt", [], "train_config.json"), ("cut", ["--resume"], "state.pt")):
        code = T.main(common + ["--out", str(tmp_path / out)] + extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0], (out, err)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_bad_base_checkpoints(tiny, tmp_path, capsys):
    import shutil
    data, base, _ = tiny
    cases = {}
    for name in ("shapes", "truncated", "vocab", "notint"):
        shutil.copytree(base, tmp_path / name)
        cases[name] = tmp_path / name
    conf = json.loads((Path(base) / "config.json").read_text())
    (cases["shapes"] / "config.json").write_text(json.dumps({**conf, "intermediate_size": 999}))
    blob = (cases["truncated"] / "model.safetensors").read_bytes()
    (cases["truncated"] / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    (cases["vocab"] / "config.json").write_text(json.dumps({**conf, "vocab_size": 500}))
    (cases["notint"] / "config.json").write_text(json.dumps({**conf, "hidden_size": "wide"}))
    needles = {"shapes": "shape mismatch", "truncated": "model.safetensors", "vocab": "tokenizer pieces",
               "notint": "hidden_size"}
    for name, folder in cases.items():
        code = T.main(["--data", str(data), "--base", str(folder), "--out", str(tmp_path / f"out-{name}"),
                       "--threads", "1", "--max-steps", "1"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needles[name] in err[0], (name, err)


def test_ctrl_c_is_one_line_and_resumable(tiny, monkeypatch, capsys):
    forward, calls = Llama.forward, [0]

    def interrupted(self, *a, **k):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return forward(self, *a, **k)

    monkeypatch.setattr(Llama, "forward", interrupted)
    c = cfg(tiny, "ctrlc", max_steps=5, save_every=2)
    argv = ["--data", c.data, "--base", c.base, "--out", c.out, "--max-steps", "5", "--save-every", "2",
            "--threads", "1", "--no-progress", "--no-samples", "--lr", "2e-3", "--batch-size", "4", "--max-len", "96"]
    assert T.main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted at step 3" in err[0] and "--resume" in err[0], err
    monkeypatch.setattr(Llama, "forward", forward)
    assert T.main(argv + ["--resume"]) == 0 and checkpoint.run_status(Path(c.out)) == "finished"


def test_failed_export_keeps_the_run(tiny, monkeypatch, capsys):
    def disk_full(model, path, *a, **k):
        (Path(path) / "model.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    save = checkpoint.save_model
    monkeypatch.setattr(checkpoint, "save_model", disk_full)
    c = cfg(tiny, "diskfull", max_steps=3)
    argv = ["--data", c.data, "--base", c.base, "--out", c.out, "--max-steps", "3", "--threads", "1",
            "--no-progress", "--no-samples", "--lr", "2e-3", "--batch-size", "4", "--max-len", "96"]
    assert T.main(argv) == 1
    assert "No space left" in capsys.readouterr().err
    out = Path(c.out)
    assert checkpoint.run_status(out) == "unfinished" and not list(out.glob(".export.tmp*"))
    assert torch.load(out / "resume" / "state.pt", weights_only=False)["step"] == 3
    monkeypatch.setattr(checkpoint, "save_model", save)
    assert T.main(argv + ["--resume"]) == 0 and checkpoint.run_status(out) == "finished"
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3]  # logged once (every 10 steps and at the last), not twice
    summary = json.loads((out / "train_config.json").read_text())["summary"]
    assert summary["steps"] == 3


def test_metrics_rows_carry_the_loss_per_source(tiny):
    out = T.run(cfg(tiny, "sources", max_steps=4, log_every=1))
    rows = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:  # one step per row: its loss is a token-weighted mean of the sources' losses
        assert set(r["source_loss"]) <= {"alpaca/en", "alpaca/de", "translation/de", "replay/en"} and r["source_loss"]
        assert min(r["source_loss"].values()) - 1e-4 <= r["loss"] <= max(r["source_loss"].values()) + 1e-4
    assert (out / "loss.png").is_file() or (out / "loss.txt").is_file()


def test_source_losses_is_the_mean_target_loss_of_each_source():
    torch.manual_seed(0)
    model = Llama(PRESETS["nano"])
    gen = torch.Generator().manual_seed(1)
    encoded = []
    for i in range(21):
        ids = torch.randint(3, 300, (5 + i % 7,), generator=gen).tolist()
        labels = [-100] * 3 + ids[3:]                                  # the prompt is not a target
        encoded.append({"input_ids": ids, "labels": labels, "source": "alpaca" if i % 3 else "translation",
                        "lang": "zh"})
    got = plot.source_losses(model, encoded, pad_id=0, n=5, bs=2)
    for key in ("alpaca/zh", "translation/zh"):
        exs = [e for e in encoded if f"{e['source']}/{e['lang']}" == key][:5]  # the first n of each source
        tot = cnt = 0
        for e in exs:                                                  # one example at a time, no padding
            _, loss = model(torch.tensor([e["input_ids"][:-1]]), torch.tensor([e["labels"][1:]]), reduction="sum")
            tot, cnt = tot + loss.item(), cnt + sum(t != -100 for t in e["labels"][1:])
        assert got[key] == pytest.approx(tot / cnt, rel=1e-5)
    assert list(got) == ["alpaca/zh", "translation/zh"]
