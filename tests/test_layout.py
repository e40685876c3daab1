"""The layout the README promises: the core (the lesson) imports no harness module, and every top-level
file is in one of the README's two tables. Read from the source with ast; nothing is imported or run.

    python -m pytest -q tests/test_layout.py
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = {"model", "lora", "tokenizer", "data", "mixture", "train", "checkpoint", "parallel", "evaluate", "metrics",
        "scaling", "probe", "generate", "plot", "device", "cli", "files"}
HARNESS = {"runs", "world", "lexicon", "download", "convert", "realmodel", "sweep", "reproduce", "report", "claims",
           "noise", "bench"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import, at any depth, except under `if __name__ == "__main__":` (a
    script's command line may be the harness's, as train.py's is)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    main_blocks = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    skip = {id(m) for b in main_blocks for m in ast.walk(b)}
    found = []
    for n in ast.walk(tree):
        if id(n) in skip:
            continue
        if isinstance(n, ast.Import):
            found += [(n.lineno, a.name.split(".")[0]) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
            found.append((n.lineno, n.module.split(".")[0]))
    return found


def test_the_core_imports_no_harness_module():
    bad = [f"{name}.py:{line} imports {mod}" for name in sorted(CORE)
           for line, mod in imports(ROOT / f"{name}.py") if mod in HARNESS]
    assert not bad, bad


def test_every_top_level_file_is_core_or_harness_and_in_the_readme():
    files = {p.stem for p in ROOT.glob("*.py")}
    assert files == CORE | HARNESS, (files - CORE - HARNESS, (CORE | HARNESS) - files)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [f for f in sorted(files) if f"`{f}.py`" not in readme] == []
