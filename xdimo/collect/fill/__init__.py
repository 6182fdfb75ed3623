"""fill: ``collect --fill SHEET.md``, the measured figures written into the 待填 cells of the user's own sheet
(sheet_fill.py)."""
