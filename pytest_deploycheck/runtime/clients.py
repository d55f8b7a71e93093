"""One keep-alive ``httpx.Client`` per (environment, service), shared by YAML and Python checks.

Every client the plugin builds (:func:`new_client`) holds each exchange to a deadline: httpx's
timeouts apply to each socket operation, so a server sending its status line one byte at a
time never trips them. Here the request's timeout counts from the moment it is sent, and every
connect, TLS handshake, write and read is given only what is left of it, headers and body
included.
"""

from __future__ import annotations

import contextvars
import functools
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import httpcore
import httpx

from ..errors import CheckError
from ..secrets import Redactor, is_secret_header
from ..units import format_duration

if TYPE_CHECKING:
    from ..inputs.endpoints import Service

ALLOW_WRITE = "deploycheck_allow_write"
# What httpx calls with each request it sends and each answer (its own alias is private).
RequestHook: TypeAlias = Callable[[httpx.Request], None]
ResponseHook: TypeAlias = Callable[[httpx.Response], None]
# The methods that only read (RFC 9110 §9.2.1): what a protected environment lets through.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY_BYTES = 10 * 1024 * 1024



class Target(Protocol):
    """What a client is made for: an environment's name, default timeout and protection."""

    @property
    def name(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    @property
    def protected(self) -> bool: ...


class ProtectedEnvironmentError(CheckError):
    """A writing request was refused because the environment is protected.

    YAML checks allow a write with ``allow_write: true`` on the step; Python checks send the
    request with ``extensions={"deploycheck_allow_write": True}``.
    """


def _protect(env_name: str) -> RequestHook:
    def guard(request: httpx.Request) -> None:
        if request.method not in SAFE_METHODS and not request.extensions.get(ALLOW_WRITE):
            raise ProtectedEnvironmentError(
                f"environment '{env_name}' is protected: {request.method} refused "
                f"(set 'allow_write: true' on the step to allow it)")
    return guard


def _learn_secrets(redactor: Redactor) -> RequestHook:
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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port: where a service's headers may go."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


@functools.lru_cache(maxsize=256)
def service_origin(url: str) -> tuple[str, str, int | None]:
    """The origin of a service's URL, parsed once (it is compared on every request)."""
    return origin(httpx.URL(url))


def leaves_service(path: str, service: Service) -> str | None:
    """Why the rendered ``path`` of a request on ``service`` names another origin, or None.

    A path may render to an absolute URL (a saved pagination link, say): on its own origin it is
    sent, elsewhere it is refused, since the service's headers would go with it. Backslashes
    count as slashes and leading blanks are dropped, as browsers and many proxies read them.
    """
    if path[:1] == "/" and path[1:2] not in ("/", "\\"):
        return None  # the common case: one slash, then a path on the service
    probe = path.lstrip().replace("\\", "/")
    home = httpx.URL(service.url)
    try:
        if probe.startswith("//"):
            target = httpx.URL(f"{home.scheme}:{probe}")
        else:
            target = httpx.URL(probe)
            if not target.scheme:
                return None
    except httpx.InvalidURL:
        return f"refused: {path!r} is not a URL on service '{service.name}' ({service.url})"
    if origin(target) == service_origin(service.url):
        return None
    return (f"refused: {path} is not on service '{service.name}' ({service.url}); a service's "
            f"headers go only to its own origin")


def _keep_headers_home(service: Service) -> RequestHook:
    # httpx drops Authorization on a redirect to another origin, but not a service's other
    # headers (X-Api-Key, ...): they are dropped here from every request that leaves the
    # service's origin, a redirect or an absolute URL given to a Python check's client.
    home = service_origin(service.url)

    def guard(request: httpx.Request) -> None:
        if origin(request.url) == home:
            return
        for name, value in service.headers.items():
            if request.headers.get(name) == value:
                del request.headers[name]
    return guard


def _learn_answered_secrets(redactor: Redactor) -> ResponseHook:
    """Teach ``redactor`` what an answer's headers hold as a secret, before its body is read:
    a secret header's value (``Set-Cookie``, and the cookie in it, which the next request
    sends and a body may quote) and the credentials in a redirect's ``Location``."""
    def learn(response: httpx.Response) -> None:
        for name, value in response.headers.multi_items():
            if is_secret_header(name):
                redactor.add(value)
                if name.lower() == "set-cookie":
                    redactor.add(value.partition(";")[0].partition("=")[2].strip())
            elif name.lower() in ("location", "content-location"):
                redactor.add_url(value)
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


# When the exchange under way in this thread must end (time.monotonic()), set as it is sent.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "deploycheck_http_deadline", default=None)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """What a socket operation may take: its own timeout, cut to what is left of the deadline."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the exchange's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(
            ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None
                    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _start_deadline(request: httpx.Request) -> None:
    # The longest of the request's timeouts bounds the whole exchange, redirects each anew.
    timeouts = [t for t in request.extensions.get("timeout", {}).values() if t is not None]
    _DEADLINE.set(time.monotonic() + max(timeouts) if timeouts else None)


def new_client(**options: Any) -> httpx.Client:
    """An ``httpx.Client`` (``options`` as for httpx) whose exchanges end by their timeout.

    httpx has no hook for its sockets: the network backend of each of its connection pools
    (httpcore's, private in httpx 0.28) is wrapped. Should httpx rename it, this fails loudly
    rather than running without deadlines.
    """
    hooks = dict(options.pop("event_hooks", None) or {})
    hooks["request"] = [_start_deadline, *hooks.get("request", [])]
    client = httpx.Client(event_hooks=hooks, **options)
    for transport in [client._transport, *client._mounts.values()]:
        if not isinstance(transport, httpx.HTTPTransport):
            continue  # no transport for that pattern, or the caller's own
        pool = getattr(transport, "_pool", None)
        if not isinstance(getattr(pool, "_network_backend", None), httpcore.NetworkBackend):
            raise RuntimeError("httpx/httpcore changed: cannot bound exchanges by a deadline")
        pool._network_backend = _DeadlineBackend(pool._network_backend)  # type: ignore[union-attr]
    return client


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

    def client(self, env: Target, service: Service | None) -> httpx.Client:
        """The client for ``service`` in ``env``; ``None`` is the env's client for absolute URLs."""
        key = (env.name, service.name if service else None)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                # Learning first: a refused request is shown too.
                request_hooks: list[Callable[..., None]] = \
                    [_learn_secrets(self._redactor)] if self._redactor else []
                if env.protected:
                    request_hooks.append(_protect(env.name))
                if service is not None:
                    request_hooks.append(_keep_headers_home(service))
                hooks: dict[str, list[Callable[..., None]]] = \
                    {"request": request_hooks} if request_hooks else {}
                if self._redactor:
                    hooks["response"] = [_learn_answered_secrets(self._redactor)]
                if service is None:
                    client = new_client(timeout=env.timeout, event_hooks=hooks,
                                        limits=self._limits)
                else:
                    verify: bool | ssl.SSLContext = service.verify_tls \
                        if isinstance(service.verify_tls, bool) \
                        else ssl.create_default_context(cafile=service.verify_tls)
                    client = new_client(base_url=service.url, headers=dict(service.headers),
                                        timeout=service.timeout, event_hooks=hooks,
                                        verify=verify, limits=self._limits)
                self._clients[key] = client
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


