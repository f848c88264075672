"""Library messages name Python parameters; on the command line, show the flags instead.

The library never names a command-line flag (it does not know it runs under one): its
errors name the parameter (``InputError(param="resolution")``) and its hints, warnings
and log lines write ``name=value`` (``keep_outliers=True``, ``method='nearest'``).
:class:`Flags`, built from a command's own parser, rewrites those for that command's
one-line messages.
"""

from __future__ import annotations

import re

# ``name=value`` in a library message: a Python parameter and the value to give it.
_ASSIGNMENT = re.compile(r"(?<![\w.+-])([a-z][a-z0-9_]*)=('[^']*'|\"[^\"]*\"|[^\s;)]+?)(?=[,.:]?(?:[\s;)]|$))")
# A bare Python name (rewritten only when it has an underscore and is a parameter).
_BARE = re.compile(r"(?<![-\w./])([a-z][a-z0-9]*_[a-z0-9_]+)(?![\w=]|\.\w)")


class Flags:
    """A command's map from Python parameter names to its flags, for printing library
    messages (which name parameters) in the command line's words.

    Built from the command's parser (each option's ``dest`` -> its long flag) plus the
    command's ``param_flags`` default, for library parameters whose name differs from
    the option's (``pretrained`` -> ``--model``).
    """

    def __init__(self, mapping: dict):
        self.mapping = dict(mapping)

    @classmethod
    def of(cls, parser) -> "Flags":
        mapping = {}
        for action in parser._actions:
            longs = [o for o in action.option_strings if o.startswith("--")]
            if longs and action.dest not in ("help", "version"):
                mapping.setdefault(action.dest, max(longs, key=len))
        mapping.update(parser.get_default("param_flags") or {})
        return cls(mapping)

    def flag(self, param: str) -> str:
        """``resolution`` -> ``--resolution``, ``start/end`` -> ``--start/--end`` (unknown names are kept)."""
        return "/".join(self.mapping.get(p, p) for p in param.split("/"))

    def translate(self, text: str) -> str:
        """``"use method='nearest'"`` -> ``"use --method nearest"``; ``overwrite=True`` ->
        ``--overwrite``; a bare parameter name with an underscore (``max_output_size``, a
        Python name in any sentence) -> its flag. Other words are left alone."""

        def assignment(match):
            name, value = match.group(1), match.group(2)
            if name not in self.mapping:
                return match.group(0)
            value = value.strip("'\"")
            return self.mapping[name] if value == "True" else f"{self.mapping[name]} {value}"

        def bare(match):
            name = match.group(1)
            return self.mapping[name] if "_" in name and name in self.mapping else name

        return _BARE.sub(bare, _ASSIGNMENT.sub(assignment, text))

    def message(self, exc) -> str:
        """An :class:`~insar_raster.errors.InputError`'s line, with flags for parameters."""
        subject = exc.path or (self.flag(exc.param) if exc.param else None)
        return exc.format(subject, self.translate)
