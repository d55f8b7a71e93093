"""Turn an Allure results folder into one self-contained HTML file, to attach to a release.

    python -m pytest_deploycheck.htmlreport allure-results -o deploy-gate.html

It runs the Allure 3 CLI (npm package ``allure``) with its Awesome report in single-file mode.
The CLI is taken from ``$DEPLOYCHECK_ALLURE``, else installed with npm (once) into
``$DEPLOYCHECK_TOOLS`` (default ``~/.cache/pytest-deploycheck/node``); only Node.js and npm
must be there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..runtime.durable import write_json_atomic
from .allure import allure3_config, headline, read_properties

ALLURE_PACKAGE = "allure@3.18.0"
TIMEOUT = 600  # seconds for an install or a generation


class ReportError(Exception):
    """Why no report was made, in one line."""


def tools_dir() -> Path:
    default = Path.home() / ".cache" / "pytest-deploycheck" / "node"
    return Path(os.environ.get("DEPLOYCHECK_TOOLS", default))


def allure_cli(install: bool = True) -> Path:
    """The Allure CLI to run: ``$DEPLOYCHECK_ALLURE``, or the one installed in the tools
    folder (installing it when missing and ``install``)."""
    given = os.environ.get("DEPLOYCHECK_ALLURE")
    if given:
        if not Path(given).is_file():
            raise ReportError(f"DEPLOYCHECK_ALLURE={given} is not a file")
        return Path(given)
    folder = tools_dir()
    cli = folder / "node_modules" / ".bin" / "allure"
    if cli.is_file():
        return cli
    if not install:
        raise ReportError(f"the Allure CLI is not installed in {folder}")
    npm = shutil.which("npm")
    if npm is None:
        raise ReportError("npm is not installed: install Node.js 20 or later (e.g. "
                          "'apt-get install -y nodejs npm'), or set DEPLOYCHECK_ALLURE")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"installing {ALLURE_PACKAGE} into {folder} ...", file=sys.stderr)
    _run([npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent",
          ALLURE_PACKAGE], "npm install")
    if not cli.is_file():
        raise ReportError(f"npm installed {ALLURE_PACKAGE}, but {cli} is missing")
    return cli


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ReportError(f"{what} did not finish in {TIMEOUT}s") from None
    except OSError as exc:
        raise ReportError(f"cannot run {what}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ReportError(f"{what} failed (exit code {done.returncode}): " + " | ".join(tail))


def generate(results: Path, output: Path, name: str = "Deploy gate") -> Path:
    """Write the single-file report of ``results`` to ``output``; returns ``output``. Its
    title is ``name`` with each environment's verdict; its tree environment, suite, kind."""
    _check_results(results)
    _check_writable(output)  # before minutes of work, not after
    cli = allure_cli()
    name = report_name(results, name)
    with tempfile.TemporaryDirectory(prefix="deploycheck-report-") as work:
        folder = Path(work)
        config = allure3_config(name, str(folder / "report"))
        (folder / "allurerc.json").write_text(json.dumps(config))
        _run([str(cli), "generate", str(results.resolve())], "allure generate", cwd=folder)
        page = folder / "report" / "index.html"
        if not page.is_file():
            raise ReportError(f"allure generate wrote no {page.name}")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, output)
        except OSError as exc:
            raise ReportError(f"cannot write {output}: {exc.strerror or exc}") from None
    return output


def _check_results(results: Path) -> None:
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(f"{results} holds no Allure results (run pytest with "
                          f"--alluredir={results})")


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise ReportError(f"{path} is a folder: give the file to write")
    parent = next((folder for folder in path.parents if folder.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ReportError(f"cannot write {path}: {parent} is a file")


def report_name(results: Path, name: str) -> str:
    """``name`` with the verdicts of the run that wrote ``results``."""
    properties = results / "environment.properties"
    try:
        text = properties.read_text(encoding="utf-8", errors="replace")
    except OSError:  # none (a run without environments), or unreadable: the name alone
        return name
    return headline(name, read_properties(text))


def write_config(results: Path, path: Path, name: str) -> Path:
    """The configuration of this report for running the Allure 3 CLI yourself (``allure
    generate``, ``allure open``): ``allurerc.json`` beside where it runs."""
    _check_results(results)
    _check_writable(path)
    config = allure3_config(report_name(results, name), "allure-report", single_file=False)
    try:
        write_json_atomic(path, config)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_deploycheck.htmlreport",
        description="Make one self-contained HTML report from an Allure results folder.")
    parser.add_argument("results", nargs="?", type=Path, default=Path("allure-results"),
                        help="the --alluredir folder (default: allure-results)")
    parser.add_argument("-o", "--output", type=Path, default=Path("deploy-gate.html"),
                        help="the HTML file to write (default: deploy-gate.html)")
    parser.add_argument("--name", default="Deploy gate", help="the report's title")
    parser.add_argument("--install-only", action="store_true",
                        help="install the Allure CLI when missing, and stop")
    parser.add_argument("--allurerc", type=Path, metavar="PATH",
                        help="write the report's Allure 3 configuration (title with the "
                             "verdicts, tree by environment, suite and kind, categories) to "
                             "PATH, for running the Allure CLI yourself, and stop")
    args = parser.parse_args(argv)
    try:
        if args.install_only:
            print(allure_cli())
            return 0
        if args.allurerc is not None:
            print(f"wrote {write_config(args.results, args.allurerc, args.name)}")
            return 0
        page = generate(args.results, args.output, args.name)
    except ReportError as exc:
        print(f"deploycheck htmlreport: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {page} ({page.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
