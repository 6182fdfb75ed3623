#!/usr/bin/env python3
"""Stands in for the cluster's `python` in tests: `<this> -m torch.distributed.run ... -m xdimo.train ...`
sleeps a little, writes a run.json and a metrics.jsonl line like the real workload, and exits.

Knobs (train_args in the matrix reach us as flags): --standin-sleep S, --standin-exit N.
It stops cleanly on SIGTERM, as the real training does after checkpointing.
"""

import json
import os
import signal
import sys
import time


def flag(name, default):
    argv = sys.argv
    return argv[argv.index(name) + 1] if name in argv else default


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_dir = flag("--run-dir", os.environ.get("XDIMO_LOG_DIR", "."))
    os.makedirs(run_dir, exist_ok=True)
    nproc = int(flag("--nproc_per_node", "1").split("=")[-1]) if "--nproc_per_node" in sys.argv else 1
    for a in sys.argv:
        if a.startswith("--nproc_per_node="):
            nproc = int(a.split("=")[1])
    with open(os.path.join(run_dir, "run.json"), "w") as f:
        json.dump({"run_id": os.environ.get("XDIMO_RUN_ID"), "world_size": nproc,
                   "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                   "job_id": os.environ.get("XDIMO_JOB_ID")}, f)
    print("standin started", flush=True)
    time.sleep(float(flag("--standin-sleep", "0.2")))
    with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"step": 10, "elapsed_s": 1.0, "samples_per_s": 2.0 * nproc}) + "\n")
    sys.exit(int(flag("--standin-exit", "0")))


main()
