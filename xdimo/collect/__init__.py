"""collect: runs' metrics and the user's legacy logs -> the seeds' tables, plots and filled sheets.

One folder per layer: derive/ is the base the others build on, then the data's way, read -> tables -> write, and
fill. A layer imports only those listed before it, save read/sources.py, which names its rows and lays out a
matrix's plan with tables/labels.py and tables/table.py, and tables/lang.py (every text in zh and en; it imports
nothing of xdimo), which any layer may use: a run's notes are made where it is read, in both languages.
- derive/: what is known of one run and the pure figures on it: records.py (RunRecord, the one type every layer
  passes), facts.py (model facts from the registry), steady.py (steady state over the log intervals),
  throughput.py (samples/s, tokens/s, TFLOP/s, MFU), wall_time.py (the job's wall time, GPU-hours),
  hardware_label.py (how the tables name hardware), baselines.py (the run each is compared with: RunSet, speedup,
  efficiency);
- read/: files -> records: parse.py (metrics.jsonl, run.json), legacy.py (the users' XDiMo/Latte log lines; the
  JH/LSF job summary through xdimo.schedulers.lsf_parse, the parser the backends settle jobs with),
  legacy_record.py (what those logs leave out, inferred and noted), gather.py (ties the ledger in), cache.py (keeps
  re-collection fast), sources.py (which rows a collection shows: ledger, a matrix's plan, logs; the CLI's entry);
- tables/: records -> the seeds' tables as text: report.py picks them, one module a family (scaling_table.py:
  table 1, model_table.py: table 2, hardware_table.py: seed 001's summary, cost_table.py: seed 004,
  runs_table.py: one row per run), over labels.py, cells.py, pick.py, table.py; lang.py holds every text in zh
  and en;
- write/: tables -> files: formats.py (markdown, CSV, JSON), plots.py (PNGs; matplotlib imported only there, only
  when plotting), fonts.py (a font for Chinese labels), atomic.py (whole files only);
- fill/: the 待填 cells of the user's own sheet: sheet_fill.py (the fill), over sheet_tables.py and sheet_cells.py
  (the sheet as written), want.py, match.py, values.py, note.py (a row's variant, its run, the text, the notes).
Nothing here imports torch.
"""
