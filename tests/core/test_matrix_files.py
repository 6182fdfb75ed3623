"""Matrix files: a bare name outside a workspace is the packaged one; `command` is one program and its arguments."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from xdimo.errors import ConfigError
from xdimo.matrix import comment_start, load_matrix
from xdimo.workspace import PACKAGE_DATA, Workspace


def test_a_bare_matrix_name_falls_back_to_the_packaged_jobs(tmp_path) -> None:
    ws = Workspace.open(str(tmp_path))
    assert ws.matrix_path("demo") == PACKAGE_DATA / "jobs" / "demo.yaml"
    assert ws.matrix_path("demo").exists()
    assert ws.matrix_path("jobs/demo.yaml") == Path("jobs/demo.yaml")  # an explicit path never falls back
    assert ws.matrix_path("sub/demo") == tmp_path / "jobs" / "sub/demo.yaml"
    (tmp_path / "jobs").mkdir()  # the workspace has its own jobs/: a missing name is missing, not packaged
    assert ws.matrix_path("demo") == tmp_path / "jobs" / "demo.yaml"



def test_plan_demo_works_in_an_empty_folder(tmp_path) -> None:
    proc = run_cli(tmp_path, "--json", "plan", "demo")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)



def command_matrix(tmp_path: Path, command: str) -> Path:
    path = tmp_path / "cmd.yaml"
    path.write_text(yaml.safe_dump({"name": "cmd", "defaults": {"pool": "local"}, "runs": [{"command": command}]}))
    return path



@pytest.mark.parametrize("command", ["echo hi; sleep 3; echo bye", "train.py && echo ok", "train.py | tee x",
                                     "train.py &", "train.py > out.txt", "train.py < in.txt",
                                     "train.py --at `date`", "train.py --at $(date)", "train.py\necho ok",
                                     "train.py --name 'unclosed", "train.py --lr 1e-4 # the fast one",
                                     "train.py 'a b' #note"])
def test_shell_syntax_in_command_is_refused_at_load(tmp_path, command) -> None:
    path = command_matrix(tmp_path, command)
    with pytest.raises(ConfigError) as caught:
        load_matrix(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "key 'runs[0].command'" in message and "program torchrun starts" in message



@pytest.mark.parametrize("command", ["train.py --config configs/ffs/x.yaml", "sleeper.py 600",
                                     "$HOME/train.py --lr 1e-4 --name 'a b'", "train.py --tag=a#b --note '#x' \\#y"])
def test_a_program_and_its_arguments_load(tmp_path, command) -> None:
    assert load_matrix(command_matrix(tmp_path, command)).runs[0].command == command



def test_the_shipped_matrices_load() -> None:
    for path in sorted((PACKAGE_DATA / "jobs").glob("*.yaml")):
        assert load_matrix(path).runs


@pytest.mark.parametrize("command", ["train.py --lr 1e-4 # fast", "train.py --tag=a#b", "train.py '#x' \\#y #z",
                                     'train.py "a\\" #" #z', "#train.py", "train.py\t#z",
                                     "sleep.py --title=run\\ #1", "train.py $'it\\'s' #x"])
def test_a_comment_is_found_where_bash_finds_it(command: str) -> None:
    """A comment would swallow the train_args flags and the descriptor closings the script puts after the command:
    found as bash finds it (bash itself says which words it keeps)."""
    assert (comment_start(command) is None) == bash_keeps_the_end(command)


def bash_keeps_the_end(command: str) -> bool:
    """Whether a word after ``command`` reaches its program (no comment swallowed it); None: bash refuses it."""
    done = subprocess.run(["bash", "-c", f"printf '%s\\n' {command} END"], capture_output=True, text=True)
    return done.stdout.endswith("END\n")


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=" #\\'\"$a", min_size=1, max_size=8))
def test_comment_start_agrees_with_bash(command: str) -> None:
    """Every line of quotes, escapes, blanks and hashes that bash can parse (a closed quote): the same answer."""
    try:
        shlex.split(command)
    except ValueError:
        return  # an unclosed quote: check_command refuses it before comment_start matters
    if subprocess.run(["bash", "-n", "-c", f"printf '%s\\n' {command} END"], capture_output=True).returncode:
        return
    assert (comment_start(command) is None) == bash_keeps_the_end(command), command
