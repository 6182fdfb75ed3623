"""A run's state, as every scheduler's is normalised to it and the ledger records it. A leaf: the ledger, status
and collect speak it without any scheduler, so it does not live in the scheduler interface."""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    SUBMITTING = "SUBMITTING"  # intent recorded in the ledger, scheduler not yet answered
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"  # not a failure (PSUSP/USUSP/SSUSP)
    DONE = "DONE"
    FAILED = "FAILED"
    KILLED = "KILLED"
    UNKNOWN = "UNKNOWN"  # LSF/JH UNKWN: not terminal, ask again later
    LOST = "LOST"  # gone from the queue with no summary or marker to settle it

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def active(self) -> bool:
        """Holds or waits for cards (or may: UNKNOWN, SUBMITTING)."""
        return self in ACTIVE_STATES


TERMINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.KILLED, JobState.LOST})
ACTIVE_STATES = (JobState.SUBMITTING, JobState.PENDING, JobState.RUNNING, JobState.SUSPENDED, JobState.UNKNOWN)
