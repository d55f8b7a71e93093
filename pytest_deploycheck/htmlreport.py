"""``python -m pytest_deploycheck.htmlreport``: the documented command (see report/html.py)."""

from __future__ import annotations

from .report.html import main

if __name__ == "__main__":
    raise SystemExit(main())
