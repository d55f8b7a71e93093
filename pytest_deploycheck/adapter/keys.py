"""Where the run's state lives in ``config.stash``: light to import, so that a pytest run that
selects no environment and has no suites loads nothing more of the plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..deployrun import DeployRun
    from ..settings import Settings

RUN_KEY: pytest.StashKey[DeployRun] = pytest.StashKey()
# The run's settings, and whether it is idle: no environment selected, no suites folder, no gate
# report asked for (a virtualenv shared with other tests); then the hooks do nothing.
SETTINGS_KEY: pytest.StashKey[Settings] = pytest.StashKey()
IDLE_KEY: pytest.StashKey[bool] = pytest.StashKey()
