"""One exception type for every input problem, so the CLI can print it as a single line."""

from __future__ import annotations

from pathlib import Path


class MMGEFError(ValueError):
    """A user-facing problem with input data, configuration or a run directory.

    The message always says where (file, line or key) and what to do about it. It is kept to one
    line (a library's multi-line text inside it is folded), so the CLI prints exactly one line.
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(" ".join(str(message).split()))


class DataError(MMGEFError):
    """Invalid or inconsistent data files."""

    def __init__(self, path: str | Path, problem: str, fix: str, line: int | None = None) -> None:
        where = f"{path}" if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {problem}. Fix: {fix}")
        self.path = str(path)
        self.line = line


class ConfigError(MMGEFError):
    """Invalid configuration: unknown key, wrong type, value out of range."""
