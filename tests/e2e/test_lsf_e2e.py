"""IBM LSF end to end: the real CLI against the scheduler double (tests/fakes) first on PATH."""

from __future__ import annotations

from lsf_family_stories import (  # noqa: F401  the shared stories, collected here and run against KIND
    test_a_submitter_that_died_mid_hand_over_is_reconciled,
    test_dry_run_prints_the_users_scripts,
    test_hosts_lists_each_node,
    test_multi_node_run_launches_per_node,
    test_pending_limit_refusal_reaches_the_user,
    test_seed_001_batches_kill_vanished_and_collect,
)

KIND = "lsf"
