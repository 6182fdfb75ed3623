"""derive: one run as data (records.py) and the pure figures on it: steady state, throughput and MFU, wall time,
hardware labels, baselines with speedup and efficiency. Imports no other layer of collect."""
