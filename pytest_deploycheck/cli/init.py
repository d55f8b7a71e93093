"""``python -m pytest_deploycheck init``: a first ``environments.yaml`` and suite that pass.

With ``--url`` the service is asked which health endpoint it has (``/health``, ``/healthz``,
``/status``, then ``/``), and the first suite checks that one, with the JSON status it answered
when it answers one. Without it, the files point at the bundled demo, started by the gate.
Existing files are never overwritten unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

PROBED = ("/health", "/healthz", "/status", "/")

ENVIRONMENTS = """\
# Environments the gate runs against (pytest --env=NAME). ${{VAR}} reads an environment
# variable (${{VAR:-default}}, ${{VAR:?message}}); secrets belong there, never in this file.
# The reference: https://github.com/pytest-deploycheck/pytest-deploycheck/blob/main/docs/reference/environments-file.md
environments:
  {env}:
    description: {description}
    timeout: 5s                        # default per request
{start}    services:
      api:
        url: {url}
        # headers: {{Authorization: "Bearer ${{API_TOKEN:?set API_TOKEN}}"}}
    # rollback:                        # what a failed post-deploy gate runs, once
    #   - {{name: redeploy previous, command: "./scripts/rollback.sh"}}
"""

_DEMO_START = """\
    start:                             # started before the first check, stopped at the end
      - name: demo service
        command: [python, -m, pytest_deploycheck.demo, --port, "8765"]
        ready: http://127.0.0.1:8765/health
"""

SUITE = """\
# The first suite: checks become pytest items (pytest --env={env}). Add smoke checks of your
# critical paths, metric checks, a pre-deploy checklist:
# https://github.com/pytest-deploycheck/pytest-deploycheck/blob/main/docs/concepts/suites.md
suite: first
service: api
checks:
  - name: {path} answers
    kind: health
    request: {{path: {path}}}
    expect:
      status: 2xx
{json}"""


@dataclass(frozen=True)
class Probe:
    path: str
    status_field: str | None  # the JSON "status" it answered, when it answered one


def probe(url: str, timeout: float = 5.0) -> Probe:
    """The first of :data:`PROBED` that answers 2xx at ``url``; raises ``SystemExit`` with the
    reason when none does."""
    tried = []
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, follow_redirects=False) as client:
        for path in PROBED:
            try:
                answer = client.get(path)
            except httpx.HTTPError as exc:
                raise SystemExit(f"init: cannot reach {url}: {exc or type(exc).__name__}") \
                    from None
            tried.append(f"{path} {answer.status_code}")
            if answer.is_success:
                try:
                    body = answer.json()
                except ValueError:
                    body = None
                status = body.get("status") if isinstance(body, dict) else None
                return Probe(path, status if isinstance(status, str) and status else None)
    raise SystemExit(f"init: {url} answered no health endpoint with 2xx ({', '.join(tried)}); "
                     f"write the first check by hand (docs/concepts/suites.md)")


def write(folder: Path, env: str, url: str | None, force: bool) -> list[Path]:
    """Write the two files into ``folder``; returns their paths."""
    if url is not None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port or address
        except ValueError as exc:
            raise SystemExit(f"init: {url!r} is not a URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SystemExit(f"init: {url!r} is not an http(s) URL")
        if parts.username or parts.password or parts.query:
            # The file is meant to be committed: credentials go in variables.
            raise SystemExit("init: give the base URL without credentials or a query; the file "
                             "it writes shows where a token goes (${API_TOKEN})")
    found = probe(url) if url else Probe("/health", "healthy")
    environments = folder / "environments.yaml"
    suite = folder / "suites" / "first.yaml"
    existing = [str(p) for p in (environments, suite) if p.exists()]
    if existing and not force:
        raise SystemExit(f"init: {', '.join(existing)} exist already (--force overwrites)")
    environments.write_text(ENVIRONMENTS.format(
        env=env, url=json.dumps(url or "http://127.0.0.1:8765"),
        description=json.dumps(f"the service at {url}" if url else "the bundled demo"),
        start="" if url else _DEMO_START))
    suite.parent.mkdir(parents=True, exist_ok=True)
    expected = f"      json: {{status: {json.dumps(found.status_field)}}}\n" \
        if found.status_field else ""
    suite.write_text(SUITE.format(env=env, path=found.path, json=expected))
    return [environments, suite]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_deploycheck init",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the service's base URL (default: the bundled demo)")
    parser.add_argument("--env", default="staging", help="the environment's name")
    parser.add_argument("--dir", default=".", type=Path, help="where to write")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    written = write(args.dir, args.env, args.url, args.force)
    for path in written:
        print(f"wrote {path}")
    print(f"next: pytest --env={args.env} suites")
    return 0
