"""`init` into a folder with the user's own files: it keeps them, names them, and its next step is true."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

NOT_A_DEMO = "name: demo\nmatrix:\n  gpus: [1]\n"  # the user's own jobs/demo.yaml: no pool, so it cannot plan


def init(tmp_path: Path, target: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli(tmp_path, "init", str(target), *args)
    return result.returncode, result.stdout, result.stderr


def test_a_kept_file_of_the_users_is_named_and_a_demo_that_cannot_run_is_not_suggested(tmp_path: Path) -> None:
    target = tmp_path / "study"
    (target / "jobs").mkdir(parents=True)
    (target / "jobs" / "demo.yaml").write_text(NOT_A_DEMO)
    code, out, err = init(tmp_path, target)
    assert code == 0, err
    assert "kept your own (differ from the defaults): jobs/demo.yaml" in out
    assert "xdimo-jobs demo` would run your own jobs/demo.yaml, and it fails: " in out and "no 'pool'" in out
    assert "--force` restores the packaged demo" in out
    assert "&& xdimo-jobs demo" not in out  # the hint that would fail is not given
    assert (target / "jobs" / "demo.yaml").read_text() == NOT_A_DEMO  # still kept


def test_a_users_demo_that_plans_is_suggested_as_theirs(tmp_path: Path) -> None:
    target = tmp_path / "study"
    code, _, err = init(tmp_path, target)
    assert code == 0, err
    demo = target / "jobs" / "demo.yaml"
    demo.write_text(demo.read_text().replace("steps: 200", "steps: 100"))
    code, out, _ = init(tmp_path, target)
    assert "kept your own (differ from the defaults): jobs/demo.yaml" in out
    assert "xdimo-jobs demo   (runs your own jobs/demo.yaml)" in out


def test_init_over_its_own_defaults_names_nothing(tmp_path: Path) -> None:
    target = tmp_path / "study"
    init(tmp_path, target)
    code, out, _ = init(tmp_path, target)
    assert code == 0 and "kept your own" not in out and "0 file(s) written" in out
    assert out.rstrip().endswith("xdimo-jobs hosts && xdimo-jobs demo")


def test_json_lists_the_users_files_and_why_the_demo_would_fail(tmp_path: Path) -> None:
    target = tmp_path / "study"
    (target / "clusters").mkdir(parents=True)
    (target / "clusters" / "local.yaml").write_text(
        "name: local\nscheduler: jh\npools: {local: {gpu: H200, cards: 2}}\n")
    code, out, err = init(tmp_path, target, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["kept_own"] == ["clusters/local.yaml"]
    assert "must say `scheduler: local`" in data["demo_problem"]


def test_force_is_advised_only_when_files_were_kept(tmp_path: Path) -> None:
    target = tmp_path / "study"
    _, first, _ = init(tmp_path, target)
    _, again, _ = init(tmp_path, target)
    _, forced, _ = init(tmp_path, target, "--force")
    assert "use --force" not in first and "use --force" not in forced  # it was given
    assert "kept (use --force to overwrite)" in again
