"""pytest-deploycheck: deployment runbooks (checklists, health, smoke, metrics) as pytest items."""

from __future__ import annotations

__version__ = "0.1.0"
