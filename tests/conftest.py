"""Fixtures of the plugin's own tests: loopback servers and a project folder for ``pytester``."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

# pytester's in-process runs drop the modules they imported when they end; importing these
# here keeps one copy of each (httpx maps httpcore's exception classes once, per copy).
import httpcore  # noqa: F401
import httpx  # noqa: F401
import pytest

import pytest_deploycheck.adapter.yamlitems  # noqa: F401

sys.path.insert(0, str(Path(__file__).parent))

from db_servers import PostgreSQL, start_postgresql, stop_postgresql
from metric_servers import (
    DatadogServer,
    Prometheus,
    openmetrics,
    start_datadog,
    start_prometheus,
    stop_prometheus,
)
from pytest_deploycheck.demo.server import DemoServer
from servers import LoopbackServer, start_server, stop_server
from servers import free_port as free_port  # the tests take it from here


@pytest.fixture(scope="session")
def server() -> Iterator[LoopbackServer]:
    """A threaded HTTP server on 127.0.0.1 with ok, fault and counter endpoints."""
    srv = start_server()
    yield srv
    stop_server(srv)


@pytest.fixture
def demo() -> Iterator[DemoServer]:
    """The bundled demo service, in a thread of this process, on a free port."""
    srv = DemoServer("127.0.0.1", 0, "1.2.3")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus on 127.0.0.1, backfilled with the series of ``metric_servers``."""
    import time

    srv = start_prometheus(tmp_path_factory.mktemp("prometheus"),
                           backfill=openmetrics(time.time()))
    yield srv
    stop_prometheus(srv)


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PostgreSQL]:
    """A real PostgreSQL on 127.0.0.1 with a database ``app`` (see ``db_servers``)."""
    srv = start_postgresql()
    yield srv
    stop_postgresql(srv)


@pytest.fixture
def datadog() -> Iterator[DatadogServer]:
    """A loopback server answering Datadog's metrics query API."""
    srv = start_datadog()
    yield srv
    srv.shutdown()
    srv.server_close()


def runpytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An in-process pytest run in the pytester folder, without cache or rewrite noise."""
    return pytester.runpytest("-p", "no:cacheprovider", "-W",
                              "ignore::pytest.PytestAssertRewriteWarning", *args)


def assert_bad_input(project: Project, message: str, *args: str) -> None:
    """A collection run with ``args`` fails with a line matching ``*message`` (fnmatch) and
    no traceback of the plugin's."""
    result = runpytest(project.pytester, "--collect-only", *args)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0, out
    assert "Traceback" not in out and "pytest_deploycheck/" not in out, out
    assert any(fnmatch.fnmatch(line, "*" + message) for line in out.splitlines()), out


ROOT = Path(__file__).parent.parent
# Commits with a known author, whatever the machine's own git configuration says.
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com",
                "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.com",
                "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(folder: Path, *args: str) -> str:
    """Run git in ``folder``; its standard output."""
    done = subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, **GIT_IDENTITY})
    return done.stdout


def prometheus_env(project: Project, url: str, extra: str = "") -> None:
    """The project's default metric source: Prometheus at ``url`` (``extra``: more keys)."""
    project.metric_source(f'{{type: prometheus, url: "{url}"{extra}}}')


def copy_repo_suites(project: Project) -> None:
    """The repository's environments, suites and scripts, committed to a fresh git repository
    (the pre-deploy checklist wants a clean working tree)."""
    shutil.copy(ROOT / "environments.yaml", project.path)
    shutil.copy(ROOT / ".gitignore", project.path)
    shutil.copytree(ROOT / "suites", project.path / "suites")
    shutil.copytree(ROOT / "scripts", project.path / "scripts")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release"]):
        git(project.path, *args)



class Project:
    """Writes an environments file and suites into a pytester folder."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path

    def environments(self, text: str) -> Path:
        path = self.path / "environments.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    def suite(self, name: str, text: str) -> Path:
        folder = self.path / "suites"
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_text(textwrap.dedent(text))
        return path

    def metric_source(self, source: str) -> None:
        """One environment ``test`` whose metric source ``default`` is ``source`` (flow YAML)."""
        self.environments(f"environments:\n  test:\n    metrics:\n      default: {source}\n")

    def simple(self, url: str, suite: str) -> None:
        """One environment ``test`` whose service ``api`` is ``url``, and one suite file."""
        self.environments(f"""\
            environments:
              test:
                services:
                  api: {{url: "{url}"}}
            """)
        self.suite("checks.yaml", suite)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    return Project(pytester)


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An HTTPS server on 127.0.0.1 with a fresh self-signed certificate valid for 30 days."""
    import http.server
    import ssl
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_port}", str(cert)
    srv.shutdown()
    srv.server_close()
