"""``webhook:`` actions: an HTTP request (a deploy system's rollback endpoint, a chat message).

Any 2xx answer is success. Connection errors, timeouts and 5xx answers are retried ``retries``
times (default 2) with a short pause; 4xx answers are not, since sending the same request again
cannot help. ``{{ env }}``, ``{{ verdict }}``, ``{{ failures }}`` and ``{{ failed_count }}`` may
appear in ``url``, ``headers``, ``json`` and ``body``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..endpoints import describe_error
from ..errors import CheckError, ConfigError
from ..templating import render
from ..units import format_duration, parse_duration
from ..yamlfile import YamlMap
from .base import ActionContext, ActionResult, ParseContext, last_chars

DEFAULT_TIMEOUT = 10.0
RETRY_PAUSE = 0.5
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["webhook"],
    "properties": {
        "name": {"type": "string"},
        "when": {"type": "array", "items": {"type": "string"}},
        "timeout": {"type": ["string", "number"]},
        "webhook": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "minLength": 1},
                "method": {"type": "string", "pattern": "^[A-Za-z]+$"},
                "headers": {"type": "object", "additionalProperties": {
                    "type": ["string", "number", "boolean"]}},
                "json": {},
                "body": {"type": "string"},
                "timeout": {"type": ["string", "number"]},
                "retries": {"type": "integer", "minimum": 0, "maximum": 10},
            },
        },
    },
}


@dataclass(frozen=True)
class WebhookAction:
    name: str
    url: str
    method: str
    headers: Mapping[str, str]
    payload: Any
    has_json: bool
    body: str | None
    timeout: float
    retries: int
    type: str = "webhook"

    def describe(self) -> str:
        return f"webhook {self.method} {self.url} (timeout {format_duration(self.timeout)}, " \
               f"retries {self.retries})"

    def run(self, context: ActionContext) -> ActionResult:
        started = time.monotonic()
        try:
            scope = context.scope()
            url = str(render(self.url, scope))
            headers = {k: str(v) for k, v in render(dict(self.headers), scope).items()}
            payload = render(self.payload, scope) if self.has_json else None
            content = str(render(self.body, scope)) if self.body is not None else None
        except CheckError as exc:
            return ActionResult(self.name, self.type, "failed", str(exc))
        message, status, text = "", None, ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(RETRY_PAUSE)
            try:
                with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                    answer = client.request(self.method, url, headers=headers,
                                            json=payload if self.has_json else None,
                                            content=content)
            except httpx.HTTPError as exc:
                message, status = describe_error(exc, self.timeout), None
                continue
            status, text = answer.status_code, answer.text
            if 200 <= status < 300:
                message = ""
                break
            message = f"answered {status}"
            if status < 500:
                break
        tries = f" (after {attempt + 1} attempts)" if attempt else ""
        output = context.redactor.redact(last_chars(text.strip()))
        return ActionResult(
            self.name, self.type, "failed" if message else "succeeded",
            context.redactor.redact(message + tries) if message else "", None,
            time.monotonic() - started, output,
            {"status": status, "attempts": attempt + 1})


def parse(node: YamlMap, context: ParseContext) -> WebhookAction:
    spec = node["webhook"]
    timeout = DEFAULT_TIMEOUT
    for holder, key in ((node, "timeout"), (spec, "timeout")):
        if key in holder:
            try:
                timeout = parse_duration(holder[key])
            except ValueError as exc:
                raise ConfigError(str(exc), file=context.file, line=holder.line_of(key),
                                  key=f"{context.where}.{'webhook.' if holder is spec else ''}"
                                      f"{key}") from None
    body = json.dumps(spec["json"], default=str) if "json" in spec else spec.get("body")
    method = str(spec.get("method", "POST")).upper()
    return WebhookAction(
        name=str(node.get("name") or f"webhook {method} {spec['url']}"), url=str(spec["url"]),
        method=method, headers={str(k): str(v) for k, v in spec.get("headers", {}).items()},
        payload=spec.get("json"), has_json="json" in spec,
        body=None if "json" in spec else body, timeout=timeout,
        retries=int(spec.get("retries", 2)))
