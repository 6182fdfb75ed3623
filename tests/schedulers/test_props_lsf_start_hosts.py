"""Properties of lsf_parse's start times and host matching: a start printed without its year reads back as the
latest such moment not after now (a December start read in January is last year's), its full form agrees with
it, and pool_health's down cards stay within the pool and follow which listed hosts are down."""

from __future__ import annotations

import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from xdimo.schedulers import lsf_parse as P
from xdimo.schedulers.base import HostRow

FAST = settings(max_examples=150, deadline=None)
DAY = 86400
NOW = st.integers(int(time.mktime((2000, 1, 1, 0, 0, 0, 0, 0, -1))), int(time.mktime((2090, 1, 1, 0, 0, 0, 0, 0, -1))))
# how long before now the job started (up to 363 days: a year less the day of slack is unambiguous), or up to a
# day after (the slack for the zone)
AGO = st.integers(-DAY + 1, 363 * DAY)
YEARLESS = st.sampled_from(["%b %d %H:%M:%S", "%b %d %H:%M"])
NEW_YEAR = (int(time.mktime((2027, 1, 1, 0, 5, 0, 0, 0, -1))), 3600, "%b %d %H:%M:%S")  # "Dec 31 23:05" on Jan 1
# a start a minute into the new year, read on our clock a minute before it (the zone's slack): this coming year's
NEXT_YEAR = (int(time.mktime((2026, 12, 31, 23, 59, 0, 0, 0, -1))), -120, "%b %d %H:%M:%S")
LEAP_DAY = (int(time.mktime((2025, 1, 10, 12, 0, 0, 0, 0, -1))),  # "Feb 29 10:00" (2024) read in January 2025
            int(time.mktime((2025, 1, 10, 12, 0, 0, 0, 0, -1)) - time.mktime((2024, 2, 29, 10, 0, 0, 0, 0, -1))),
            "%b %d %H:%M")


def check_yearless(now: int, ago: int, fmt: str) -> None:
    start = now - ago
    text = time.strftime(fmt, time.localtime(start))
    got = P.parse_start_time(text, float(now))
    assert got is not None, text
    # the moment the text names in the start's own year: the same clock reading, found again
    assert time.strftime(f"%Y {fmt}", time.localtime(got)) == time.strftime(f"%Y {fmt}", time.localtime(start))
    assert got <= now + DAY


@FAST
@given(NOW, AGO, YEARLESS)
@example(*NEW_YEAR)
@example(*LEAP_DAY)
@example(*NEXT_YEAR)
def test_a_start_without_its_year_reads_back_as_the_latest_such_moment(now: int, ago: int, fmt: str) -> None:
    check_yearless(now, ago, fmt)


@FAST
@given(NOW, AGO)
def test_the_full_forms_agree_with_the_yearless_one(now: int, ago: int) -> None:
    start = now - ago
    if time.localtime(start).tm_year > time.localtime(now).tm_year:
        return  # a start the day's slack puts in now's next year: the full forms say that year, as they should
    yearless = P.parse_start_time(time.strftime("%b %d %H:%M:%S", time.localtime(start)), float(now))
    for fmt in ("%Y-%m-%d %H:%M:%S", "%b %d %H:%M:%S %Y"):
        assert P.parse_start_time(time.strftime(fmt, time.localtime(start)), float(now)) == yearless == start


@FAST
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60), NOW)
@example("-", 0)
@example("  ", 0)
def test_parse_start_time_never_raises_and_not_started_is_none(text: str, now: int) -> None:
    got = P.parse_start_time(text, float(now))
    assert got is None or isinstance(got, float)
    if text.strip() in ("", "-"):
        assert got is None


# --- match_host, pool_health ----------------------------------------------------------------------------

HOST = st.from_regex(r"[a-z]{2,5}-?[0-9]{1,2}", fullmatch=True)
STATUS = st.sampled_from(["ok", "closed_Full", "closed_Excl", "closed_Busy", "closed", "unavail", "unreach",
                          "closed_Adm", "closed_Lock"])


@FAST
@given(HOST, st.sampled_from([str.upper, str.lower, str.title]))
def test_a_host_matches_itself_in_any_case_and_its_prefix_glob(host: str, case) -> None:
    assert P.match_host(case(host), host) and P.match_host(host, case(host))
    assert P.match_host(host, host[:2] + "*") and P.match_host(host, "*")
    assert not P.match_host(host, host + "x")


@st.composite
def host_rows(draw: st.DrawFn) -> list[HostRow]:
    names = draw(st.lists(HOST, max_size=8, unique_by=str.lower))
    rows = []
    for name in names:
        max_slots = draw(st.one_of(st.none(), st.integers(1, 64)))
        rows.append(HostRow(name, draw(STATUS), max_slots, draw(st.one_of(st.none(), st.integers(0, 64)))))
    return rows


@FAST
@given(host_rows(), st.lists(st.one_of(HOST, st.just("*"), HOST.map(lambda h: h[:2] + "*")), max_size=4),
       st.integers(1, 8), st.integers(0, 64), st.dictionaries(HOST, st.integers(0, 12), max_size=4))
def test_pool_health_stays_within_the_pool_and_counts_listed_down_hosts(rows: list[HostRow], patterns: list[str],
                                                                        per_node: int, cards: int,
                                                                        held: dict[str, int]) -> None:
    health = P.pool_health(patterns, per_node, cards, rows, held)
    listed = [r for r in rows if any(P.match_host(r.name, p) for p in patterns)]
    assert health.matched == len(listed)
    assert set(health.unmatched) == {p for p in patterns if not any(P.match_host(r.name, p) for r in rows)}
    assert {r.name for r in health.down} == {r.name for r in listed if P.host_down(r)}
    assert {r.name for r in health.busy} == {r.name for r in listed if P.host_busy(r)}
    assert not {r.name for r in health.down} & {r.name for r in health.busy}
    assert all(r.status.lower() != "ok" for r in health.down)
    assert 0 <= health.down_cards <= min(cards, per_node * len(health.down))
    if not health.down:
        assert health.down_cards == 0
    else:  # with none of the pool's own jobs on them, every down host loses its cards, up to the pool's
        assert P.pool_health(patterns, per_node, cards, rows).down_cards == min(cards, per_node * len(health.down))
    assert "\n" not in health.describe()
