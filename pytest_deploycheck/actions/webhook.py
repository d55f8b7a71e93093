"""``webhook:`` actions: an HTTP request (a deploy system's rollback endpoint, a chat message).

Any 2xx answer is success. Only what provably never reached the server is sent again, up to
``retries`` times (default 2) with a short pause: a refused connection, a failed DNS lookup, a
connect timeout. An answer (even a 5xx), a read timeout or a broken connection may mean the
server acted, so the request is not repeated unless the action says ``retries_on_timeout: true``
(the receiver is idempotent). Every request carries an ``Idempotency-Key`` header, the same for
each attempt of one action in one run, so that a receiver can drop a duplicate. The answer is
read up to ``MAX_ANSWER_BYTES`` and the whole exchange ends by ``timeout``.
``{{ env }}``, ``{{ verdict }}``, ``{{ failures }}`` and ``{{ failed_count }}`` may appear in
``url``, ``headers``, ``json`` and ``body``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import CheckError
from ..inputs.endpoints import describe_error
from ..inputs.located import At, duration_at
from ..inputs.templating import render
from ..inputs.yamlfile import YamlMap
from ..runtime.clients import new_client
from ..units import format_duration
from .base import ROLE_PROPERTIES, ActionContext, ActionResult, last_chars

DEFAULT_TIMEOUT = 10.0
RETRY_PAUSE = 0.5
# Enough of an answer for the report (which keeps its last 4000 characters).
MAX_ANSWER_BYTES = 1024 * 1024
# Errors raised before any byte of the request left: sending again cannot act twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["webhook"],
    "properties": {
        "name": {"type": "string"},
        **ROLE_PROPERTIES,
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
                "retries_on_timeout": {"type": "boolean"},
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
    retries_on_timeout: bool = False
    where: str = ""  # its place in the environments file, part of its Idempotency-Key
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
        if not any(name.lower() == "idempotency-key" for name in headers):
            headers["Idempotency-Key"] = self.idempotency_key(context)
        message, status, text = "", None, ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(RETRY_PAUSE)
            try:
                with new_client(timeout=self.timeout, follow_redirects=False) as client, \
                        client.stream(self.method, url, headers=headers,
                                      json=payload if self.has_json else None,
                                      content=content) as answer:
                    status, text = answer.status_code, _read_capped(answer)
            except httpx.HTTPError as exc:
                message, status = describe_error(exc, self.timeout), None
                if isinstance(exc, _NOT_SENT) or self.retries_on_timeout:
                    continue
                break
            if 200 <= status < 300:
                message = ""
                break
            message = f"answered {status}"
            if status < 500 or not self.retries_on_timeout:
                break
        tries = f" (after {attempt + 1} attempts)" if attempt else ""
        output = context.redactor.redact(last_chars(text.strip()))
        return ActionResult(
            self.name, self.type, "failed" if message else "succeeded",
            context.redactor.redact(message + tries) if message else "", None,
            time.monotonic() - started, output,
            {"status": status, "attempts": attempt + 1})


    def idempotency_key(self, context: ActionContext) -> str:
        """The same for every attempt of this action in this run, and only for those."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"deploycheck:{context.run_id}:"
                                                  f"{context.env}:{self.where}"))


def _read_capped(answer: httpx.Response) -> str:
    """The answer's text, or its first ``MAX_ANSWER_BYTES``: the status is what counts."""
    body = bytearray()
    for chunk in answer.iter_bytes():
        body += chunk
        if len(body) >= MAX_ANSWER_BYTES:
            break
    return bytes(body[:MAX_ANSWER_BYTES]).decode(answer.encoding or "utf-8", errors="replace")


def parse(node: YamlMap, context: At) -> WebhookAction:
    spec = node["webhook"]
    # The action's timeout, which the webhook's own overrides.
    timeout = duration_at(node, "timeout", context.where, DEFAULT_TIMEOUT)
    timeout = duration_at(spec, "timeout", f"{context.where}.webhook", timeout)
    method = str(spec.get("method", "POST")).upper()
    return WebhookAction(
        name=str(node.get("name") or f"webhook {method} {spec['url']}"), url=str(spec["url"]),
        method=method, headers={str(k): str(v) for k, v in spec.get("headers", {}).items()},
        payload=spec.get("json"), has_json="json" in spec,
        body=None if "json" in spec else spec.get("body"), timeout=timeout,
        retries=int(spec.get("retries", 2)),
        retries_on_timeout=bool(spec.get("retries_on_timeout", False)), where=context.where)
