"""Run a scheduler command with a timeout, retrying with back-off on transient failure only.

The one place every backend (JH, LSF, Slurm) runs its scheduler's tools. API:

    result = run_command(["jjobs", "-u", "all"], timeout=30, retries=2)
    result.returncode, result.stdout, result.stderr, result.output (stdout + stderr), result.attempts

- It never raises on a non-zero exit: the backend's parser decides what the answer means (``bjobs 7``
  answers "Job <7> is not found" with exit 255, which is news, not an error).
- A *transient* answer (``transient(result)`` is true; default :func:`looks_transient`: a non-zero exit with
  no output at all, or a daemon/connection hiccup message) is retried up to ``retries`` times with
  exponential back-off and jitter. A definite refusal (e.g. ``待提交任务数达上限``) is not transient, so it
  is returned at once: resubmitting a refused job could double-submit once the refusal clears.
- A timeout ends the command's tries: the first one raises SchedulerTimeout after ``timeout`` seconds (the
  cluster file's ``timeout_s``, "per scheduler command"). A scheduler that did not answer in that time would
  make every retry wait as long again (a hung `jjobs` took 3 min before its error), and a command that timed
  out may have acted all the same (a loaded controller that took the job and answered late); ``transient``
  never sees a timeout, so it cannot vouch for one. ``retry_timeouts=True`` retries them all the same (no
  caller does). A missing executable raises SchedulerError at once (no retry can fix PATH).
- Submitting is not idempotent: a backend passes ``retries=0``, or ``retry_timeouts=False`` with a
  ``transient`` that only accepts answers where the scheduler certainly did nothing, for the submit command.
- The command runs in its own session: a timeout (or Ctrl-C) kills its whole process group, so a wrapper
  script's children do not outlive it. Nothing kills it when its caller is killed (SIGKILL, a lost ssh): an
  sbatch may then still hand its job over after its caller died. ``with held_by_commands(fd):`` makes the
  commands started inside inherit ``fd`` (the run's submit lock), so the lock stays held for as long as such an
  orphan lives, and reconcile waits for it (see xdimo.submit.run_lock).
- Control characters in the answer (a misbehaving tool's binary noise) are replaced before any parser or
  message sees them; quote answers in messages with ``xdimo.text.excerpt`` (the first line, capped) or
  ``xdimo.text.one_line`` (all of it on one line, capped), and a failed command with :func:`command_error`.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from xdimo.errors import CommandNotRun, SchedulerError, SchedulerTimeout
from xdimo.schedulers.base import JobStatus
from xdimo.text import clean, excerpt, one_line

log = logging.getLogger(__name__)

# Messages that mean "the scheduler daemon could not be reached this time", not "no".
TRANSIENT_PATTERNS = re.compile(
    r"connection (reset|refused|timed out)|timed? ?out|temporarily unavailable|try again"
    r"|cannot connect|can ?not contact|unable to contact|not responding|daemon.*(down|not)"
    r"|LSF is down|failed in an LSF library call|batch system.*(down|busy)|socket|broken pipe"
    r"|resource temporarily|server busy|too many open files",
    re.IGNORECASE,
)
REAP_S = 5.0  # after killing a timed-out group, how long to wait for its pipes to close
# File descriptors the commands run_command starts inherit (held_by_commands); every other one is closed there.
_HELD_FDS: ContextVar[tuple[int, ...]] = ContextVar("xdimo_held_fds", default=())


@contextmanager
def held_by_commands(*fds: int) -> Iterator[None]:
    """The commands run_command starts in this block inherit ``fds`` (open file descriptors, e.g. a held lock):
    a lock taken with flock stays held while any process has its descriptor open, so it outlives a caller that
    is killed while its command still runs (the command is in its own session: nothing kills it then)."""
    token = _HELD_FDS.set(_HELD_FDS.get() + tuple(fds))
    try:
        yield
    finally:
        _HELD_FDS.reset(token)



@dataclass(frozen=True)
class CommandResult:
    """What a command answered (the last attempt's answer when it was retried)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    attempts: int = 1

    @property
    def output(self) -> str:
        """stdout then stderr: schedulers split their messages between the two inconsistently."""
        if self.stdout and self.stderr and not self.stdout.endswith("\n"):
            return self.stdout + "\n" + self.stderr
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def looks_transient(result: CommandResult) -> bool:
    """A failed command with no answer at all, or one whose answer is a connection/daemon hiccup."""
    if result.returncode == 0:
        return False
    text = result.output.strip()
    return not text or bool(TRANSIENT_PATTERNS.search(text))


def retry_delay(attempt: int, base: float = 1.0, cap: float = 30.0,
                rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` (1-based): base * 2^(attempt-1), capped, +-25 % jitter."""
    raw = min(cap, base * 2 ** max(0, attempt - 1))
    r = (rng or random).uniform(0.75, 1.25)
    return raw * r


def run_command(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    transient: Callable[[CommandResult], bool] = looks_transient,
    backoff: float = 1.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retry_timeouts: bool = False,
) -> CommandResult:
    """Run ``argv`` (no shell), feeding ``stdin``; retry transient failures ``retries`` times (a timeout too only
    with ``retry_timeouts``: a hung scheduler hangs again, and a submit may have acted though it timed out)."""
    argv = tuple(str(a) for a in argv)
    attempt = 0
    while True:
        attempt += 1
        result = _run_once(argv, stdin, timeout, env, cwd, attempt)
        if result is not None and not transient(result):
            return result
        if result is None and not retry_timeouts:
            raise SchedulerTimeout(f"`{_show(argv)}` timed out after {timeout:g} s (not retried)")
        if attempt > retries:
            if result is None:
                raise SchedulerTimeout(f"`{_show(argv)}` timed out after {timeout:g} s ({attempt} attempts)")
            return result
        delay = retry_delay(attempt, base=backoff)
        why = "timed out" if result is None else f"exit {result.returncode}: {excerpt(result.output)}"
        log.warning("`%s` %s; retry %d/%d in %.1f s", _show(argv), why, attempt, retries, delay)
        sleep(delay)


def _run_once(argv: tuple[str, ...], stdin: str | None, timeout: float, env: Mapping[str, str] | None,
              cwd: str | None, attempt: int) -> CommandResult | None:
    """One attempt; None on timeout."""
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
                                pass_fds=_HELD_FDS.get())
    except FileNotFoundError:
        raise CommandNotRun(f"command not found: {argv[0]} (is the scheduler's client on PATH?)") from None
    except PermissionError:
        raise CommandNotRun(f"cannot execute {argv[0]} (permission denied)") from None
    try:
        stdout, stderr = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    except BaseException:  # Ctrl-C: the command is in its own session, so the terminal's signal missed it
        _kill_group(proc)
        raise
    return CommandResult(argv, proc.returncode, clean(stdout or ""), clean(stderr or ""), attempt)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill the command and everything it started (its session's process group), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.communicate(timeout=REAP_S)
    except subprocess.TimeoutExpired:  # a grandchild that left the group still holds the pipes: stop waiting
        proc.kill()
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
        proc.wait(timeout=REAP_S)


def command_error(result: CommandResult, limit: int = 300) -> SchedulerError:
    """The error for a scheduler command that failed: the command, its exit status and all it said, on one
    line (its first line alone can hide the reason: ``scancel -v`` talks before it fails)."""
    return SchedulerError(f"`{shown_argv(result.argv)}` failed (exit {result.returncode}): "
                          f"{said(result.output, limit)}")


class NoAnswer(SchedulerError):
    """A poll's answer that names none of the jobs asked about and says nothing of them (a header alone; an
    empty squeue and an empty sacct): no answer, so it settles nothing and starts no "not listed" clock.
    ``settled``: the jobs their own evidence settles all the same (the summary the scheduler appended to the
    job's output file, the job's exit marker), which poll.poll_cluster writes before it reports the failure."""

    def __init__(self, message: str, settled: Mapping[str, JobStatus] | None = None) -> None:
        super().__init__(message)
        self.settled = dict(settled or {})
        self.changes: list[Any] = []  # poll.poll_cluster: what writing ``settled`` changed (poll.Change)


# U+FFFD: what clean() and the decoder put for a control character or a byte that is no text
NOT_TEXT = "\ufffd"
BINARY_SHARE = 0.2  # an answer with more non-text than this is binary: said as such, not quoted


def said(text: str, limit: int = 300) -> str:
    """What a command answered, for a one-line message: its text on one line, capped, each run of bytes that
    are no text shown as ``<N bytes not text>``; an answer that is mostly not text (a binary written to
    stdout) as its size and its first readable words only."""
    flat = one_line(text, 100_000)
    if not flat:
        return "(no output)"
    bad = flat.count(NOT_TEXT)
    if bad >= 8 and bad > BINARY_SHARE * len(flat):
        words = [w for w in re.findall(r"[\w./:-]{3,}", flat.replace(NOT_TEXT, " "))][:6]
        return f"binary output ({len(text)} characters, {bad} not text){': ' + ' '.join(words) if words else ''}"
    marked = re.sub(f"{NOT_TEXT}+", lambda m: f"<{len(m.group(0))} byte{'s' if len(m.group(0)) > 1 else ''} "
                    "not text>", flat)
    return one_line(marked, limit)


def shown_argv(argv: Sequence[str]) -> str:
    """A command as a message quotes it (shell-quoted, one line)."""
    return one_line(shlex.join(argv), 400)


def _show(argv: Sequence[str]) -> str:
    return excerpt(" ".join(argv), 400)
