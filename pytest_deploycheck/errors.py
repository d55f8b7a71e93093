"""One exception hierarchy for everything the plugin reports to its users."""

from __future__ import annotations


class DeploycheckError(Exception):
    """Base class of every error the plugin raises on purpose."""


class ConfigError(DeploycheckError):
    """Bad input in a YAML file: names the file, the line and the key."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f"{self.key}: " if self.key else ""
        return f"{where}: {key}{self.message}" if where else f"{key}{self.message}"


class UsageProblem(DeploycheckError):
    """A wrong option or setting; the pytest layer turns it into a usage error (exit 4)."""


class CheckError(DeploycheckError):
    """A check could not be carried out (network fault, bad response); fails its item only."""
