"""Slurm: the GPUs of this user's pending jobs, from one `squeue --me -t PENDING -o "%P|%b|%D"` (the real answer of
Slurm 22.05 for `sbatch -H -p gpu_h200 --gres=gpu:2`: `gpu_h200|gres:gpu:2|1`): jobs another ledger, another cluster
file or the user's own sbatch left pending take those cards before a job sent now (a reviewer had 4 pending under
max_pending 1)."""

from __future__ import annotations

from tests.schedulers import test_slurm_backend as slurm_tests
from tests.schedulers.test_slurm_backend import fixture
from xdimo.schedulers import slurm_parse as sp

backend = slurm_tests.backend  # the scripted-runner fixture: SlurmScheduler over fixture answers


def test_pending_jobs_and_their_gpus_per_partition() -> None:
    jobs, gpus = sp.parse_pending("gpu_h200|gres:gpu:2|1\ngpu_6000ada,gpu_h200|gres/gpu:4|2\ngpu_h200|N/A|1\n\n")
    assert jobs == {"gpu_h200": 3, "gpu_6000ada": 1}
    assert gpus == {"gpu_h200": 10, "gpu_6000ada": 8}  # 2 + 4 x 2 nodes; a job asking for none adds none
    assert sp.parse_pending("gpu_h200\n") == ({"gpu_h200": 1}, {"gpu_h200": 0})  # %P alone, as before


def test_pools_carry_the_pending_gpus(backend) -> None:
    sched, fake = backend(sinfo=(0, fixture("slurm_sinfo_mixed_6used.txt"), ""),
                          squeue=(0, "gpu_6000ada|gres:gpu:2|1\ngpu_6000ada|gres:gpu:1|1\n", ""))
    pools = {p.name: p for p in sched.pools()}
    assert fake.calls[1][0][-1] == sp.PENDING_FORMAT
    assert (pools["gpu_6000ada"].pending_jobs, pools["gpu_6000ada"].pending_gpus) == (2, 3)
    assert pools["gpu_h200"].pending_gpus == 0
