"""The CLI must feel instant: no verb that does not train imports torch (python -X importtime tells)."""

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("args", [["--help"], ["plan", "demo"], ["hosts"], ["status"], ["models"],
                                  ["submit", "demo", "--dry-run"], ["collect", "--help"]])
def test_verb_imports_no_torch(workspace, args):
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "xdimo.cli", "--workdir", str(workspace), *args],
                         capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported and "matplotlib" not in imported
