"""The plugin's own hooks. Implement them in a ``conftest.py`` or a plugin; they are called on
the process that decides the gate (the xdist controller under ``-n``), with keyword arguments,
and they only ever gain arguments."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_deploycheck_rollback(config: pytest.Config, env: str,
                                failures: list[dict[str, Any]]) -> Any:
    """Called once per environment after its ``rollback:`` actions all succeeded (or when it
    has none), because a check with ``on_fail: rollback`` failed.

    ``failures`` are the failed checks (``id``, ``name``, ``kind``, ``message``, ``file``,
    ``line``, ...), redacted. Raising marks the rollback as failed (verdict
    ``rollback_failed``); returning normally counts as a successful rollback action. Not called
    under ``--rollback dry-run`` or ``off``.
    """


@pytest.hookspec
def pytest_deploycheck_gate(config: pytest.Config, env: str, verdict: str,
                            report: dict[str, Any]) -> None:
    """Called once per environment at session end with its verdict and its gate report (the
    object ``--gate-report`` writes for it), after rollback and before notify actions' results
    are final. Exceptions are reported and do not change the verdict."""
