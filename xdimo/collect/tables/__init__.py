"""tables: RunRecords -> the seeds' tables, cells as text exactly as the user writes them (report.py picks them)."""
