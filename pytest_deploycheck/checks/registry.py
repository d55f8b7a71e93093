"""The check types, in the order they are asked to take a check (the last takes any left).

Adding a kind of check is adding a module that provides a ``TYPE`` (see
:class:`~.base.CheckType`) and naming it here.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import alerts, browser, checklist, http, metric, sql
from .base import CheckType

CHECK_TYPES: Mapping[str, CheckType] = {
    one.name: one for one in (sql.TYPE, alerts.TYPE, browser.TYPE, metric.TYPE,
                                    checklist.TYPE, http.TYPE)}
