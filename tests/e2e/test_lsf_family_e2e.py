"""The end-to-end stories every LSF-family backend must pass: the real CLI against the scheduler double
(tests/fakes) first on PATH, once per flavour (the ``site`` fixture in conftest.py)."""

from __future__ import annotations

import harness


def test_seed_001_batches_kill_vanished_and_collect(site: harness.FakeSite) -> None:
    harness.story_seed_001(site)


def test_pending_limit_refusal_reaches_the_user(site: harness.FakeSite) -> None:
    harness.story_pending_refusal(site)


def test_dry_run_prints_the_users_scripts(site: harness.FakeSite) -> None:
    harness.story_dry_run(site)


def test_multi_node_run_launches_per_node(site: harness.FakeSite) -> None:
    harness.story_multi_node(site)


def test_a_submitter_that_died_mid_hand_over_is_reconciled(site: harness.FakeSite) -> None:
    harness.story_reconcile_submitting(site)


def test_hosts_lists_each_node(site: harness.FakeSite) -> None:
    harness.story_hosts_nodes(site)


def test_a_down_host_shrinks_the_batch(site: harness.FakeSite) -> None:
    harness.story_host_down(site)


def test_runs_marked_lost_by_a_flaky_answer_come_back(site: harness.FakeSite) -> None:
    harness.story_lost_comes_back(site)
