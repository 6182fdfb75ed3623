"""The CLI's verbs against the LSF-family scheduler double (tests/fakes), once per flavour (JH, LSF)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
import harness  # noqa: E402


@pytest.fixture(params=["jh", "lsf"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> harness.FakeSite:
    return harness.FakeSite(tmp_path, request.param)
