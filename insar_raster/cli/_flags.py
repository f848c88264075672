"""Library messages name Python parameters; on the command line, show the options instead.

The library never names a command-line option (it does not know it runs under one): its
errors and warnings say e.g. ``keep_outliers=True``. :func:`to_flags` rewrites the
parameters that have an option of the same meaning, for the CLI's one-line messages.
"""
from __future__ import annotations

import re

#: Python parameter -> command-line option, where the names differ only by spelling.
PARAMS = ("allow_dates", "keep_outliers", "force", "max_output_size", "resolution", "input_crs")

_BOOL = re.compile(r"\b(" + "|".join(PARAMS) + r")=True\b")
_VALUE = re.compile(r"\b(" + "|".join(PARAMS) + r")=(?!True\b)")
_NAME = re.compile(r"(?<![-\w])(" + "|".join(PARAMS) + r")\b(?!=)")


def flag(param: str) -> str:
    """``keep_outliers`` -> ``--keep-outliers``."""
    return "--" + param.replace("_", "-")


def to_flags(text: str) -> str:
    """``"...; keep_outliers=True keeps them"`` -> ``"...; --keep-outliers keeps them"``;
    ``resolution=20`` -> ``--resolution 20``; a bare ``max_output_size`` -> its option."""
    text = _BOOL.sub(lambda m: flag(m[1]), text)
    text = _VALUE.sub(lambda m: flag(m[1]) + " ", text)
    return _NAME.sub(lambda m: flag(m[1]) if m[1] in ("allow_dates", "keep_outliers", "max_output_size", "input_crs")
                     else m[1], text)
