"""xdimo-jobs: plan, submit, track and harvest GPU training studies on LSF-style clusters.

The package never imports torch at import time: only ``xdimo.train`` (run under torchrun) does.
"""

__version__ = "0.1.0"
