"""What PyPI gets: the sdist and the wheel built as a release builds them, their metadata, and
an sdist that runs its own tests."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    return out


def test_metadata_names_the_license_urls_and_classifiers(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
        assert any(n.endswith("licenses/LICENSE") for n in archive.namelist())
    assert metadata["License-Expression"] == "MIT"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL"))
    assert set(urls) >= {"Homepage", "Repository", "Issues"}
    classifiers = metadata.get_all("Classifier")
    assert {"Framework :: Pytest", "Operating System :: POSIX",
            "Programming Language :: Python :: 3.11"} <= set(classifiers)
    requires = metadata.get_all("Requires-Dist")
    assert "allure-pytest>=2.16" in requires and "pytest-xdist>=3.8" in requires
    assert any(r.startswith("playwright") and 'extra == "browser"' in r for r in requires)
    assert any(r.startswith("psycopg") and 'extra == "sql"' in r for r in requires)


def test_the_sdist_runs_its_own_tests(dist: Path, tmp_path: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (tree,) = tmp_path.iterdir()
    for needed in ("LICENSE", "tests/conftest.py", "suites/api-smoke.yaml", "environments.yaml",
                   "action.yml", "examples/github-deploy.yml", "scripts/verify_backup.py"):
        assert (tree / needed).is_file(), needed
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_layout.py", "tests/test_core.py"], cwd=tree,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
