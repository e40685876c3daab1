"""bench.py on a tiny config: every row is there, and the ratios and MFU are computed from the
measured numbers. No timing assertions (the CPU is shared); a smoke test of the benchmark's logic."""
import pytest
import torch

import bench
from model import PRESETS, Llama

TINY = ["--preset", "nano", "--threads", "1", "--batch-size", "2", "--seq-len", "16", "--train-steps", "1",
        "--warmup", "1", "--repeats", "1", "--prompt-len", "4", "--new-tokens", "4", "--eval-questions", "3",
        "--eval-batch", "2", "--eval-new-tokens", "3", "--peak-n", "64"]


@pytest.fixture(scope="module")
def res():
    pytest.importorskip("transformers")
    return bench.run_benchmarks(bench.parse_args(TINY))


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


def test_peak_memory_sees_an_allocation():
    mb = bench.peak_memory(lambda: torch.ones(2**24).sum(), torch.device("cpu"))[1]  # 64 MB of fp32, then freed
    if mb is None:
        pytest.skip("no /proc/self/clear_refs on this OS")
    assert mb >= 60


def test_bad_flags_fail_with_one_line(capsys):
    for argv, msg in ((["--only", "nope"], "--only: unknown benchmark(s) nope"), (["--warmup", "0"], "--warmup must be >= 1"),
                      (["--preset", "huge"], "--preset 'huge'")):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
        assert msg in capsys.readouterr().err
