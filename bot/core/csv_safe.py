"""CSV cells that a spreadsheet will not run (OWASP "CSV injection").

Excel, LibreOffice and Google Sheets treat a cell starting with `=`, `+`, `-` or `@` as a formula, and a leading
tab or carriage return can hide one; visitor text such as `=HYPERLINK("http://x","y")` would then run on the
supervisor's machine. Such a cell gets a leading single quote, which spreadsheets show as text and which a reader
of the raw file still recognises. Every CSV the project writes passes its cells through `safe_cell`; JSONL is
data for programs and stays as it is.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
"""Written first when asked (`--bom`, `bom=1`): without it Excel reads UTF-8 as the local code page, so Russian
or Chinese text comes out garbled."""


def safe_cell(value: Any) -> Any:
    """A text cell that starts like a formula, quoted so it stays text; anything else unchanged (numbers,
    dates and booleans are no formulas: `-2` as an int is a number, `"-2+3"` as text is neutralised)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
