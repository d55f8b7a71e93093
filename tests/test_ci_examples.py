"""The CI integrations as a pipeline runs them: the GitHub Action (``action.yml``) and the
example workflow that uses it, their shell steps run here with the variables GitHub sets, on a
clone of this repository against the bundled demo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from conftest import GIT_IDENTITY, free_port, git

REPO = Path(__file__).parent.parent
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_TOKEN = re.compile(r"\s*(\|\||&&|==|!=|!|\(|\)|'[^']*'|[A-Za-z_][\w.-]*(?:\(\))?|\d+)")


class Expressions:
    """The part of GitHub's expression language the workflow and the action use: contexts,
    ``||``, ``&&``, ``==``, ``!=``, ``!``, string literals and the status functions."""

    def __init__(self, contexts: dict[str, Any]) -> None:
        self.contexts = contexts

    def value(self, text: str) -> Any:
        tokens = [t for t in _TOKEN.findall(text)]
        assert "".join(tokens).replace(" ", "") == text.replace(" ", ""), text
        python = []
        for token in tokens:
            if token == "||":
                python.append(" or ")
            elif token == "&&":
                python.append(" and ")
            elif token == "!":
                python.append(" not ")
            elif token in ("==", "!=", "(", ")") or token.startswith("'"):
                python.append(token)
            elif token in ("always()", "success()"):
                python.append("True")
            elif token == "failure()":
                python.append("False")
            else:
                python.append(repr(self.lookup(token)))
        # Only the tokens above reach eval: values are repr()s, never text of the workflow.
        return eval("".join(python), {"__builtins__": {}})

    def lookup(self, name: str) -> Any:
        value: Any = self.contexts
        for part in name.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def render(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        whole = _EXPRESSION.fullmatch(text.strip())
        if whole:
            found = self.value(whole.group(1))
            return "" if found is None else found
        return _EXPRESSION.sub(lambda m: str(self.value(m.group(1))), text)

    def condition(self, text: str | None) -> bool:
        if text is None:
            return True
        inner = _EXPRESSION.fullmatch(text.strip())
        return bool(self.value(inner.group(1) if inner else text))


def run_script(script: str, env: dict[str, str], cwd: Path, outputs: Path) -> int:
    outputs.write_text("")
    done = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env={**env, "GITHUB_OUTPUT": str(outputs)},
                          capture_output=True, text=True, timeout=600)
    sys.stdout.write(done.stdout[-6000:] + done.stderr[-3000:])
    return done.returncode


def read_outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run_action(inputs: dict[str, Any], base_env: dict[str, str], workspace: Path,
               folder: Path) -> tuple[int, dict[str, str]]:
    """The composite action's steps, as the runner runs them: inputs with their defaults,
    ``GITHUB_ACTION_PATH`` the action's folder."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    given = {name: str(inputs.get(name, spec.get("default", "")))
             for name, spec in action["inputs"].items()}
    missing = [name for name, spec in action["inputs"].items()
               if spec.get("required") and not given[name]]
    assert not missing, missing
    expressions = Expressions({"inputs": given})
    status, outputs = 0, {}
    for step in action["runs"]["steps"]:
        env = {**base_env, "GITHUB_ACTION_PATH": str(REPO),
               **{k: str(expressions.render(v)) for k, v in step.get("env", {}).items()}}
        status = run_script(step["run"], env, workspace, folder / f"output-{step['id']}")
        outputs.update(read_outputs(folder / f"output-{step['id']}"))
        if status:
            break
    expressions = Expressions({"steps": {"gate": {"outputs": outputs}}})
    return status, {name: str(expressions.render(spec["value"]))
                    for name, spec in action["outputs"].items()}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """This repository as actions/checkout leaves it: a clone with origin/main fetched (here:
    made to point at the commit under test; nothing is pushed)."""
    clone = tmp_path / "workspace"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True,
                   env={**os.environ, **GIT_IDENTITY})
    # The working tree's own files, committed: the test runs what is here, not the last commit.
    for name in ("action.yml", "environments.yaml", ".gitignore"):
        shutil.copy(REPO / name, clone / name)
    for folder in ("suites", "scripts", "examples"):
        shutil.rmtree(clone / folder)
        shutil.copytree(REPO / folder, clone / folder)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "--allow-empty", "-m", "the working tree under test")
    git(clone, "update-ref", "refs/remotes/origin/main", "HEAD")
    return clone


def test_the_example_workflow_runs_green_on_this_repository(workspace: Path,
                                                            tmp_path: Path) -> None:
    """Every step of examples/github-deploy.yml for a dispatch to the demo (environment local):
    both gates through the action pass, its outputs say so, the summaries are two, the deploy
    and report steps run, the release upload is left out."""
    workflow = yaml.safe_load((REPO / "examples" / "github-deploy.yml").read_text())
    job = workflow["jobs"]["deploy"]
    port = free_port()
    github = {"event_name": "workflow_dispatch", "event": {}, "run_id": "4242",
              "repository": "acme/control-plane", "server_url": "https://github.com",
              "token": "ghs_unused"}
    contexts: dict[str, Any] = {"inputs": {"environment": "local", "version": "1.2.3"},
                                "github": github, "secrets": {}, "vars": {}, "steps": {}}
    expressions = Expressions(contexts)
    summary = tmp_path / "summary.md"
    venv_bin = str(Path(sys.executable).parent)
    base_env = {
        "PATH": f"{venv_bin}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/root"),
        "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_REPOSITORY": "acme/control-plane", "GITHUB_RUN_ID": "4242",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_SHA": git(workspace, "rev-parse", "HEAD").strip(),
        "RUNNER_TEMP": str(tmp_path), "DEMO_PORT": str(port),
        # The Allure CLI that ./dev test installed (the workflow's setup-node and npx).
        "DEPLOYCHECK_TOOLS": str(REPO / ".tools" / "node"),
        **{k: str(expressions.render(v)) for k, v in workflow["env"].items()}}
    ran = []
    for step in job["steps"]:
        if not expressions.condition(step.get("if")):
            continue
        name = step.get("name", step.get("uses", ""))
        uses = step.get("uses", "")
        if uses.startswith("pytest-deploycheck/pytest-deploycheck@") or uses == "./":
            inputs = {k: expressions.render(v) for k, v in step.get("with", {}).items()}
            status, outputs = run_action(inputs, base_env, workspace, tmp_path)
            contexts["steps"][step["id"]] = {"outputs": outputs}
        elif uses:
            continue  # checkout, setup-python and the caches: GitHub's own
        else:
            env = {**base_env, **{k: str(expressions.render(v))
                                  for k, v in step.get("env", {}).items()}}
            status = run_script(step["run"], env, workspace, tmp_path / "output")
        assert status == 0, f"step {name!r} failed"
        ran.append(name)
    assert ran == ["Pre-deploy gate", "Deploy", "Post-deploy gate", "Build the report"]
    assert contexts["steps"]["pre"]["outputs"]["verdict"] == "passed"
    assert contexts["steps"]["post"]["outputs"] == {
        "verdict": "passed", "failed": "0",
        "report": str(workspace / "deploy-gate" / "gate-local-postdeploy.json")}
    report = json.loads((workspace / "deploy-gate" / "gate-local-postdeploy.json").read_text())
    assert report["verdict"] == "passed" and report["phase"] == "postdeploy"
    titles = [line for line in summary.read_text().splitlines() if line.startswith("## ")]
    assert [t.rsplit(" (", 1)[0] for t in titles] == [
        "## deploycheck: pre-deploy gate of local", "## deploycheck: post-deploy gate of local"]
    assert (workspace / "deploy-gate" / "deploy-gate.html").stat().st_size > 100_000


def test_the_action_reports_a_failing_gate_and_a_usage_error(workspace: Path,
                                                             tmp_path: Path) -> None:
    """A broken demo fails the post-deploy gate: the action's step fails and its outputs say
    rolled_back (the demo's rollback) with the failed count; an unknown environment is a usage
    error, whose verdict output is blocked."""
    port = free_port()
    base_env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                "HOME": os.environ.get("HOME", "/root"), "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(workspace), "DEMO_PORT": str(port),
                "DEPLOY_VERSION": "9.9.9",  # the demo serves 1.2.3: the version check fails
                "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    status, outputs = run_action({"environment": "local", "markers": "postdeploy"}, base_env,
                                 workspace, tmp_path)
    assert status == 1
    assert outputs["verdict"] == "rolled_back" and int(outputs["failed"]) >= 1
    assert outputs["report"] == str(workspace / "deploycheck-report" / "gate-local-postdeploy.json")
    status, outputs = run_action({"environment": "nowhere"}, base_env, workspace, tmp_path)
    assert status == 4
    assert outputs == {"verdict": "blocked", "failed": "0",
                       "report": str(workspace / "deploycheck-report" / "gate-nowhere.json")}
    assert json.loads((workspace / outputs["report"]).read_text())["verdict"] == "blocked"


def test_the_gitlab_example_runs_green_and_reports_junit_and_dotenv(workspace: Path,
                                                                    tmp_path: Path) -> None:
    """examples/gitlab-ci.yml's jobs, their scripts run here with the variables GitLab sets
    (pytest-deploycheck installed already: before_script left out): the JUnit report has each
    check's file and line with pytest's default junit_family, and the dotenv report parses
    as GitLab parses it, carrying the verdict to the last job."""
    pipeline = yaml.safe_load((REPO / "examples" / "gitlab-ci.yml").read_text())
    port = free_port()
    variables = {**{k: str(v) for k, v in pipeline["variables"].items()},
                 "DEPLOY_ENV": "local", "CI_COMMIT_TAG": "1.2.3", "DEMO_PORT": str(port),
                 "GITLAB_CI": "true", "CI": "true", "CI_PROJECT_DIR": str(workspace),
                 "CI_PIPELINE_ID": "777", "CI_COMMIT_SHA": git(workspace, "rev-parse", "HEAD").strip()}
    variables["DEPLOY_VERSION"] = variables["CI_COMMIT_TAG"]  # GitLab expands $CI_COMMIT_TAG
    base = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "HOME": os.environ.get("HOME", "/root"), **variables}
    dotenv: dict[str, str] = {}
    for job in ("pre-deploy gate", "deploy", "post-deploy gate", "tell the release"):
        spec = pipeline[job]
        script = "\n".join(spec["script"])
        done = subprocess.run(["bash", "-e", "-c", script], cwd=workspace,
                              env={**base, **dotenv}, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{job}: {done.stdout[-3000:]}{done.stderr[-2000:]}"
        reports = spec.get("artifacts", {}).get("reports", {})
        if "dotenv" in reports:
            for line in (workspace / reports["dotenv"]).read_text().splitlines():
                key, _, value = line.partition("=")
                assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), line
                dotenv[key] = value
        if "junit" in reports:
            tree = ElementTree.parse(workspace / reports["junit"])
            cases = tree.getroot().iter("testcase")
            located = [(c.get("file"), c.get("line")) for c in cases]
            assert located and all(f and f.startswith("suites/") and line for f, line in located)
    assert dotenv["DEPLOYCHECK_VERDICT"] == "passed" and dotenv["DEPLOYCHECK_FAILED"] == "0"
    assert done.stdout.strip() == "post-deploy gate of local ended passed (0 failed)"
