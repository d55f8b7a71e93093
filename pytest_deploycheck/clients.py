"""One keep-alive ``httpx.Client`` per (environment, service), shared by YAML and Python checks."""

from __future__ import annotations

import ssl
import threading
import time

import httpx

from .endpoints import Service
from .environments import Environment
from .errors import CheckError
from .secrets import Redactor, is_secret_header
from .suites import SAFE_METHODS
from .units import format_duration

ALLOW_WRITE = "deploycheck_allow_write"
MAX_BODY_BYTES = 10 * 1024 * 1024


class ProtectedEnvironmentError(CheckError):
    """A writing request was refused because the environment is protected.

    YAML checks allow a write with ``allow_write: true`` on the step; Python checks send the
    request with ``extensions={"deploycheck_allow_write": True}``.
    """


def _protect(env_name: str) -> httpx._client.EventHook:
    def guard(request: httpx.Request) -> None:
        if request.method not in SAFE_METHODS and not request.extensions.get(ALLOW_WRITE):
            raise ProtectedEnvironmentError(
                f"environment '{env_name}' is protected: {request.method} refused "
                f"(set 'allow_write: true' on the step to allow it)")
    return guard


def _learn_secrets(redactor: Redactor) -> httpx._client.EventHook:
    """Teach ``redactor`` what each request sends as a secret, as it is sent: a header
    written in a suite or a Python check, a value saved under any name, a credential in the
    query string. The server may echo any of them back in a body that a failure shows."""
    def learn(request: httpx.Request) -> None:
        for name, value in request.headers.items():
            if is_secret_header(name):
                redactor.add(value)
        if request.url.query or request.url.userinfo:
            redactor.add_url(str(request.url))
    return learn


class BodyError(CheckError):
    """A response body that was too large or too slow to read."""


def read_body(response: httpx.Response, started: float, timeout: float,
              limit: int = MAX_BODY_BYTES) -> bytes:
    """The body of a streamed ``response``, cut off by size and by time (``started`` is a
    :func:`time.perf_counter` reading) so that an endless body cannot hang a check."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            raise BodyError(f"response body larger than {limit // (1024 * 1024)} MB; stopped "
                            f"reading")
        if time.perf_counter() - started > timeout:
            raise BodyError(f"timed out after {format_duration(timeout)} reading the response "
                            f"body")
    return bytes(body)


class ClientPool:
    """Clients built on first use and closed together at session end.

    A protected environment's clients refuse writing requests in an event hook, so the same rule
    holds for YAML checks and for Python checks using the ``service`` fixture.
    """

    def __init__(self, keepalive: int = 20, redactor: Redactor | None = None) -> None:
        # Every check running at once may hold a connection; keep them all alive between checks
        # rather than httpx's default 20, so that a burst does not end in reconnecting.
        self._limits = httpx.Limits(max_connections=max(keepalive, 100),
                                    max_keepalive_connections=max(keepalive, 20))
        self._clients: dict[tuple[str, str | None], httpx.Client] = {}
        self._lock = threading.Lock()
        self._redactor = redactor

    def client(self, env: Environment, service: Service | None) -> httpx.Client:
        """The client for ``service`` in ``env``; ``None`` is the env's client for absolute URLs."""
        key = (env.name, service.name if service else None)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                # Learning first: a refused request is shown too.
                request_hooks = [_learn_secrets(self._redactor)] if self._redactor else []
                if env.protected:
                    request_hooks.append(_protect(env.name))
                hooks = {"request": request_hooks} if request_hooks else {}
                if service is None:
                    client = httpx.Client(timeout=env.timeout, event_hooks=hooks,
                                          limits=self._limits)
                else:
                    verify: bool | ssl.SSLContext = service.verify_tls \
                        if isinstance(service.verify_tls, bool) \
                        else ssl.create_default_context(cafile=service.verify_tls)
                    client = httpx.Client(base_url=service.url, headers=dict(service.headers),
                                          timeout=service.timeout, event_hooks=hooks,
                                          verify=verify, limits=self._limits)
                self._clients[key] = client
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


