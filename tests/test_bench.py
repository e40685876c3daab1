"""bench.py on a tiny config: every row is there, and the ratios and MFU are computed from the
measured numbers; the bf16 rows follow device.py's measurement (monkeypatched both ways); bad flags
fail with one line; --main-job's table and JSON from a faked train.py. No timing assertions (the CPU
is shared): a test of the benchmark's logic."""
import json
import sys
from pathlib import Path

import pytest
import torch

from study import bench
import cli
import device
from checkpoint import load_model, save_model
from model import PRESETS, Llama

TINY = ["--preset", "nano", "--threads", "1", "--batch-size", "2", "--seq-len", "16", "--train-steps", "1",
        "--warmup", "1", "--repeats", "1", "--prompt-len", "4", "--new-tokens", "4", "--eval-questions", "3",
        "--eval-batch", "2", "--eval-new-tokens", "3", "--peak-n", "64"]


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # device.decide sets the process's threads; the suite runs on conftest's one


def fake_matmul(bf16_gflops: float, fp32_gflops: float = 100.0):
    """A device.matmul_flops stand-in: fp32 scales with threads, bf16 at the given rate per thread."""
    def measure(dtype, threads, shape, rows=128):
        return (bf16_gflops if dtype is torch.bfloat16 else fp32_gflops) * 1e9 * threads
    return measure


@pytest.fixture(scope="module")
def res():
    pytest.importorskip("transformers")
    return bench.run_benchmarks(bench.parse_args(TINY + ["--bf16"]))  # every row, emulated bf16 or not


def test_every_row_and_derived_number(res, capsys):
    rows = res["results"]
    assert list(rows) == list(bench.BENCHES)
    for name, r in rows.items():
        assert r["ours"] > 0 and r["transformers"] > 0
        assert r["ratio"] == pytest.approx(r["ours"] / r["transformers"])
        assert r["unit"] == bench.BENCHES[name][0]
        assert all(r[f"mem_{k}_mb"] is None or r[f"mem_{k}_mb"] >= 0 for k in ("ours", "transformers"))
    flops = Llama(PRESETS["nano"]).flops_per_token(16)
    for dt in ("fp32", "bf16"):
        r = rows[f"train-{dt}"]
        for k in ("ours", "transformers"):
            assert r[f"mfu_{k}"] == pytest.approx(r[k] * flops / (res["peak_tflops"][dt] * 1e12))
    assert rows["generate-fp32"]["agree"] == (4, 4)            # fp32 greedy tokens equal transformers'
    assert rows["eval"]["agree"][1] == 3 and "mfu_ours" not in rows["eval"]
    for fam in ("train", "generate"):
        for k in ("ours", "transformers"):
            assert res["bf16_over_fp32"][fam][k] == pytest.approx(rows[f"{fam}-bf16"][k] / rows[f"{fam}-fp32"][k])
    bench.print_table(res)
    table = capsys.readouterr().out
    assert all(f"| {name} |" in table for name in bench.BENCHES) and "train: bf16 / fp32 speed" in table


def test_the_machine_is_recorded(res):
    assert res["cpu"] == device.cpu_name() and res["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(res["cpu_flags"]) == set(bench.CPU_FLAGS) and res["threads"] == 1
    assert res["device_why"].startswith("device cpu (") and "1 thread(s) (--threads)" in res["device_why"]
    assert res["bf16"]["rows"] is True
    json.dumps(res)  # --out writes it


def test_peak_memory_sees_an_allocation():
    mb = bench.peak_memory(lambda: torch.ones(2**24).sum(), torch.device("cpu"))[1]  # 64 MB of fp32, then freed
    if mb is None:
        pytest.skip("no /proc/self/clear_refs on this OS")
    assert mb >= 60


@pytest.mark.parametrize("bf16_gflops, flag, emulated, rows, line", [
    (1.0, [], True, False, "bf16 rows skipped (--bf16 times them)"),     # AVX2-only CPU: skipped by default
    (1.0, ["--bf16"], True, True, "timing the bf16 rows anyway (--bf16)"),
    (300.0, [], False, True, None),                                      # AMX/AVX-512 BF16: run by default
    (300.0, ["--no-bf16"], False, False, "bf16 rows skipped (--no-bf16)"),
])
def test_bf16_rows_follow_the_measurement(monkeypatch, capsys, bf16_gflops, flag, emulated, rows, line):
    monkeypatch.setattr(device, "matmul_flops", fake_matmul(bf16_gflops))
    cfg = bench.parse_args(TINY + ["--no-reference", "--only", "train-fp32,train-bf16"] + flag)
    res = bench.run_benchmarks(cfg)
    out = capsys.readouterr().out
    assert res["bf16"] == {"emulated": emulated, "bf16_gflops": bf16_gflops, "fp32_gflops": 100.0, "rows": rows}
    assert list(res["results"]) == (["train-fp32", "train-bf16"] if rows else ["train-fp32"])
    assert (res["peak_tflops"]["bf16"] is None) is not rows and ("train" in res["bf16_over_fp32"]) is rows
    assert out.startswith(f"device.decide: {res['device_why']}\nCPU {device.cpu_name()} (torch CPU capability ")
    assert ("bf16 is emulated on this CPU (matmul 1.0 GFLOP/s vs fp32 100.0)" in out) is emulated
    assert line is None or line in out


def test_threads_zero_is_measured_by_device_decide(monkeypatch):
    monkeypatch.setattr(device, "matmul_flops", fake_matmul(300.0))  # all cores 'faster' than one
    monkeypatch.setattr(device, "available_cores", lambda: 2)
    rt, seen = bench.decide(bench.parse_args(["--preset", "nano"]), (64, 128))
    assert bench.BenchConfig.threads == 0 and rt.threads == 2 == torch.get_num_threads()
    assert "2 thread(s): fp32 matmul 100.0 GFLOP/s on 1, 200.0 on 2" in rt.why
    assert seen == {torch.float32: 200e9, torch.bfloat16: 600e9}    # at the chosen thread count


@pytest.mark.parametrize("argv, msg", [
    (["--threads", "-2"], "--threads -2: expected a value in [0, inf)"),
    (["--repeats", "0"], "--repeats 0: expected a value in [1, inf)"),
    (["--train-steps", "-1"], "--train-steps -1: expected a value in [1, inf)"),
    (["--warmup", "0"], "--warmup 0: expected a value in [1, inf)"),
    (["--threads", "two"], "--threads: invalid int value"), (["--device", "gpu"], "--device 'gpu'"),
    (["--only", "nope"], "--only: unknown benchmark(s) nope"), (["--preset", "huge"], "--preset 'huge'"),
    (["--main-job-args", "--max-steps 5"], "--main-job-args: only used with --main-job"),
    (["--model", "/nonexistent"], "--model /nonexistent: no config.json there"),
    (["--out", "/"], "--out / is a folder"),
])
def test_bad_flags_fail_with_one_line(capsys, argv, msg):
    try:
        code = bench.main(argv)
    except SystemExit as e:  # argparse's own errors (a wrong type)
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"{bench.PROG}: error: ") and msg in err


def test_lora_rows_on_a_model_folder(tmp_path):
    """--model loads a folder on both sides; --lora trains the same adapters with lora.py and peft."""
    pytest.importorskip("peft", reason="test-only package peft not installed")
    torch.manual_seed(0)
    save_model(Llama(PRESETS["nano"]), tmp_path / "m")
    cfg = bench.parse_args(TINY + ["--model", str(tmp_path / "m"), "--lora", "--only", "train-fp32"])
    ours = load_model(tmp_path / "m")
    trainable = lambda m: {n.removeprefix("base_model.model.").replace(".default", ""): p.shape
                           for n, p in m.named_parameters() if p.requires_grad}
    ref = bench.reference_model(ours, torch.device("cpu"), cfg.model)
    assert trainable(bench.with_lora(ours, True)) == trainable(bench.with_lora(ref, False))
    assert len(trainable(bench.with_lora(ours, True))) == 4 * PRESETS["nano"].num_hidden_layers   # q, v: A and B
    assert all(p.requires_grad for p in ours.parameters())    # with_lora froze its copy, not the model
    r = bench.run_benchmarks(cfg)["results"]
    assert list(r) == ["train-fp32"] and r["train-fp32"]["ours"] > 0 and r["train-fp32"]["transformers"] > 0


def test_a_device_this_machine_lacks_is_one_line(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is here")
    assert bench.main(["--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{bench.PROG}: error: --device cuda: no CUDA GPU")


def test_main_job_table_and_json(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_train(cmd, cwd):  # what train.py leaves behind: a finished train_config.json per phase
        calls.append((cmd, cwd, sorted(cwd.iterdir())))
        for run, steps, wall, tps in (("runs/base", 120, 4.0, 12345.6), ("runs/x-llama-de", 5, 1.0, 500.0)):
            (cwd / run).mkdir(parents=True)
            (cwd / run / "train_config.json").write_text(json.dumps(
                {"status": "finished", "summary": {"steps": steps, "wall_s": wall, "tokens_per_s": tps, "mfu": 0.1}}))
        return ("train: pretrain  -> runs/base | device cpu (Fake CPU, AVX2), 1 thread(s); fp32\n"
                "train: 900 examples, 10 micro-batches/epoch\ntrain: coit de -> runs/x-llama-de | device cpu, fp32\n")
    monkeypatch.setattr(bench, "run_train", fake_train)
    out = tmp_path / "job.json"
    assert bench.main(["--main-job", "--main-job-args", "--max-steps 5 --no-samples", "--out", str(out)]) == 0
    (cmd, cwd, present), = calls
    assert cmd == [sys.executable, str(Path(bench.__file__).resolve().with_name("train.py")),
                   "--lang", "de", "--max-steps", "5", "--no-samples"]
    assert present == [] and not cwd.exists()  # an empty temp folder, removed afterwards
    res = json.loads(out.read_text())
    assert res["command"] == "python train.py --lang de --max-steps 5 --no-samples"
    assert res["phases"] == {"base pretraining": {"run": "runs/base", "steps": 120, "wall_s": 4.0, "tokens_per_s": 12345.6},
                             "CoIT": {"run": "runs/x-llama-de", "steps": 5, "wall_s": 1.0, "tokens_per_s": 500.0}}
    assert res["rest_s"] == pytest.approx(res["wall_s"] - 5.0, abs=0.11)  # faked phases: the rest may be < 0
    assert res["device_lines"] == ["train: pretrain  -> runs/base | device cpu (Fake CPU, AVX2), 1 thread(s); fp32",
                                   "train: coit de -> runs/x-llama-de | device cpu, fp32"]
    assert res["cpu"] == device.cpu_name() and res["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert set(res["cpu_flags"]) == {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert res["cores"] == device.available_cores() and res["torch"] == torch.__version__
    table = capsys.readouterr().out
    for row in ("| base pretraining (runs/base) | 120 | 4.0 | 12,346 |", "| CoIT (runs/x-llama-de) | 5 | 1.0 | 500 |",
                "| the rest: world, tokenizer, data, export, samples | |", f"| total | | {res['wall_s']:.1f} | |",
                f"CPU {device.cpu_name()} (torch CPU capability", "train: coit de -> runs/x-llama-de | device cpu"):
        assert row in table


def test_main_job_without_a_finished_phase_says_so(monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_train", lambda cmd, cwd: "")  # e.g. --stop-after: nothing finished
    assert bench.main(["--main-job", "--main-job-args", "--stop-after 2"]) == 1   # a failure, not misuse
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train.py left no finished runs/base/train_config.json" in err


def test_run_train_echoes_and_returns_stdout_and_fails_with_one_line(tmp_path, capsys):
    out = bench.run_train([sys.executable, "-c", "import os; print('train: a'); print(os.getcwd())"], tmp_path)
    assert out == f"train: a\n{tmp_path}\n" == capsys.readouterr().out  # run in cwd, echoed as it came
    with pytest.raises(cli.Failed, match="train.py exited with status 3"):
        bench.run_train([sys.executable, "-c", "raise SystemExit(3)"], tmp_path)
