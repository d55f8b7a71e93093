"""JUnit XML for CI test reports: each test case keeps its file and line.

pytest's default ``junit_family`` (xunit2) drops the ``file`` and ``line`` attributes of a test
case; GitLab's test report (``artifacts:reports:junit``) reads them to show where a failed check
is written. pytest filters the attributes through its table of what each family allows, so a run
that writes JUnit allows those two in xunit2 as well, until the run ends.
"""

from __future__ import annotations

import pytest


def keep_file_and_line(config: pytest.Config) -> None:
    if not getattr(config.option, "xmlpath", None):
        return
    from _pytest import junitxml  # pytest's own plugin: its table of allowed attributes

    allowed = junitxml.families["xunit2"]["testcase"]
    added = [name for name in ("file", "line") if name not in allowed]
    allowed.extend(added)

    def restore() -> None:
        for name in added:
            allowed.remove(name)

    config.add_cleanup(restore)
