"""Every value that reaches a job script's shell comes out of bash as it went in (xdimo/render.py).

Generated specs carry quotes, ``$()``, backticks, newlines and unicode in their data, train_args and env values,
and the workspace path holds them too. The local script is run for real by bash with the cluster's python a stub
that records its argv, environment and directory, so "quoted" means what bash makes of it, not what a regex sees;
the JH and Slurm scripts of the same specs must pass ``bash -n``, and a label (not identity) never changes a script.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import make_workspace
from xdimo.config import Cluster, Pool
from xdimo.render import render_script
from xdimo.spec import RunSpec
from xdimo.workspace import Workspace

FAST = settings(max_examples=15, deadline=None)
NASTY = ["'", '"', "$(exit 7)", "`false`", "\n", "\\", "$HOME", "${x:-y}", ";", "&&", "|", "*", "#", " ", "\t",
         "é", "数据", "🙂", "!", "~", "%s", "--", "-m"]
# Values a shell word may hold: anything but NUL (no argv or environment can carry one).
VALUE = st.lists(st.one_of(st.sampled_from(NASTY), st.text(st.characters(blacklist_categories=("Cs",),
                                                                         blacklist_characters="\x00"), max_size=4)),
                 min_size=1, max_size=6).map("".join)
# train_args values that are not a switch's words ("" / true / false decide whether a flag takes a value)
ARG_VALUE = VALUE.filter(lambda v: v.strip().lower() not in ("", "true", "false", "none"))
ENV_NAME = st.from_regex(r"XP_[A-Z][A-Z0-9_]{0,6}", fullmatch=True)
# A path component: no "/" and no NUL, and not "." or ".."
DIR_NAME = st.lists(st.sampled_from([c for c in NASTY if c != "\n"] + ["a", "b"]), min_size=1, max_size=5).map(
    "".join).filter(lambda s: s.strip(". ") != "")

STUB = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["XP_RECORD"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}, f)
"""


@st.composite
def specs(draw: st.DrawFn) -> RunSpec:
    names = draw(st.lists(ENV_NAME, max_size=3, unique=True))
    env = tuple(f"export {n}={shlex.quote(draw(VALUE))}" for n in names)
    train_args = tuple((f"xp_arg{i}", draw(ARG_VALUE)) for i in range(draw(st.integers(0, 3))))
    # data "" is left out of the workload's flags (as moe None): a value that reaches the shell is not blank
    return RunSpec(matrix="m", pool="local", data=draw(VALUE.filter(bool)), env=env, train_args=train_args,
                   label=draw(VALUE))


def run_local(spec: RunSpec, dir_name: str) -> tuple[dict, Path]:
    base = Path(tempfile.mkdtemp(prefix="xdimo-props-render-"))
    try:
        root = base / dir_name
        stub = base / "python-stub"
        stub.write_text(STUB.replace("/usr/bin/env python3", sys.executable))
        stub.chmod(0o755)
        ws = Workspace.open(str(make_workspace(root, python=str(stub))))
        script = render_script(spec, ws.load_cluster("local"), ws)
        assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
        record = base / "record.json"
        env = {"PATH": os.environ["PATH"], "XP_RECORD": str(record), "HOME": str(base)}
        done = subprocess.run(["bash", "-c", script], env=env, cwd=str(base), capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(record.read_text()), ws.root
    finally:
        shutil.rmtree(base, ignore_errors=True)


@FAST
@given(specs(), DIR_NAME)
def test_every_value_reaches_the_program_as_written(spec: RunSpec, dir_name: str) -> None:
    got, root = run_local(spec, dir_name)
    argv = got["argv"]
    assert argv[:2] == ["-m", "torch.distributed.run"]
    program = argv[argv.index("xdimo.train") - 1:]
    assert program[program.index("--data") + 1] == spec.data  # one argument, never a second command
    tail = [x for k, v in spec.train_args for x in (f"--{k.replace('_', '-')}", v)]
    assert program[len(program) - len(tail):] == tail
    for line in spec.env:  # the user's export lines run as shell: their quoted values arrive intact
        name, _, quoted = line.removeprefix("export ").partition("=")
        assert got["env"][name] == shlex.split(quoted)[0]
    log_dir = got["env"]["XDIMO_LOG_DIR"]
    assert program[program.index("--run-dir") + 1] == log_dir
    assert Path(log_dir).is_relative_to(root) and Path(got["cwd"]) == root.resolve()
    assert got["env"]["XDIMO_RUN_ID"] == spec.run_id


@FAST
@given(specs(), st.sampled_from(["jh", "lsf", "slurm"]), VALUE)
def test_site_scripts_parse_and_a_label_never_changes_one(spec: RunSpec, scheduler: str, setup_value: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="xdimo-props-render-"))
    try:
        ws = Workspace.open(str(make_workspace(base / "ws")))
        cluster = Cluster(name="site", scheduler=scheduler, cpu_per_gpu=8, python="/opt/py 3/bin/python",
                          pools={"local": Pool("local", "H200", 8, cards_per_node=8)},
                          setup=(f"export XP_SETUP={shlex.quote(setup_value)}",), workdir=str(base / "w d'$(x)"))
        script = render_script(spec, cluster, ws)
        check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
        unlabelled = RunSpec.from_dict({**spec.to_dict(), "label": ""})
        assert render_script(unlabelled, cluster, ws) == script
    finally:
        shutil.rmtree(base, ignore_errors=True)
