"""The reference training workload: Latte video DiT (dense or MoE), diffusion, data and the training loop.

Importing this package is free: ``registry`` and ``flops`` are pure Python (the CLI reads them); only
``models``, ``moe``, ``diffusion`` and ``loop`` import torch, and only under ``python -m xdimo.train``.
"""
