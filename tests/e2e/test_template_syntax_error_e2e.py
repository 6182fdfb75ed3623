"""Audit 4, finding 5: a syntax error in the workspace's job template (a site line `#JSUB -P {{ options["project"] }`
that lost a brace, with `options: {project: vidgen}` in the cluster file) is reported as the template's own error,
with its file and line, when a script is rendered; it is never "unknown key 'options.project'" in the cluster file,
and `status` and `kill`, which render nothing, keep working for the runs already sent."""

from __future__ import annotations

import re

import harness
import yaml


def add_project_option(site: harness.FakeSite, line: str) -> int:
    """The site's edit: a project line in the scheduler's template and its value in the cluster file. Returns the
    template line number of the added line."""
    template = site.ws / "jobs" / "templates" / f"{site.kind}.sh.j2"
    lines = template.read_text().splitlines(keepends=True)
    at = next(i for i, text in enumerate(lines) if text.startswith(f"#{'JSUB' if site.kind == 'jh' else 'BSUB'} "))
    lines.insert(at, line + "\n")
    template.write_text("".join(lines))
    path = site.ws / "clusters" / f"{site.cluster}.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("options", {})["project"] = "vidgen"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return at + 1


def test_a_broken_template_is_named_at_render_and_status_and_kill_still_work(site: harness.FakeSite) -> None:
    directive = "#JSUB" if site.kind == "jh" else "#BSUB"
    line = add_project_option(site, f'{directive} -P {{{{ options["project"] }}}}')
    one = {"defaults": {"model": "Latte-S/2", "pool": "gpu_6000ada", "data": "synthetic", "steps": 10},
           "matrix": {"gpus": [1]}}
    site.write_matrix("brk", one)
    site.write_matrix("more", one)
    site.hold()
    sent = site.cli_json("submit", "jobs/brk.yaml", "--batch", "first")["submitted"]
    job = sent[0]["job_id"]
    assert f"{directive} -P vidgen" in (site.state / "jobs" / f"{job}.sh").read_text()  # the edit works

    template = site.ws / "jobs" / "templates" / f"{site.kind}.sh.j2"
    template.write_text(template.read_text().replace('options["project"] }}', 'options["project"] }'))

    dry = site.cli("submit", "jobs/more.yaml", "--dry-run", check=False)
    assert dry.returncode != 0 and "Traceback" not in dry.stderr
    assert "unknown key" not in dry.stderr
    assert re.search(rf"{re.escape(str(template))}:{line}: template error: unexpected '}}'", dry.stderr), dry.stderr

    status = site.cli("status")
    assert "unknown key" not in status.stderr and "RUNNING" in status.stdout
    site.cli("kill", job, "--now")
    harness.wait_for(lambda: site.finished(job), "the killed job to end")
    assert site.runs()[sent[0]["run_id"]]["state"] == "KILLED"
