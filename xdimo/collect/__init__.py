"""collect: runs' metrics and the user's legacy logs -> the seeds' tables, plots and filled sheets.

Layers, in the order data flows:
- read: parse.py (metrics.jsonl, run.json), legacy.py (the users' XDiMo/Latte log lines; the JH/LSF job
  summary through xdimo.schedulers.lsf_parse, the parser the backends settle jobs with) and legacy_record.py
  (what those logs leave out, inferred and noted), gather.py (ties the ledger in), cache.py (keeps re-collection
  fast);
- derive: records.py (one run), facts.py (model facts), metrics.py (steady state, baselines, MFU);
- lay out: report.py picks the tables, one module a family (scaling_table.py: table 1, model_table.py: table 2,
  hardware_table.py: seed 001's summary, cost_table.py: seed 004), over labels.py, cells.py, pick.py, table.py;
  lang.py holds every text in zh and en;
- write: formats.py (markdown, CSV, JSON), plots.py (PNGs; matplotlib imported only there, only when plotting),
  fill.py (the 待填 cells of the user's own sheet), atomic.py (whole files only).
Nothing here imports torch.
"""
