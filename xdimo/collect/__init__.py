"""collect: runs' metrics and the user's legacy logs -> the seeds' tables, plots and filled sheets.

Layers: parse.py / legacy.py read files (pure parse; the JH/LSF job summary through
xdimo.schedulers.lsf_parse, the parser the backends settle jobs with), metrics.py derives figures, report.py
lays out the tables, plots.py draws PNGs (matplotlib imported only there, only when plotting), fill.py
writes into the user's own sheet, cache.py keeps re-collection fast, gather.py ties the ledger in.
Nothing here imports torch.
"""
