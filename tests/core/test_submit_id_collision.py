"""Two different runs of one matrix name whose ids collide (8 hex digits of a sha256): the second is an error naming
both settings, never "already in the ledger" (it would never run, and `status` would show the first as it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.core.stubs import Flaky, install
from xdimo.cli import cli
from xdimo.errors import RunIdCollision
from xdimo.matrix import Matrix, load_matrix
from xdimo.submit import submit_once
from xdimo.workspace import Workspace

DEFAULTS = {"pool": "local", "model": "Latte-T/2", "frames": 8, "image_size": 64, "precision": "fp32"}
FIRST = {"steps": 219, "local_batch": 27}  # found by a birthday search over a few 100k specs: they share an id
SECOND = {"steps": 129, "local_batch": 74}


def write(ws: Path, file: str, run: dict, **extra) -> Matrix:
    path = ws / "jobs" / file
    path.write_text(yaml.safe_dump({"name": "m_huge", "defaults": DEFAULTS, "runs": [{**run, **extra}]}))
    return load_matrix(path)


@pytest.fixture
def first_submitted(workspace: Path, monkeypatch) -> tuple[Workspace, Flaky]:
    fake = Flaky()
    install(monkeypatch, fake)
    ws = Workspace.open(str(workspace))
    result = submit_once(ws, ws.load_cluster("local"), write(workspace, "v1.yaml", FIRST))
    assert len(result.submitted) == 1
    return ws, fake


def test_the_two_specs_really_share_an_id(workspace: Path) -> None:
    a, b = write(workspace, "v1.yaml", FIRST).runs[0], write(workspace, "v2.yaml", SECOND).runs[0]
    assert a != b and a.run_id == b.run_id == "m_huge-ec433b3b"


def test_a_colliding_run_is_refused_naming_both_settings(workspace: Path, first_submitted) -> None:
    ws, fake = first_submitted
    with pytest.raises(RunIdCollision) as err:
        submit_once(ws, ws.load_cluster("local"), write(workspace, "v2.yaml", SECOND))
    assert str(err.value) == ("run id m_huge-ec433b3b collides: the ledger's run has local_batch 27, steps 219, "
                              "this one local_batch 74, steps 129; rename the matrix (its runs then get new ids)")
    assert fake.submits == 1  # nothing more was sent
    with pytest.raises(RunIdCollision):  # a dry run says so too, rather than "already in the ledger"
        submit_once(ws, ws.load_cluster("local"), write(workspace, "v2.yaml", SECOND), dry_run=True)


def test_the_same_run_again_is_still_already_in_the_ledger(workspace: Path, first_submitted) -> None:
    ws, fake = first_submitted
    same = write(workspace, "v1b.yaml", FIRST, label="shown otherwise")  # a label is no part of the identity
    result = submit_once(ws, ws.load_cluster("local"), same)
    assert result.already == ["m_huge-ec433b3b"] and fake.submits == 1


def test_the_cli_says_it_in_one_error_line(workspace: Path, first_submitted) -> None:
    write(workspace, "v2.yaml", SECOND)
    result = CliRunner().invoke(cli, ["--workdir", str(workspace), "submit", "v2", "--json"])
    assert isinstance(result.exception, RunIdCollision) and "local_batch 74" in str(result.exception)
    assert "already" not in result.output


def test_a_ledger_row_whose_spec_is_not_under_its_id_is_not_taken_for_a_collision(workspace: Path,
                                                                                    first_submitted) -> None:
    """A row hashed by another scheme (hand-edited, an old version): its spec says nothing of the id."""
    ws, fake = first_submitted
    spec = json.loads(ws.ledger.runs()[0].spec_json)
    spec["steps"] = 7
    ws.ledger.db.execute("UPDATE runs SET spec = ?", (json.dumps(spec),))
    result = submit_once(ws, ws.load_cluster("local"), write(workspace, "v2.yaml", SECOND))
    assert result.already == ["m_huge-ec433b3b"] and fake.submits == 1


def test_plan_live_says_it_too(first_submitted, workspace: Path, monkeypatch) -> None:
    """`plan --live` called the colliding run "already in the ledger" (RUNNING, with the other run's settings)."""
    ws, fake = first_submitted
    write(workspace, "v2.yaml", SECOND)
    monkeypatch.setattr("xdimo.cli.plan.get_scheduler", lambda cluster, root: fake)
    out = CliRunner().invoke(cli, ["--workdir", str(workspace), "plan", "v2", "--live"])
    assert isinstance(out.exception, RunIdCollision) and "local_batch 74" in str(out.exception)
    assert "already" not in out.output


def test_two_rows_of_one_matrix_whose_ids_collide_are_said_to(tmp_path: Path) -> None:
    """Inside one matrix the error said the two rows "resolve to the same setting": they do not."""
    from xdimo.errors import ConfigError

    path = tmp_path / "m_huge.yaml"
    path.write_text(yaml.safe_dump({"name": "m_huge", "defaults": DEFAULTS, "runs": [FIRST, SECOND]}))
    with pytest.raises(ConfigError, match=r"runs\[1\] and runs\[0\] are different runs whose run ids collide"):
        load_matrix(path)
    path.write_text(yaml.safe_dump({"name": "m_huge", "defaults": DEFAULTS, "runs": [FIRST, FIRST]}))
    with pytest.raises(ConfigError, match="is the same run as runs"):  # a true repeat keeps its message
        load_matrix(path)
