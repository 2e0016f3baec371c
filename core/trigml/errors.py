"""The exception hierarchy of trigml.

Every error the library raises on purpose derives from :class:`TrigmlError`. Each class
carries the exit code the command line uses for it: 2 for a problem with what the user
asked for (a config, a usage, a plugin set-up), 1 for a failure while doing the work.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "ModelError",
    "PluginError",
    "RunFailure",
    "TrigmlError",
    "UsageError",
]


class TrigmlError(Exception):
    """Root of all errors raised by trigml and its plugins.

    Parameters
    ----------
    message : str
        What failed, where, and how to fix it.
    hint : str, optional
        A fix to suggest on a separate line (a command to copy, a valid name).
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(TrigmlError):
    """The command line was used wrongly (a missing option, an existing output)."""

    exit_code = 2


class ConfigError(TrigmlError):
    """A configuration file is malformed or names something that does not exist.

    Parameters
    ----------
    message : str
        What is wrong.
    file : str, optional
        The configuration file.
    line : int, optional
        1-based line in ``file`` of the offending key.
    key : str, optional
        Dotted key of the offending value, such as ``lines[0].backend``.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message, hint=hint)


class PluginError(TrigmlError):
    """A plugin could not be loaded, or two plugins claim one component name."""

    exit_code = 2


class DataError(TrigmlError):
    """Input events are missing, unreadable or do not match the event schema."""

    exit_code = 1


class ModelError(TrigmlError):
    """A model artifact is missing, tampered with, or does not fit the data."""

    exit_code = 1


class RunFailure(TrigmlError):
    """The work itself failed (training, inference, writing outputs)."""

    exit_code = 1
