"""Which `options:` keys a job template reads: a template that reads them generically accepts any key (A4), the
templates are the ones render uses (B4), and they are scanned only when there are options, once until they
change (D4)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.core.test_polish_options import JH, LOCAL, SLURM, error_of, write_cluster
from xdimo import config
from xdimo.config import load_cluster, option_keys, template_option_keys
from xdimo.workspace import Workspace

GENERIC = [
    "{% for k, v in options.items() %}#SBATCH --{{ k }}={{ v }}\n{% endfor %}",
    "# {{ options | tojson }}\n",
    "{% set o = options %}{{ o.get('site_knob', '') }}\n",
    "{% for k in options %}{{ k }}{% endfor %}\n",
    "{% for k in options.keys() %}{{ options[k] }}{% endfor %}\n",
    "{{ options.get(name_of_key) }}\n",
]


def workspace_templates(root: Path) -> Path:
    templates = root / "jobs" / "templates"
    shutil.copytree(REPO / "jobs" / "templates", templates)
    return templates


def append(template: Path, text: str) -> None:
    template.write_text(template.read_text() + text)


@pytest.mark.parametrize("use", GENERIC)
def test_a_template_that_reads_options_generically_accepts_any_key(tmp_path: Path, use: str) -> None:
    templates = workspace_templates(tmp_path)
    path = write_cluster(tmp_path, SLURM, site_knob="x", account="proj")
    assert "unknown key 'options.site_knob'" in error_of(path)
    append(templates / "slurm.sh.j2", use)
    assert template_option_keys(templates, "slurm") is None and option_keys("slurm", templates) is None
    assert load_cluster(path).options == {"site_knob": "x", "account": "proj"}


def test_generic_use_in_an_included_template_counts_too(tmp_path: Path) -> None:
    templates = workspace_templates(tmp_path)
    append(templates / "_per_node_launch.sh.j2", "{{ options | tojson }}\n")  # included by jh.sh.j2
    assert load_cluster(write_cluster(tmp_path, JH, anything="x")).options == {"anything": "x"}
    assert "unknown key 'options.anything'" in error_of(write_cluster(tmp_path / "s", SLURM, anything="x"))


def test_named_keys_tests_and_the_word_in_shell_text_still_check(tmp_path: Path) -> None:
    """`"k" in options` and `options is defined` name no generic read; "options" in a shell comment, a Jinja
    comment or a string literal is no read at all."""
    templates = workspace_templates(tmp_path)
    append(templates / "slurm.sh.j2", '# site options: see {{ "options | tojson" }}{# options.items() #}\n'
                                      '{% if "site_knob" in options and options is defined %}x{% endif %}\n')
    assert {"site_knob", "account"} <= set(option_keys("slurm", templates) or ())
    assert load_cluster(write_cluster(tmp_path, SLURM, site_knob="x")).options == {"site_knob": "x"}
    assert "unknown key 'options.typo'" in error_of(write_cluster(tmp_path, SLURM, typo="x"))


def test_the_check_uses_the_templates_render_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cluster file away from the workspace's jobs/templates (as the packaged ones are) is checked against the
    workspace's templates, which render uses, not against those beside the file."""
    root = tmp_path / "ws"
    (root / "clusters").mkdir(parents=True)
    append(workspace_templates(root) / "jh.sh.j2", '{{ options.get("site_knob", "") }}\n')
    elsewhere = write_cluster(tmp_path / "elsewhere", JH, site_knob="x")
    assert "unknown key 'options.site_knob'" in error_of(elsewhere)  # path only: the packaged templates
    ws = Workspace.open(str(root))
    monkeypatch.setattr(Workspace, "cluster_path", lambda self, name: elsewhere)
    assert ws.load_cluster("jh").options == {"site_knob": "x"}
    assert load_cluster(elsewhere, templates=ws.templates_dir).options == {"site_knob": "x"}


def test_no_options_reads_no_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("templates scanned for a cluster without options")

    monkeypatch.setattr(config, "template_option_keys", refuse)
    assert load_cluster(write_cluster(tmp_path, LOCAL)).options == {}
    assert load_cluster(write_cluster(tmp_path / "s", SLURM)).options == {}


def test_the_scan_is_cached_until_a_template_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    templates = workspace_templates(tmp_path)
    scans: list[str] = []
    scan = config._scan_templates
    monkeypatch.setattr(config, "_scan_templates", lambda folder, kind: scans.append(kind) or scan(folder, kind))
    path = write_cluster(tmp_path, JH, launcher_args="--bind-to none")
    for _ in range(3):
        load_cluster(path)  # as status --watch does on every poll
    assert scans == ["jh"]
    included = templates / "_per_node_launch.sh.j2"
    append(included, '{{ options.get("site_knob", "") }}\n')
    os.utime(included, ns=(0, 10**18))  # a new mtime, even where the clock's step is coarse
    assert load_cluster(write_cluster(tmp_path, JH, site_knob="x")).options == {"site_knob": "x"}
    assert scans == ["jh", "jh"]


def test_a_template_that_does_not_parse_may_read_any_key(tmp_path: Path) -> None:
    """Audit 4, finding 5: a template with a syntax error is no proof that a key goes unread. The cluster file
    loads (status and kill render nothing), and rendering reports the template's own error with its line."""
    templates = workspace_templates(tmp_path)
    append(templates / "slurm.sh.j2", '#SBATCH --comment={{ options["project"] }\n')
    assert template_option_keys(templates, "slurm") is None
    assert load_cluster(write_cluster(tmp_path, SLURM, project="vidgen")).options == {"project": "vidgen"}
