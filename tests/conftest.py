"""Shared test fixtures: where the real data lives, and one torch thread for the whole suite."""
import builtins
from pathlib import Path

import pytest
import torch

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
