"""Shared test fixtures: where the real data lives, and a fixed small CPU setup."""
from pathlib import Path

import pytest
import torch

# The real datasets sit beside the checkout (../shared/data); tests that read them skip when absent.
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

torch.set_num_threads(2)


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see README: Data)")
    return SHARED_DATA
