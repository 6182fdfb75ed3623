"""JH UniScheduler end to end: the real CLI against the scheduler double (tests/fakes) first on PATH."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
import harness  # noqa: E402


@pytest.fixture
def site(tmp_path: Path) -> harness.FakeSite:
    return harness.FakeSite(tmp_path, "jh")


def test_seed_001_batches_kill_vanished_and_collect(site: harness.FakeSite) -> None:
    harness.story_seed_001(site)


def test_pending_limit_refusal_reaches_the_user(site: harness.FakeSite) -> None:
    harness.story_pending_refusal(site)


def test_dry_run_prints_the_users_scripts(site: harness.FakeSite) -> None:
    harness.story_dry_run(site)


def test_multi_node_run_launches_per_node(site: harness.FakeSite) -> None:
    harness.story_multi_node(site)
