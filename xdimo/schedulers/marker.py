"""The exit marker every job script writes as its last act, and the one rule that turns an exit code into a state.

Every template writes ``<log_dir>/job.exit`` twice: blank as the job starts (a fixed-width line of spaces, which
reads as no exit code yet), and the exit code as its last act, over those bytes in place (printf at the same
width, through a descriptor opened at offset 0 after the blank write: no truncation, and the file is found even if
its workspace was moved meanwhile). So the last write needs no new block: a disk or quota that filled
while the job ran cannot lose its exit code (jobs/templates/_reserve_end_records.sh.j2 and
_write_end_records.sh.j2; job.wall likewise). A job that left the scheduler's queue without a better witness (an
LSF/JH summary, Slurm accounting, the local runner's record) is settled from it, by every backend the same way:
the same externally killed job is KILLED on every scheduler, never FAILED on one and KILLED on another.
"""

from __future__ import annotations

import re
from pathlib import Path

from xdimo.rundir import MARKER as MARKER  # re-exported: the name lives with the rest of the run folder's layout
from xdimo.rundir import RunDir
from xdimo.states import JobState

# Exit codes 128+N of the signals a scheduler's kill sequence sends (SIGINT, then SIGTERM): a job that died of
# one of these was stopped on request. SIGKILL (137) is also the OOM killer's and a memory limit's signal, so
# 137 alone is FAILED; with a TERM_OWNER/TERM_ADMIN line (or after our own kill) it is KILLED.
# SIGUSR1 (138) is the warning Slurm's --signal and LSF's job warning action send before a time-limit kill: the
# reference workload checkpoints and exits 138, a stop on the scheduler's request like SIGTERM's.
KILL_EXIT_CODES = frozenset({130, 138, 143})

_MARKER_RE = re.compile(r"\s*(-?\d{1,12})\s*$")  # a bounded number: a 5000-digit "code" is not one


def parse_marker(text: str) -> int | None:
    """The exit code in a marker file's text; None for anything that is not one integer (the blank line a job
    reserves as it starts, too)."""
    m = _MARKER_RE.match(text)
    return int(m.group(1)) if m else None


def read_exit_marker(log_dir: str | Path) -> int | None:
    """The exit code the job script wrote to ``<log_dir>/job.exit``; None when there is none (yet) or it is
    unreadable (a half-written file, binary noise)."""
    try:
        text = RunDir(Path(log_dir)).marker.read_bytes().decode(errors="replace")
    except OSError:
        return None
    return parse_marker(text)


def shell_exit_code(code: int) -> int:
    """The shell's spelling of an exit code (128+N for signal N), which every scheduler shows: Python's
    returncode says -N for a process a signal ended."""
    return 128 - code if code < 0 else code


def state_for_exit(code: int) -> JobState:
    """The state a job that exited with ``code`` ended in: 0 is DONE, a kill's signal (SIGINT/SIGTERM, as the
    shell's 128+N or as Python's negative returncode -N) is KILLED, anything else FAILED."""
    if code == 0:
        return JobState.DONE
    return JobState.KILLED if shell_exit_code(code) in KILL_EXIT_CODES else JobState.FAILED
