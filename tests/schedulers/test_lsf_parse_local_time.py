"""JH's and LSF's summary times are the cluster's local time without a zone: read in this machine's zone (xdimo runs
on the cluster's login node), with its DST, as Slurm's times are (slurm_parse.slurm_time), never as UTC."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from xdimo.ledger import WALL_SCHEDULER, settled_wall
from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.lsf_family import settle_from_logs
from xdimo.schedulers.slurm_parse import slurm_time

# POSIX TZ rules (no tzdata needed): Europe/Berlin and America/New_York, whose clocks jump 02:00 -> 03:00 on the
# last Sunday of March (2025-03-30) and the second Sunday of March (2025-03-09).
BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"
NEW_YORK = "EST5EDT,M3.2.0,M11.1.0"
HOME_ZONE = time.tzname  # this process's zone before any test here ran


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set this process's local zone; the zone before the test is back after it."""
    def use(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


def jh_summary(started: str, reported: str) -> str:
    """A JH summary as jsub's -o file ends with it (tests/schedulers/fixtures/jh_summary_done.txt)."""
    return ("Sender: Unischeduler System <user@login01>\n"
            "Subject: Job 10061: </public/home/u/.jhjobs/1751286766.10061.1.shell> Done\n"
            "Job was executed on host(s) <64*gpu13>, in queue <gpu_6000ada>, as user <u>.\n"
            f"Started at {started}\nResults reported at {reported}\nSuccessfully completed.\n"
            "\t\tCPU time:       4149.23 sec.\n\t\tMax Memory:     57 GB\n")


def lsf_summary(started: str, terminated: str) -> str:
    """An LSF summary (tests/schedulers/fixtures/lsf_summary_killed.txt)."""
    return ("Sender: LSF System <lsfadmin@hostB>\nSubject: Job 1131: <myjob> in cluster <cluster1> Exited\n\n"
            "Job was executed on host(s) <4*hostB>, in queue <normal>, as user <user1> in cluster <cluster1>\n"
            f"Started at {started}\nTerminated at {terminated}\nResults reported at {terminated}\n\n"
            "TERM_OWNER: job killed by owner.\nExited with exit code 130.\n")


def test_a_jh_wall_time_across_berlins_dst_change_is_its_real_length(zone) -> None:
    zone(BERLIN)
    s = P.parse_summary(jh_summary("2025-03-30 01:30:00", "2025-03-30 03:30:00"))
    assert s is not None and s.wall_s == 3600  # 01:30 CET to 03:30 CEST: one hour (UTC reading: two)


def test_an_lsf_wall_time_across_new_yorks_dst_change_is_its_real_length(zone) -> None:
    zone(NEW_YORK)
    s = P.parse_summary(lsf_summary("Sun Mar  9 01:30:00 2025", "Sun Mar  9 03:30:00 2025"))
    assert s is not None and s.wall_s == 3600


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK, "CST-8"])
def test_a_timestamp_is_local_time_as_mktime_and_slurm_read_it(zone, tz: str) -> None:
    zone(tz)
    want = time.mktime(time.strptime("2025-06-30 20:32:46", "%Y-%m-%d %H:%M:%S"))
    s = P.parse_summary(jh_summary("2025-06-30 20:32:46", "2025-06-30 20:40:49"))
    assert s is not None and s.started_at == want == slurm_time("2025-06-30T20:32:46")
    assert s.wall_s == 483
    lsf = P.parse_summary(lsf_summary("Mon Jun 30 20:32:46 2025", "Mon Jun 30 20:40:49 2025"))
    assert lsf is not None and lsf.started_at == want


def test_a_zone_the_line_names_is_kept(zone) -> None:
    zone(BERLIN)
    utc = P.parse_summary(lsf_summary("Mon Oct 22 09:22:05 UTC 2023", "Mon Oct 22 09:25:10 UTC 2023"))
    assert utc is not None and utc.started_at == calendar.timegm((2023, 10, 22, 9, 22, 5, 0, 0, 0))
    # 02:30 comes twice on 2025-10-26 in Berlin: CEST first, then CET an hour later
    summer = P.parse_summary(lsf_summary("Sun Oct 26 02:30:00 CEST 2025", "Sun Oct 26 02:30:00 CET 2025"))
    assert summer is not None and summer.wall_s == 3600


def test_the_ledgers_wall_of_a_settled_jh_job_across_dst(zone, tmp_path: Path) -> None:
    """lsf_family settles the job from its summary; the ledger's wall is the span the scheduler gave."""
    zone(BERLIN)
    (tmp_path / "10061.output").write_text("step 100 loss 0.12\n" + jh_summary("2025-03-30 01:30:00",
                                                                              "2025-03-30 03:30:00"))
    status = settle_from_logs(tmp_path, "10061", None, gone=True)
    assert settled_wall(str(tmp_path), status) == (3600, WALL_SCHEDULER)


def test_the_zone_is_back_after_a_test() -> None:
    """Runs after the tests above (file order): none of them left its zone behind."""
    assert time.tzname == HOME_ZONE
