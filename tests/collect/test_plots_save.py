"""Saving plots: a failed save leaves no temporary file; an unwritable --plots folder is one error line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_a_plot_that_fails_to_save_leaves_no_temporary_file(tmp_path) -> None:
    from xdimo.collect.write import plots

    class Failing:
        def savefig(self, path, **kwargs) -> None:
            Path(path).write_bytes(b"\x89PNG half")
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        plots._save(Failing(), tmp_path / "speedup.png")
    assert list(tmp_path.iterdir()) == []



def test_an_unwritable_plots_folder_is_one_error_line(workspace: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    logs = Path(__file__).parent / "fixtures"
    out = run_cli(workspace, "collect", "--logs", str(logs), "--plots", str(blocker / "plots"))
    assert out.returncode != 0 and out.stderr.startswith("error: --plots") and len(out.stderr.splitlines()) == 1
