"""What counts as a secret (SPEC §3) and the redactor that masks secrets in every output."""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from .jsondoc import MAX_DEPTH

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
# A secret this long is also masked base64-encoded; shorter ones would turn up by chance in
# unrelated text. Escaped forms (URL-quoted, JSON, repr) differ from the value only by the
# escapes of its own special characters, so they are masked whatever the length.
MIN_ENCODED_LENGTH = 8
# What pytest (saferepr, assertion explanations, showlocals) and the plugin's own snippets put
# where they shorten a text, before any report exists: the secret is cut in two there.
_CUT = re.compile(r"\.\.\.|\u2026")
# The shortest piece of a secret masked next to a cut; shorter pieces say nothing of it and
# would mask plain words beside every "...".
MIN_PIECE_LENGTH = 4
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
# A credential query parameter in any URL a text shows (a signed link in an answer, a runbook
# link), by the names of is_secret_query_parameter: its value up to the end of the parameter.
_QUERY_CREDENTIAL = re.compile(
    r"(?<=[?&])((?:[\w.~%-]*(?:" + "|".join((*_SECRET_VAR_PARTS, "SIGNATURE"))
    + r")[\w.~%-]*|sig)=)[^&#\s\"'<>\\]+", re.IGNORECASE)
# Hosts whose URLs are capabilities: the path is the credential (a chat webhook).
_CAPABILITY_HOSTS = ("hooks.slack.com", "webhook.office.com", "hooks.zapier.com")
_CAPABILITY_PATHS = (("discord.com", "/api/webhooks/"), ("discordapp.com", "/api/webhooks/"),
                     ("outlook.office.com", "/webhook"), ("chat.googleapis.com", "/v1/spaces/"))


# Asked for every header of every request sent (see clients): a few distinct names, remembered.
@functools.lru_cache(maxsize=1024)
def is_secret_header(name: str) -> bool:
    upper = name.upper()
    return name.lower() in _SECRET_HEADERS or any(part in upper for part in _SECRET_HEADER_PARTS)


def is_secret_variable(name: str) -> bool:
    """A ``${VAR}`` or a saved field whose name marks its value as a secret."""
    upper = name.upper()
    return any(part in upper for part in _SECRET_VAR_PARTS)


def is_secret_query_parameter(name: str) -> bool:
    """A query parameter that carries a credential: named like a secret variable
    (``api_key``, ``access_token``, ``X-Amz-Security-Token``) or a signature (``sig``,
    ``signature``, ``X-Amz-Signature``)."""
    upper = name.upper()
    return is_secret_variable(name) or upper == "SIG" or "SIGNATURE" in upper


def is_capability_variable(name: str) -> bool:
    """A ``${VAR}`` whose value is a capability URL (``SLACK_WEBHOOK_URL``,
    ``ROLLBACK_HOOK_URL``): whoever has the URL may post to it."""
    return "HOOK" in name.upper()


def _encodings(value: str) -> set[str]:
    """The forms ``value`` takes on the way to an output: as it is, URL-quoted (in a query
    string or a path; also with lowercase escapes), JSON-escaped (in an echoed body), as
    ``repr()`` and ``ascii()`` show it (pytest's assertion details, a dict's repr),
    base64-encoded (a Basic credential)."""
    quoted = {quote(value, safe=""), quote_plus(value)}
    forms = {value, json.dumps(value)[1:-1], repr(value)[1:-1], ascii(value)[1:-1], *quoted,
             *(_PERCENT_ESCAPE.sub(lambda m: m.group().lower(), form) for form in quoted)}
    if len(value) >= MIN_ENCODED_LENGTH:
        forms.add(base64.b64encode(value.encode()).decode())
    return forms


_MAX_DEPTH = 12  # of nested objects redact_in_place goes into


class Redactor:
    """Collects secret values as they are learned and masks them in any text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []
        # The secrets by their first and by their last MIN_PIECE_LENGTH characters: where a
        # piece of one may stand beside a cut (see _redact_cut_pieces).
        self._by_start: dict[str, list[str]] = {}
        self._by_end: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        if not isinstance(value, str) or not value or value in self._secrets:
            return  # the last test without the lock: every request sends its known headers
        candidates = _encodings(value)
        scheme = _AUTH_SCHEME.match(value.strip())
        if scheme:
            candidates |= _encodings(scheme.group(1))
        if "\n" in value:
            # A secret of several lines (a PEM key) is shown line by line, indented or cut at
            # each line: each of its lines is masked on its own.
            candidates |= {line.strip() for line in value.splitlines()
                           if len(line.strip()) >= MIN_ENCODED_LENGTH}
        with self._lock:
            new = {c for c in candidates if len(c) >= MIN_SECRET_LENGTH} - self._secrets
            if new:
                self._secrets |= new
                for secret in new:
                    if len(secret) > MIN_PIECE_LENGTH:
                        self._by_start.setdefault(secret[:MIN_PIECE_LENGTH], []).append(secret)
                        self._by_end.setdefault(secret[-MIN_PIECE_LENGTH:], []).append(secret)
                # Longest first, so a secret that contains another is masked whole.
                self._ordered = sorted(self._secrets, key=len, reverse=True)

    def add_url(self, url: str) -> None:
        """The credentials in a URL: its user-info (``https://user:pass@host``), the values of
        credential query parameters (``?api_key=``, ``&sig=``), and the whole path and query of
        a capability URL (a chat webhook's, see ``_CAPABILITY_HOSTS``)."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        if parts.query:
            for name, value in parse_qsl(parts.query, keep_blank_values=False):
                if is_secret_query_parameter(name):
                    self.add(value)
            # And as it stands in the URL: a client quotes a query written in a path its own
            # way (httpx keeps "@" and "/"), and a server echoes that form.
            for pair in parts.query.split("&"):
                name, _, value = pair.partition("=")
                if value and is_secret_query_parameter(name):
                    self.add(value)
        host = (parts.hostname or "").lower()
        if any(host == known or host.endswith("." + known) for known in _CAPABILITY_HOSTS) \
                or any(host == known and parts.path.startswith(path)
                       for known, path in _CAPABILITY_PATHS):
            self.add_capability_url(url)
        if parts.password:
            self.add(parts.password)
            # And decoded, as the client sends it (``p%40ss`` is the password ``p@ss``).
            self.add(unquote(parts.password))
        if parts.username and parts.password:
            pair = f"{parts.username}:{parts.password}"
            self.add(pair)
            # What an HTTP client sends for user-info: the Basic credentials, base64-encoded.
            self.add(base64.b64encode(pair.encode()).decode())

    def add_capability_url(self, url: str) -> None:
        """A URL that is itself the credential: everything after the host is secret, so that
        it shows as ``https://hooks.slack.com***``."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        if not parts.netloc:
            return
        rest = url.split(parts.netloc, 1)[-1]
        for secret in (rest, parts.path):
            if secret.strip("/"):
                self.add(secret)

    def redact(self, text: str) -> str:
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        if self._ordered and ("..." in text or "\u2026" in text):
            text = self._redact_cut_pieces(text)
        if "=" in text:
            masked = _QUERY_CREDENTIAL.sub(r"\1" + MASK, text)
            # The same object when nothing changed (the value was masked already): callers
            # tell by identity whether a text held a secret.
            text = text if masked == text else masked
        return text

    def _redact_cut_pieces(self, text: str) -> str:
        """Mask the piece of a secret that ends where a text was shortened (a prefix of it
        before the "...") or starts there (a suffix after it): pytest shortens long values
        before the plugin sees them, so the whole secret is never there to be found."""
        pieces: list[tuple[int, int]] = []
        longest = len(self._ordered[0])
        for cut in _CUT.finditer(text):
            before = text[max(0, cut.start() - longest):cut.start()]
            after = text[cut.end():cut.end() + longest]
            prefix = self._prefix_at_end(before)
            suffix = self._suffix_at_start(after)
            if prefix:
                pieces.append((cut.start() - prefix, cut.start()))
            if suffix:
                pieces.append((cut.end(), cut.end() + suffix))
        if not pieces:
            return text
        out, done = [], 0
        for start, end in sorted(pieces):  # pieces may overlap: one mask for each run
            if start >= done:
                out += [text[done:start], MASK]
            done = max(done, end)
        return "".join([*out, text[done:]])

    def _prefix_at_end(self, text: str) -> int:
        """The length of the longest piece at the end of ``text`` that starts a secret (and
        is not the whole of it)."""
        for start in range(len(text) - MIN_PIECE_LENGTH + 1):
            group = self._by_start.get(text[start:start + MIN_PIECE_LENGTH])
            if group:
                piece = text[start:]
                if any(len(s) > len(piece) and s.startswith(piece) for s in group):
                    return len(piece)
        return 0

    def _suffix_at_start(self, text: str) -> int:
        """The length of the longest piece at the start of ``text`` that ends a secret (and
        is not the whole of it)."""
        for end in range(len(text), MIN_PIECE_LENGTH - 1, -1):
            group = self._by_end.get(text[end - MIN_PIECE_LENGTH:end])
            if group:
                piece = text[:end]
                if any(len(s) > len(piece) and s.endswith(piece) for s in group):
                    return len(piece)
        return 0

    def redact_data(self, value: Any) -> Any:
        """A JSON-safe copy of plain data (mappings, lists, scalars) with every string
        redacted; anything else becomes its ``str()``, as ``json.dumps(default=str)`` would.

        One pass, for every check's report details: converting through a JSON text and then
        redacting took three times as long. Data nested deeper than a JSON answer may be
        (:data:`~.jsondoc.MAX_DEPTH`) is cut there: walking it would exhaust the stack.
        """
        return self._redact_data(value, MAX_DEPTH)

    def _redact_data(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact(value) if self._ordered else value
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (Mapping, list, tuple)) and depth <= 0:
            return f"(data nested deeper than {MAX_DEPTH} levels)"
        if isinstance(value, Mapping):
            return {key if isinstance(key, str) else str(key): self._redact_data(item, depth - 1)
                    for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redact_data(item, depth - 1) for item in value]
        return self.redact(str(value))

    def redact_in_place(self, value: Any, depth: int = 0) -> Any:
        """``value`` with every string in it redacted; objects (pytest's failure
        representations, Allure's results), lists and dicts are changed in place so that
        whoever holds them sees the masked text, tuples are copied when something changed.

        For structured reports that other plugins render later: masking their text once
        rendered would lose their structure (the terminal's colours, JUnit's failure message).
        """
        if isinstance(value, str):
            return self.redact(value)
        if depth > _MAX_DEPTH or value is None or isinstance(value, (bool, int, float, bytes)):
            return value
        if isinstance(value, list):
            value[:] = [self.redact_in_place(item, depth + 1) for item in value]
            return value
        if isinstance(value, tuple):
            items = tuple(self.redact_in_place(item, depth + 1) for item in value)
            changed = any(a is not b for a, b in zip(items, value, strict=True))
            return (type(value)(*items) if hasattr(value, "_fields") else items) if changed \
                else value
        if isinstance(value, dict):
            for key, item in list(value.items()):
                value[key] = self.redact_in_place(item, depth + 1)
            return value
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict) and not isinstance(value, type):
            for name, item in list(attributes.items()):
                redacted = self.redact_in_place(item, depth + 1)
                if redacted is not item:
                    setattr(value, name, redacted)
        return value

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
        with self._lock:  # as they are: add() would encode the encoded forms again
            copy._secrets, copy._ordered = set(self._secrets), list(self._ordered)
            copy._by_start = {key: list(group) for key, group in self._by_start.items()}
            copy._by_end = {key: list(group) for key, group in self._by_end.items()}
        for name, value in environ.items():
            copy.add_variable(name, value)
        return copy

    def add_variable(self, name: str, value: str) -> None:
        """The value of the variable ``name``, if its name marks it as a secret (SPEC §3) or as
        a capability URL."""
        if is_secret_variable(name):
            self.add(value)
        elif is_capability_variable(name):
            self.add_capability_url(value)
