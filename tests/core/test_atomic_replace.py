"""xdimo.atomic.replacing: the one write-beside-then-replace that local job records, collect's cache and plots,
and the latent cache share."""

import os

import pytest

from xdimo.atomic import replacing


def test_a_clean_exit_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "job.json"
    path.write_text("old")
    with replacing(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name == f".job.json.{os.getpid()}.tmp"
        tmp.write_text("new")
        assert path.read_text() == "old"  # readers see the old file until the end
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["job.json"]


def test_a_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "job.json"
    path.write_text("old")
    with pytest.raises(OSError, match="No space left"), replacing(path) as tmp:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["job.json"]


def test_keep_suffix_ends_the_temporary_name_in_the_target_s_suffix(tmp_path):
    with replacing(tmp_path / "mfu.png", keep_suffix=True) as tmp:
        assert tmp.name == f".mfu.{os.getpid()}.tmp.png"  # matplotlib picks the format by it
        tmp.write_bytes(b"png")
    assert (tmp_path / "mfu.png").read_bytes() == b"png"
