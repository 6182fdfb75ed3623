"""`logs ID` of a run not ended: its state as its scheduler says now (one poll, as `status` polls), not the ledger's
last record of it (a job running for a minute is still PENDING there until something polls)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xdimo.cli.common import App, read_only_line
from xdimo.ledger import Ledger, LedgerRun
from xdimo.poll import Refresh, refresh


@dataclass(frozen=True)
class Fresh:
    """The run as its state was found, and why that state may be stale ("" where its scheduler answered)."""

    run: LedgerRun
    stale: str = ""
    polled: bool = False  # the scheduler was asked just now (a follow that comes next may wait before asking)


def fresh_run(app: App, ledger: Ledger, run: LedgerRun, *, following: bool = False,
              refresh: Callable[..., Refresh] = refresh) -> Fresh:
    """``run`` after one poll of its cluster (poll.refresh: status's code path, with its backend's timeouts). An
    ended run is not polled (its state is final: `logs` of it stays a read of its files). Where the poll fails, or
    its answer could not be recorded (a read-only ledger), the ledger's state with a line saying so; none for a
    read-only ledger when ``following`` (the "not following" warning already says nothing was polled). ``refresh``:
    the real one unless the caller stands in for it (`logs -f` polls with the same)."""
    if not run.state.active:
        return Fresh(run)
    if ledger.read_only:
        return Fresh(run, "" if following else read_only_line(str(ledger.path), ledger.read_only))
    polled = refresh(app.ws, ledger, [run])
    now = ledger.get(run.run_id)
    return Fresh(now, stale_line(now, polled.failures) if polled.failures else "", polled=True)


def stale_line(run: LedgerRun, failures: list[str]) -> str:
    """The poll failed: the state shown is the ledger's last, which may be behind the job."""
    return (f"could not poll {'; '.join(failures)}: the state shown ({run.state.value}) is the ledger's last "
            "known one and may be out of date")
