"""Ctrl-C while `xdimo-jobs` is still importing its modules is one line and exit 130, as it is later on (an
audit saw a KeyboardInterrupt traceback from `timeout -s INT 0.08 xdimo-jobs status`). The signal is sent
exactly while xdimo.cli is being imported, so the test does not depend on timing."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SIGINT_DURING_IMPORT = """
import builtins, os, signal
import xdimo.entry
real_import = builtins.__import__
def import_(name, *args, **kwargs):
    if name == "xdimo.cli":
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = import_
xdimo.entry.main()
"""


def test_ctrl_c_while_loading_is_one_line_and_130() -> None:
    done = subprocess.run([sys.executable, "-c", SIGINT_DURING_IMPORT, "status"], capture_output=True, text=True,
                          timeout=60, cwd=str(REPO))
    assert done.returncode == 130, done.stderr
    assert done.stderr == "error: interrupted; nothing was done\n"


def test_the_console_script_is_the_entry() -> None:
    assert 'xdimo-jobs = "xdimo.entry:main"' in (REPO / "pyproject.toml").read_text()
