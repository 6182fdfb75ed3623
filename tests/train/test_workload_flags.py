"""The workload's flags live in one torch-free parser (xdimo.train.flags): `python -m xdimo.train` parses with it
and `xdimo-jobs plan` checks a matrix's train_args against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from xdimo.render import workload_args
from xdimo.spec import WORKLOAD_FIELDS, RunSpec
from xdimo.train import __main__ as entry
from xdimo.train import flags

REPO = Path(__file__).resolve().parents[2]


def test_the_flags_module_loads_no_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, xdimo.train.flags as f; f.workload_flags(); "
                          "print('torch' in sys.modules)"], capture_output=True, text=True, cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_entry_point_parses_with_the_shared_parser():
    ours, shared = entry.parser(), flags.parser()
    assert [a.option_strings for a in ours._actions] == [a.option_strings for a in shared._actions]
    assert ours.description == entry.__doc__.split("\n\n")[0]
    help_text = subprocess.run([sys.executable, "-m", "xdimo.train", "--help"], capture_output=True, text=True,
                               cwd=str(REPO), timeout=60).stdout
    assert help_text.startswith("usage: python -m xdimo.train")
    assert " ".join(entry.__doc__.split("\n\n")[0].split()) in " ".join(help_text.split())
    assert "--wandb-project" in help_text


def test_every_spec_field_render_passes_is_a_workload_flag_and_reads_back():
    known = flags.workload_flags()
    assert set(WORKLOAD_FIELDS) <= set(known) and {"tensorboard", "workers", "run_dir"} <= set(known)
    assert flags.is_switch(known["tensorboard"]) and not flags.is_switch(known["workers"])
    spec = RunSpec(matrix="m", pool="p", model="Latte-L/2", moe="4E2A", parallel="fsdp", local_batch=3, steps=7,
                   precision="tf32", frames=8, image_size=128, log_every=3)
    args, unknown = flags.parser().parse_known_args(workload_args(spec, Path("/logs/x"))[2:])
    assert unknown == []
    assert {k: getattr(args, k) for k in WORKLOAD_FIELDS} == {k: getattr(spec, k) for k in WORKLOAD_FIELDS}
