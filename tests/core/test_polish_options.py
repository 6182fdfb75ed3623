"""A cluster file's `options:` keys: one nothing reads (a typo such as `launcher_arg`) is an error naming it and
the keys that exist, not a flag silently left out of every job script."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from xdimo.config import load_cluster, option_keys
from xdimo.errors import ConfigError

JH = {"name": "jh", "scheduler": "jh", "cpu_per_gpu": 8, "max_pending": 1,
      "pools": {"gpu_h200": {"gpu": "H200", "cards": 16, "cards_per_node": 8}}}
SLURM = {"name": "slurm", "scheduler": "slurm", "pools": {"gpu": {"gpu": "H200", "cards": 8}}}
LOCAL = {"name": "local", "scheduler": "local", "pools": {"local": {"gpu": "cpu", "cards": 2}}}


def write_cluster(folder: Path, data: dict, **options: object) -> Path:
    (folder / "clusters").mkdir(parents=True, exist_ok=True)
    path = folder / "clusters" / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump({**data, "options": options}))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_cluster(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_misspelled_launcher_args_is_refused_with_the_key_it_meant(tmp_path: Path) -> None:
    message = error_of(write_cluster(tmp_path, JH, launcher_arg="--bind-to none"))
    assert "unknown key 'options.launcher_arg'" in message
    assert "did you mean 'options.launcher_args'?" in message
    assert "launcher_args" in message and "timeout_s" in message  # the keys that exist are listed


def test_the_keys_the_backends_and_templates_read_all_load(tmp_path: Path) -> None:
    jh = {"launcher_args": "--bind-to none", "timeout_s": 30, "retries": 1, "jobs_o_format": False,
          "jobs_gpu_field": "gpu_num", "host_gpu_models": False, "user": "me", "settle_grace_s": 5,
          "launcher": "mpirun"}
    assert load_cluster(write_cluster(tmp_path / "a", JH, **jh)).options == jh
    slurm = {"account": "proj", "qos": "high", "sbatch": ["--exclusive"]}
    assert load_cluster(write_cluster(tmp_path / "b", SLURM, **slurm)).options == slurm
    assert load_cluster(write_cluster(tmp_path / "c", LOCAL)).options == {}


def test_a_key_of_another_scheduler_is_refused_too(tmp_path: Path) -> None:
    """`account` is an #SBATCH line on Slurm; on JH nothing reads it."""
    message = error_of(write_cluster(tmp_path, JH, account="proj"))
    assert "unknown key 'options.account'" in message
    message = error_of(write_cluster(tmp_path / "l", LOCAL, timeout_s=10))
    assert "unknown key 'options.timeout_s'" in message and "read no options" in message


def test_a_key_the_workspaces_own_template_reads_is_accepted(tmp_path: Path) -> None:
    """Users may edit jobs/templates/: a knob their template reads (`options.get("site_knob")`, `options.x`)
    is a known key of that workspace."""
    shutil.copytree(REPO / "jobs" / "templates", tmp_path / "jobs" / "templates")
    path = write_cluster(tmp_path, JH, site_knob="x")
    assert "unknown key 'options.site_knob'" in error_of(path)
    template = tmp_path / "jobs" / "templates" / "_per_node_launch.sh.j2"  # included by jh.sh.j2
    template.write_text(template.read_text() + '{{ options.get("site_knob", "") }}{{ options.other_knob }}\n')
    templates = tmp_path / "jobs" / "templates"
    assert {"site_knob", "other_knob"} <= set(option_keys("jh", templates) or ())
    assert load_cluster(path).options == {"site_knob": "x"}
    assert "site_knob" not in (option_keys("slurm", templates) or ())  # slurm.sh.j2 does not include it


def test_the_cli_says_it_in_one_line(workspace: Path) -> None:
    write_cluster(workspace, {**JH, "name": "typo"}, launcher_arg="--bind-to none")
    result = run_cli(workspace, "--cluster", "typo", "plan", "jobs/hw-4gpu.yaml")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "'options.launcher_arg'" in lines[0] and "launcher_args" in lines[0]


def test_the_shipped_cluster_files_still_load() -> None:
    for path in sorted((REPO / "clusters").glob("*.yaml")):
        load_cluster(path)
