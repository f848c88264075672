"""Exceptions that the CLI turns into one clear line on stderr.

``InputError`` means the user gave something we cannot use (exit code 2);
anything else is a failure of ours or of the system (exit code 1).
"""
from __future__ import annotations

import os


class InputError(Exception):
    """Bad input or usage: reported as ``<path>: <problem> (<hint>)``, exit code 2.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file (or option) the problem is about; named first in the message.
    problem : str
        What is wrong, in one line.
    hint : str, optional
        What the user can do about it.
    """

    exit_code = 2

    def __init__(self, path, problem: str, hint: str | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path else self.problem
        if self.hint:
            text += f" ({self.hint})"
        return text.replace("\n", " ")


class OutputExistsError(InputError):
    """The output exists and ``overwrite`` was not given."""

    def __init__(self, path):
        super().__init__(path, "output already exists", "pass --overwrite to replace it")
