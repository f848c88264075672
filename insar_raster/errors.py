"""Exceptions that the CLI turns into one clear line on stderr.

``InputError`` means the user gave something we cannot use (exit code 2);
anything else is a failure of ours or of the system (exit code 1).

The library speaks Python: an error about an argument names the Python parameter
(``InputError(param="resolution", ...)``) and a hint that suggests a value writes it
as ``name=value`` (``"use method='nearest'"``). The command line, which knows its own
flags, prints those as ``--resolution`` and ``--method nearest``
(:func:`insar_raster.cli.options.flagged`). No library message names a flag.
"""

from __future__ import annotations

import os


def first_line(exc: BaseException, empty: str | None = None) -> str:
    """The first line of ``str(exc)`` (stripped), for a one-line message; when the text is
    empty, ``empty``, or the exception's type name when ``empty`` is None.

    >>> first_line(ValueError("bad value\\nmore detail"))
    'bad value'
    >>> first_line(KeyError()), first_line(KeyError(), empty="")
    ('KeyError', '')
    """
    text = str(exc).strip()
    if text:
        return text.splitlines()[0]
    return type(exc).__name__ if empty is None else empty


class InputError(Exception):
    """Bad input or usage: reported as ``<path or param>: <problem> (<hint>)``, exit code 2.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file the problem is about; named first in the message.
    problem : str
        What is wrong, in one line.
    hint : str, optional
        What the user can do about it; parameters as ``name=value``.
    param : str, optional
        The Python parameter the problem is about (named first when there is no
        ``path``), e.g. ``"resolution"``.
    """

    exit_code = 2

    def __init__(self, path=None, problem: str = "", hint: str | None = None, *, param: str | None = None):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        self.hint = hint
        self.param = param
        super().__init__(self.message)

    @property
    def subject(self) -> str | None:
        """What the message is about: the file, else the parameter."""
        return self.path or self.param

    @property
    def message(self) -> str:
        return self.format()

    def format(self, subject: str | None = None, translate=None) -> str:
        """The one-line message; ``subject`` replaces :attr:`subject`, ``translate`` maps
        the problem and hint text (the CLI's ``name=value`` -> ``--flag value``)."""
        subject = self.subject if subject is None else subject
        problem, hint = self.problem, self.hint
        if translate is not None:
            problem, hint = translate(problem), (translate(hint) if hint else hint)
        text = f"{subject}: {problem}" if subject else problem
        if hint:
            text += f" ({hint})"
        return text.replace("\n", " ")


class OutputExistsError(InputError):
    """The output exists and ``overwrite`` was not given."""

    def __init__(self, path):
        super().__init__(path, "output already exists", "pass overwrite=True to replace it")
