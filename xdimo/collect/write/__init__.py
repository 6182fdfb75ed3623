"""write: tables and runs -> markdown, CSV, JSON and PNG plots, every file written whole (atomic.py)."""
