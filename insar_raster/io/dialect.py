"""CSV dialects met in the wild: ``,`` ``;`` or tab separators, decimal commas, Latin-1.

EGMStoolkit writes merged EGMS CSVs separated by semicolons, and European spreadsheet
exports use ``;`` with decimal commas (``12,5``). :func:`sniff` tells the dialect from the
header and the first lines so that both readers (in memory and streamed into the cache)
parse such files exactly as the comma version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Separators recognised, by preference when counts tie.
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab"}
#: Data lines looked at to detect decimal commas.
SNIFF_LINES = 50
_DECIMAL_COMMA = re.compile(rb"^\s*\"?[-+]?\d+,\d+(?:[eE][-+]?\d+)?\"?\s*$")


@dataclass(frozen=True)
class Dialect:
    """How a CSV is written.

    Attributes
    ----------
    delimiter : str
        ``","``, ``";"`` or ``"\\t"``.
    decimal : str
        Decimal mark of numbers, ``"."`` or ``","``.
    encoding : str
        ``"utf8"`` or ``"latin-1"`` (text that is not valid UTF-8).
    """

    delimiter: str = ","
    decimal: str = "."
    encoding: str = "utf8"

    @property
    def description(self) -> str:
        """E.g. ``"semicolon (;), decimal comma"``, for ``info``."""
        text = DELIMITER_NAMES[self.delimiter]
        if self.decimal == ",":
            text += ", decimal comma"
        if self.encoding != "utf8":
            text += f", {self.encoding}"
        return text

    def split_header(self, line: bytes) -> list[str]:
        """Column names of a header line (BOM, quotes and spaces removed)."""
        text = line.decode("utf-8-sig")  # headers are ASCII (UnicodeDecodeError: not a text CSV)
        return [h.strip().strip('"').strip() for h in text.strip("\r\n").split(self.delimiter)]

    def parse_options(self):
        """``pyarrow.csv.ParseOptions`` for this dialect."""
        import pyarrow.csv as pacsv

        return pacsv.ParseOptions(delimiter=self.delimiter)

    def convert_options(self, **kwargs):
        """``pyarrow.csv.ConvertOptions`` for this dialect (``kwargs`` passed on)."""
        import pyarrow.csv as pacsv

        return pacsv.ConvertOptions(decimal_point=self.decimal, **kwargs)

    def read_options(self, **kwargs):
        """``pyarrow.csv.ReadOptions`` for this dialect (``kwargs`` passed on)."""
        import pyarrow.csv as pacsv

        return pacsv.ReadOptions(encoding=self.encoding, **kwargs)


def sniff(head: bytes) -> Dialect:
    """Dialect of a CSV from its first bytes (header and a few lines).

    The delimiter is the candidate found most often in the header line (EGMS headers have
    tens of columns); numbers are read with a decimal comma when the separator is not a
    comma and the first lines hold fields such as ``12,5`` and no field such as ``12.5``.
    Data that is not UTF-8 under a UTF-8 header (e.g. Latin-1 pids) is read as Latin-1; a
    header that is not UTF-8 is left to the readers to refuse.
    """
    lines = head.split(b"\n")
    header = lines[0]
    counts = {d: header.count(d.encode()) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))
    decimal = "."
    if delimiter != ",":
        # The last line may be cut by the head's end: leave it out.
        body = lines[1 : SNIFF_LINES + 1] if len(lines) > SNIFF_LINES + 1 else lines[1:-1]
        fields = [f for line in body for f in line.split(delimiter.encode())]
        comma = sum(bool(_DECIMAL_COMMA.match(f)) for f in fields)
        dot = sum(bool(re.match(rb"^\s*\"?[-+]?\d*\.\d+", f)) for f in fields)
        if comma and not dot:
            decimal = ","
    try:
        head.decode("utf-8")
        encoding = "utf8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the head is still UTF-8.
        cut = exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
        encoding = "utf8" if cut or exc.start < len(header) else "latin-1"
    return Dialect(delimiter, decimal, encoding)


def sniff_path(path) -> Dialect | None:
    """Dialect of a CSV file, or of the first CSV inside a ``.zip``; None for other files."""
    import zipfile
    import zlib
    from pathlib import Path

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                member = next((m for m in zf.namelist() if m.lower().endswith(".csv")), None)
                if member is None:
                    return None
                with zf.open(member) as fh:
                    return sniff(fh.read(1 << 16))
        if suffix in (".csv", ".txt"):
            with open(path, "rb") as fh:
                return sniff(fh.read(1 << 16))
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):  # the readers say what is wrong
        return None
    return None
