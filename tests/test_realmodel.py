"""realmodel.py without a model: flag checks, and the RESULTS.md section built from a synthetic study
(results.json + predictions.jsonl), judged by claims.py's rules, and the whole study wired end to end
on a tiny random GGUF (1 LoRA step, 2 test items). The study on SmolLM2 itself takes ~20 minutes
(`python -m study.realmodel --quick`); test_convert.py runs the scripts on the converted SmolLM2 folder."""
import json
from pathlib import Path

import pytest

from study import realmodel as RM
from study.realmodel import RealConfig


def fake_study(root: Path, right: dict, n=40) -> dict:
    """A finished study in root: every model's XQuAD-zh/en and MLQA-zh answers, right[group] of n correct,
    and right[group] of n held-out Chinese instructions answered in Chinese (the others in English)."""
    runs = {}
    for group, label, recipe, template in RM.MODELS:
        group = group.format(x="zh")
        name = f"{group}-s0" if recipe else group
        model_dir = Path("study") / "models" / name      # as recorded: under config.out
        scores = {}
        for task, lang, direction in RM.tests("zh"):
            if task == "flores":
                continue
            key = f"{task}:{lang}"
            k = right[group] if lang == "zh" else right[group] // 2
            if task == "instruct":
                rows = [{"id": i, "prediction": "北京是中国的首都。" if i < k else "I do not know."} for i in range(n)]
                f = root / "models" / name / "eval" / "instruct-zh" / "predictions.jsonl"
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
                scores[key] = {"lang_rate": 100.0 * k / n}
                continue
            rows = [{"id": i, "question": f"q{i}", "answers": ["北京" if lang == "zh" else "Paris"],
                     "prediction": ("北京" if lang == "zh" else "Paris") if i < k else "不知道"} for i in range(n)]
            f = root / "models" / name / "eval" / key.replace(":", "-") / "predictions.jsonl"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            scores[key] = {"contain": 100.0 * k / n, "chance": 5.0}
        runs[name] = {"group": group, "seed": 0, "langs": ["zh"], "status": "done", "scores": scores,
                      "label": label.format(x="zh"), "model_dir": str(model_dir), "commands": [f"python train.py # {name}"]}
    cfg = {**RealConfig().__dict__, "out": "study"}
    return {"runs": runs, "config": cfg, "machine": {"cpu": "test CPU", "cores": 2}, "wall_s": 60.0,
            "argv": "python -m study.realmodel --quick"}


def test_section_reads_every_model_and_judges_with_noise(tmp_path):
    res = fake_study(tmp_path, {"zeroshot-chat": 4, "zeroshot-alpaca": 2, "alpaca": 6, "xllama-zh": 30})
    text = RM.section(res, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| x-LLaMA-zh |"))
    assert row.split(" | ")[1:4] == ["75.0", "37.5", "75.0"]          # XQuAD-zh, XQuAD-en (its own English), MLQA-zh
    assert "| chance (answer of another question) | 5.0 | 5.0 | 5.0 |" in text
    found = {c.claim: c for c in RM.check_claims(res, tmp_path)}
    qa = found["x-LLaMA-zh answers XQuAD-zh better than Alpaca"]
    assert qa.verdict == "reproduces" and "paired bootstrap over 40 items" in qa.here
    assert found["x-LLaMA keeps Alpaca's English (XQuAD-en)"].verdict != "not measured"
    assert found["x-LLaMA-zh answers zh instructions in zh more often than Alpaca"].verdict == "reproduces"
    assert row.split(" | ")[-1].rstrip(" |") == "75.0"                  # held-out instructions answered in zh


def test_trained_on_names_each_model_once_with_its_seeds():
    run = lambda label, seed, tokens, targets: {"label": label, "seed": seed,  # noqa: E731
                                                "trained": {"tokens": tokens, "targets": targets}}
    runs = {"zeroshot-chat": {"label": "zero-shot (chat)"},
            "alpaca-s0": run("Alpaca-en", 0, 1200, 500), "alpaca-s1": run("Alpaca-en", 1, 1200, 500),
            "xllama-zh-s0": run("x-LLaMA-zh", 0, 1500, 700), "xllama-zh-s1": run("x-LLaMA-zh", 1, 1600, 710)}
    assert RM.trained_on(runs) == ("Alpaca-en 1,200 tokens (500 in responses) per seed; "
                                   "x-LLaMA-zh 1,500 / 1,600 tokens (700 / 710 in responses; seeds 0 / 1)")
    assert RM.trained_on({"alpaca-s0": runs["alpaca-s0"]}) == "Alpaca-en 1,200 tokens (500 in responses)"


def test_a_win_inside_the_noise_is_inconclusive(tmp_path):
    res = fake_study(tmp_path, {"zeroshot-chat": 4, "zeroshot-alpaca": 2, "alpaca": 10, "xllama-zh": 12})
    found = {c.claim: c for c in RM.check_claims(res, tmp_path)}
    assert found["x-LLaMA-zh answers XQuAD-zh better than Alpaca"].verdict == "inconclusive"


def test_write_section_replaces_its_block_and_keeps_the_rest(tmp_path):
    report = tmp_path / "RESULTS.md"
    report.write_text("# Results\n\nmine\n", encoding="utf-8")
    RM.write_section(report, f"{RM.BEGIN}\nfirst\n{RM.END}\n")
    RM.write_section(report, f"{RM.BEGIN}\nsecond\n{RM.END}\n")
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Results\n\nmine\n") and "second" in text and "first" not in text
    assert text.count(RM.BEGIN) == 1


@pytest.mark.parametrize("argv, needle", [(["--seeds", "0"], "--seeds 0"), (["--lang", "en"], "--lang 'en'"),
                                          (["--report", "out.txt"], "--report out.txt"),
                                          (["--qa-limit", "1"], "--qa-limit 1"), (["--lr", "0"], "--lr 0"),
                                          (["--dtype", "fp8"], "--dtype 'fp8'"),
                                          (["--quick", "--steps", "30"], "drop --quick or --steps"),
                                          ([], "results.json: not found; run the study first")])
def test_misuse_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)                                  # the default --report, RESULTS.md, is not the repository's
    assert RM.main([*argv, "--out", str(tmp_path / "s"), "--report-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not (tmp_path / "s").exists()


def test_report_only_refuses_an_unfinished_study(tmp_path, capsys):
    res = fake_study(tmp_path, {"zeroshot-chat": 4, "zeroshot-alpaca": 2, "alpaca": 6, "xllama-zh": 30})
    res["runs"]["xllama-zh-s0"]["status"] = "running"
    (tmp_path / "results.json").write_text(json.dumps(res), encoding="utf-8")
    report = tmp_path / "R.md"
    assert RM.main(["--out", str(tmp_path), "--report-only", "--report", str(report)]) == 2
    assert "not finished (xllama-zh-s0)" in capsys.readouterr().err and not report.exists()


def test_the_study_runs_end_to_end_on_a_tiny_gguf(tmp_path, shared_data, capsys):
    """Every step of realmodel.py (convert, zero-shot x2, two LoRA recipes x 2 seeds, 6 tests each, the section) on a
    random 2-layer model with a byte tokenizer: the wiring, not the numbers. Then a second run of the
    same command does nothing and --report-only rewrites the same section."""
    pytest.importorskip("gguf", reason="test-only package gguf (pip install gguf) not installed")
    pytest.importorskip("tokenizers", reason="optional package tokenizers (tokenizer.json folders) not installed")
    from test_convert import write_tiny_gguf
    write_tiny_gguf(tmp_path / "tiny.gguf", context=4096)
    report = tmp_path / "R.md"
    argv = ["--gguf", str(tmp_path / "tiny.gguf"), "--model", str(tmp_path / "tiny"), "--data", str(shared_data),
            "--out", str(tmp_path / "study"), "--report", str(report), "--steps", "1", "--batch-size", "1",
            "--max-len", "1024", "--qa-limit", "2", "--flores-limit", "2", "--threads", "1", "--dtype", "fp32"]
    assert RM.main(argv) == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "study" / "results.json").read_text(encoding="utf-8"))
    assert [r["status"] for r in res["runs"].values()] == ["done"] * 6                # 2 zero-shot, 2 seeds x 2 recipes
    for name in ("alpaca-s0", "alpaca-s1", "xllama-zh-s0", "xllama-zh-s1"):
        assert res["runs"][name]["trained"]["tokens"] > res["runs"][name]["trained"]["targets"] > 0
        assert (tmp_path / "study" / "models" / name / "adapter" / "adapter_model.safetensors").is_file()
    assert set(res["runs"]["xllama-zh-s0"]["scores"]) == {"xquad:zh", "xquad:en", "mlqa:zh", "flores:zh:en-X",
                                                          "flores:zh:X-en", "instruct:zh"}
    text = report.read_text(encoding="utf-8")
    assert text.count("| x-LLaMA-zh |") == 1 and "the first 2 questions" in text and "**" in text
    assert "2 seed(s)" in text and "seeds 2 vs 2" in text                             # the seed spread is in the noise
    assert RM.main(argv) == 0 and report.read_text(encoding="utf-8") == text      # finished: nothing rerun
    assert RM.main(argv + ["--report-only"]) == 0 and report.read_text(encoding="utf-8") == text


def test_a_section_from_another_study_is_replaced_only_with_overwrite(tmp_path, capsys):
    res = fake_study(tmp_path, {"zeroshot-chat": 4, "zeroshot-alpaca": 2, "alpaca": 6, "xllama-zh": 30})
    (tmp_path / "results.json").write_text(json.dumps(res), encoding="utf-8")
    report = tmp_path / "R.md"
    argv = ["--out", str(tmp_path), "--report-only", "--report", str(report)]
    assert RM.main(argv) == 0 and RM.written_from(report) == str(tmp_path / "results.json")
    assert RM.main(argv) == 0                                             # its own section: rewritten
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps(res), encoding="utf-8")
    before = report.read_text(encoding="utf-8")
    assert RM.main(["--out", str(other), "--report-only", "--report", str(report)]) == 2
    err = capsys.readouterr().err.strip()
    assert "pass --overwrite" in err and str(tmp_path / "results.json") in err and len(err.splitlines()) == 1
    assert report.read_text(encoding="utf-8") == before
    assert RM.main(["--out", str(other), "--report-only", "--report", str(report), "--overwrite"]) == 0
    assert RM.written_from(report) == str(other / "results.json")


def test_quick_writes_its_section_beside_its_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = RM.check(RealConfig(quick=True, report_only=True))
    assert (cfg.out, cfg.report) == ("runs/real-quick", str(Path("runs/real-quick/RESULTS.md")))
    assert RM.check(RealConfig(report_only=True)).report == "RESULTS.md"
