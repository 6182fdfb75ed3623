"""The reference training workload: Latte video DiT (dense or MoE), diffusion, data and the training loop.

Importing this package is free: ``registry``, ``flops``, ``flags``, ``speed`` and ``run_config`` are pure Python
(the CLI reads the first three); the modules that build, feed and run the model import torch, and only under
``python -m xdimo.train`` (tests/core/test_no_torch_on_cli_paths.py keeps the CLI's paths free of it).
"""
