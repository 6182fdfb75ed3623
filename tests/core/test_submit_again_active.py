"""`submit --again` while a matrix's runs still run: they are left (a run goes again only once it has ended), and
the report says so; before, it said "`--again` resubmits ended ones", suggesting the flag just given."""

from __future__ import annotations

from xdimo.cli.submit import describe
from xdimo.submit import SubmitResult


def result(already: list[str], ended: set[str]) -> SubmitResult:
    out = SubmitResult()
    out.already, out.ended = already, ended
    return out


def test_again_names_the_runs_that_have_not_ended() -> None:
    text = describe(result(["m-1", "m-2", "m-3"], {"m-3"}), "m", dry_run=False, again=True)
    assert "2 run(s) of m have not ended, so --again leaves them" in text and "m-1, m-2" in text
    assert "resubmits ended ones" not in text


def test_without_again_the_flag_is_suggested() -> None:
    text = describe(result(["m-1"], set()), "m", dry_run=False)
    assert "1 run(s) of m are already in the ledger (see `status`; `--again` resubmits ended ones)" in text


def test_again_with_only_ended_runs_left_keeps_the_plain_line() -> None:
    """Ended runs left by --again were sent by this submit already (--batch all): the plain count."""
    text = describe(result(["m-1"], {"m-1"}), "m", dry_run=False, again=True)
    assert "already in the ledger" in text and "have not ended" not in text
