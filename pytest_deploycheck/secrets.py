"""What counts as a secret (SPEC §3) and the redactor that masks secrets in every output."""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

MASK = "***"

_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie"}
_SECRET_HEADER_PARTS = ("TOKEN", "KEY", "SECRET", "AUTH")
_SECRET_VAR_PARTS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "AUTH", "CREDENTIAL",
                     "COOKIE", "SESSION")
CREDENTIAL_FIELDS = frozenset({"api_key", "app_key", "password", "token"})
# Masking very short strings everywhere would mangle every message (think of "1" or "ok");
# such values are still masked wherever they appear as a secret header's value.
MIN_SECRET_LENGTH = 3
_AUTH_SCHEME = re.compile(r"^(?:Bearer|Basic|Token|Digest|Bot)\s+(\S+)$", re.IGNORECASE)


def is_secret_header(name: str) -> bool:
    upper = name.upper()
    return name.lower() in _SECRET_HEADERS or any(part in upper for part in _SECRET_HEADER_PARTS)


def is_secret_variable(name: str) -> bool:
    """A ``${VAR}`` or a saved field whose name marks its value as a secret."""
    upper = name.upper()
    return any(part in upper for part in _SECRET_VAR_PARTS)


class Redactor:
    """Collects secret values as they are learned and masks them in any text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        if not isinstance(value, str) or not value:
            return
        candidates = {value}
        scheme = _AUTH_SCHEME.match(value.strip())
        if scheme:
            candidates.add(scheme.group(1))
        with self._lock:
            new = {c for c in candidates if len(c) >= MIN_SECRET_LENGTH} - self._secrets
            if new:
                self._secrets |= new
                # Longest first, so a secret that contains another is masked whole.
                self._ordered = sorted(self._secrets, key=len, reverse=True)

    def add_url(self, url: str) -> None:
        """URL user-info (``https://user:pass@host``) is a credential."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        if parts.password:
            self.add(parts.password)
        if parts.username and parts.password:
            pair = f"{parts.username}:{parts.password}"
            self.add(pair)
            # What an HTTP client sends for user-info: the Basic credentials, base64-encoded.
            self.add(base64.b64encode(pair.encode()).decode())

    def redact(self, text: str) -> str:
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def redact_data(self, value: Any) -> Any:
        """A JSON-safe copy of plain data (mappings, lists, scalars) with every string
        redacted; anything else becomes its ``str()``, as ``json.dumps(default=str)`` would.

        One pass, for every check's report details: converting through a JSON text and then
        redacting took three times as long.
        """
        if isinstance(value, str):
            return self.redact(value) if self._ordered else value
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, Mapping):
            return {key if isinstance(key, str) else str(key): self.redact_data(item)
                    for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.redact_data(item) for item in value]
        return self.redact(str(value))

    def redact_headers(self, headers: Iterable[tuple[str, str]] | Mapping[str, str]
                       ) -> list[tuple[str, str]]:
        items = headers.items() if isinstance(headers, Mapping) else headers
        return [(name, MASK if is_secret_header(name) else self.redact(value))
                for name, value in items]

    def with_variables(self, environ: Mapping[str, str]) -> Redactor:
        """A copy that also masks the values of the secret-named variables in ``environ``.

        For the output of a command the plugin runs: it inherits the whole process environment
        and may print any of it. The copy keeps those values out of this one text without
        teaching the run's redactor every ``*_SESSION*`` value of the machine.
        """
        copy = Redactor()
        for secret in self._ordered:
            copy.add(secret)
        for name, value in environ.items():
            if is_secret_variable(name):
                copy.add(value)
        return copy
