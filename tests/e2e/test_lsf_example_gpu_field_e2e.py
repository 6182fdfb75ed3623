"""Audit 4, finding 4: the LSF example cluster file (the one LSF users copy) counts other users' GPUs from bjobs'
gpu_num field as shipped. Judged as slots / cpu_per_gpu instead (a rule only this site's own jobs follow),
another user's 4-GPU job on 4 slots counted as 1 card in use and `hosts` said 31 of 32 free."""

from __future__ import annotations

from pathlib import Path

import harness
import yaml


def test_the_shipped_lsf_example_counts_other_users_gpus_from_gpu_num(tmp_path: Path) -> None:
    site = harness.FakeSite(tmp_path, "lsf")
    data = yaml.safe_load((harness.REPO / "clusters" / "lsf-example.yaml").read_text())
    data.update(name=site.cluster)
    (site.ws / "clusters" / f"{site.cluster}.yaml").write_text(yaml.safe_dump(data))
    site.configure(queues={"gpu": {"cards": 32}, "gpu_v100": {"cards": 16}},
                   others=[{"queue": "gpu", "user": "alice", "slots": 4, "gpus": 4}])

    pools = {p["pool"]: p for p in site.cli_json("hosts")["pools"]}
    assert (pools["gpu_a100"]["used"], pools["gpu_a100"]["free"]) == (4, 28)
    assert pools["gpu_a100"]["source"] == "bjobs -u all (gpu field)"
    assert any("gpu_num" in c for call in site.calls() if call[0] == "bjobs" for c in call)
