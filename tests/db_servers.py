"""A real PostgreSQL server for the tests: Debian's package, a fresh cluster on a free port.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user the
package creates (in a folder of its own under /tmp, which that user can reach).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from servers import free_port

USER, PASSWORD = "deploy", "pg-s3cret-2718"


@dataclass
class PostgreSQL:
    port: int
    process: subprocess.Popen[bytes]
    folder: Path

    def url(self, database: str = "app", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql "
                           "(./dev test installs it)")
    return Path(found[-1]).parent


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_postgresql() -> PostgreSQL:
    """A cluster with password login (SCRAM) for ``USER``, and a database ``app``."""
    bin_dir = _binaries()
    folder = Path(tempfile.mkdtemp(prefix="deploycheck-pg-"))
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(password_file, "postgres")
    data = folder / "data"
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", USER,
                              "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8",
                              "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        _as_owner([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k",
                   str(folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = PostgreSQL(port, process, folder)
    deadline = time.monotonic() + 60
    import psycopg

    while True:
        try:
            with psycopg.connect(server.url("postgres"), connect_timeout=2,
                                 autocommit=True) as connection:
                connection.execute("CREATE DATABASE app")
            break
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("PostgreSQL did not start:\n"
                                   + (folder / "server.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    with psycopg.connect(server.url(), autocommit=True) as connection:
        connection.execute("""
            CREATE TABLE schema_migrations (version text, applied_at timestamptz);
            INSERT INTO schema_migrations VALUES ('001', now()), ('002', now()), ('003', NULL);
            CREATE TABLE workflows (id int, region text, tags text);
            INSERT INTO workflows VALUES (1, 'eu', 'a'), (2, 'eu', NULL), (3, 'us', 'b'),
                                         (4, 'us', 'c'), (5, 'ap', 'd');
        """)
    return server


def stop_postgresql(server: PostgreSQL) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    shutil.rmtree(server.folder, ignore_errors=True)
