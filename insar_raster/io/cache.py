"""Streaming ingestion: EGMS CSV tiles -> a columnar cache (Parquet points + Zarr values).

A 100 km EGMS L2b tile holds millions of MPs x 250-300 epochs: several GB of CSV. The
cache is built in one streaming pass that never holds more than one block of text:

- the CSV is cut into blocks of ``block_bytes`` at line ends and each block is parsed by
  ``pyarrow.csv.read_csv`` (multi-threaded) into a record batch;
- the batch's displacement columns become rows of a float32 ``values`` matrix
  (n_points, n_times) in Zarr, chunked ``(ROW_CHUNK, COL_CHUNK)`` so that both a block
  of MPs and a block of epochs read few chunks; writes run in a background thread while
  the next block parses;
- coordinates (reprojected to the output CRS), pid and per-point attributes go to
  ``points.parquet``; dates, CRS and provenance to ``meta.json``.

The cache folder is named by a hash of the input files (path, size, mtime; with the XML
header file beside an extracted CSV) and the reading options, so re-running on the same inputs reuses it, and changing a file or an
option builds a new one. It is written to a temporary folder and renamed when complete:
an interrupted build leaves nothing that could be mistaken for a cache.

:func:`open_points_cache` returns the usual points Dataset (see
:mod:`insar_raster.io.points`) with a dask-backed ``displacement``: nothing is loaded until
the gridder asks for a block.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr
from pyproj import CRS, Transformer

from insar_raster.errors import InputError
from insar_raster.io import egms, sanitize, sources
from insar_raster.io.budget import check_budget, estimate_points_cache
from insar_raster.io.dialect import sniff

log = logging.getLogger("insar_raster")

#: 2: per-MP geometry columns, geometry attrs, epochs_dropped; 3: re-referenced to the first
#: kept epoch; 4: the build's warnings, said again on reuse (``warnings``, ``rows_dropped``,
#: ``duplicate_pids``).
CACHE_VERSION = 4
#: MPs per Zarr chunk row-wise, and epochs per chunk column-wise (65536 x 8 x 4 B = 2 MiB).
ROW_CHUNK = 65536
COL_CHUNK = 8
#: Text parsed per record batch.
DEFAULT_BLOCK_BYTES = 64 * 2**20
#: ``insar-raster grid`` uses the cache automatically above this much CSV.
AUTO_CACHE_BYTES = 256 * 2**20


def default_cache_dir() -> Path:
    """``$INSAR_RASTER_CACHE``, else ``$XDG_CACHE_HOME/insar-raster``, else ``~/.cache/insar-raster``."""
    if os.environ.get("INSAR_RASTER_CACHE"):
        return Path(os.environ["INSAR_RASTER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "insar-raster"


def cache_key(files, **options) -> str:
    """Hash of the input files (resolved path, size, mtime), the XML header file beside an
    extracted CSV (it may state the level: :func:`insar_raster.io.egms.sibling_xml`) and
    the reading options."""
    described = []
    for f in files:
        xml = egms.sibling_xml(f) if Path(f).suffix.lower() != ".zip" else None
        for path in (Path(f), xml) if xml is not None else (Path(f),):
            st = path.stat()
            described.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
    text = json.dumps(
        {
            "version": CACHE_VERSION,
            "files": described,
            "options": {k: None if v is None else str(v) for k, v in sorted(options.items())},
        }
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def is_streamable(paths) -> bool:
    """Whether all inputs are CSV files or zip archives of CSVs (what the cache streams)."""
    return all(f.suffix.lower() in sources.CSV_SUFFIXES | {".zip"} for f in sources.expand_inputs(paths))


def input_bytes(paths) -> int:
    """Total size of the input files (bytes), uncompressed for the CSVs inside zips (an
    8 MB zip may hold gigabytes of rows)."""
    return sum(_text_bytes(f) for f in sources.expand_inputs(paths))


def _text_bytes(path: Path, member: str | None = None) -> int:
    """Uncompressed size of a file, of the CSVs of a zip, or of one zip ``member``."""
    import zipfile

    if path.suffix.lower() != ".zip":
        return path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            return sum(
                i.file_size
                for i in zf.infolist()
                if (i.filename == member if member else i.filename.lower().endswith(".csv"))
            )
    except zipfile.BadZipFile:
        return path.stat().st_size


# --------------------------------------------------------------------------- streaming CSV


def _open_sources(path: Path):
    """Yield (display name, binary file object) for a CSV or each CSV inside a zip."""
    yield from sources.csv_sources(path, open_files=True)


def _read_header(fh, name) -> tuple[list[str], bytes]:
    """Column names and the raw first line, with the checks read_points makes."""
    first = fh.readline(1 << 22)  # bounded: a file without LF line ends is one "line"
    return egms.split_header(first, name), first


def _blocks(fh, block_bytes: int):
    """Yield CSV data (no header) of about ``block_bytes``, cut at line ends.

    Regular files are cut by seeking, so each block is read once into its own buffer
    (no concatenation copies); streams (zip members) carry the partial last line over.
    """
    import zipfile

    if fh.seekable() and not isinstance(fh, zipfile.ZipExtFile):  # zip members seek by re-inflating
        while True:
            start = fh.tell()
            fh.seek(block_bytes, os.SEEK_CUR)
            fh.readline()  # to the end of the line (b"" past the end of the file)
            end = fh.tell()
            fh.seek(start)
            data = fh.read(end - start)
            if not data or (len(data) < 4096 and not data.strip()):  # end (or trailing blank lines)
                return
            yield data
    rest = b""
    while True:
        data = fh.read(block_bytes)
        if not data:
            if rest.strip():
                yield rest
            return
        data = rest + data
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        yield data[: cut + 1]
        rest = data[cut + 1 :]


class _Source:
    """One CSV (file or zip member): its header, epochs and coordinate columns."""

    def __init__(self, path: Path, name: str, columns: list[str], input_crs, dialect=None, allow_dates=False):
        self.path, self.name, self.columns = path, name, columns
        self.dialect = dialect if dialect is not None else sniff(b",")
        self.rows_estimate = 0  # set by _scan_sources
        self.date_cols, times = sources.classify_columns(columns, name, allow_dates)
        self.times = np.array(times, dtype="datetime64[D]")
        self.xc, self.yc, self.crs = sources.coordinate_columns(columns, name, input_crs)
        self.product = egms.product_label(columns)
        self.geometry = egms.geometry_of(name, columns)  # pass direction: from the first rows (_scan_sources)


def _scan_sources(files, input_crs, allow_dates=False) -> list[_Source]:
    found = []
    for path in files:
        if path.suffix.lower() not in sources.CSV_SUFFIXES | {".zip"}:
            raise InputError(
                path,
                "only CSV inputs (or zips of CSVs) can be streamed into the cache",
                "read it with read_points instead",
            )
        for name, fh in _open_sources(path):
            columns, first = _read_header(fh, name)
            sample = fh.read(1 << 16)
            dialect = sniff(first + sample)  # the first lines tell a decimal comma
            source = _Source(path, name, columns, input_crs, dialect, allow_dates)
            # Rows expected (size before work): text size over the sample's mean line length.
            lines = sample.count(b"\n") if len(sample) == 1 << 16 else sample.count(b"\n") + 1
            size = _text_bytes(path, name.split("!", 1)[1] if "!" in name else None)
            source.rows_estimate = int((size - len(first)) / (len(sample) / max(lines, 1))) if sample.strip() else 0
            found.append(source)
        if any(c.lower() in ("track_angle", "los_east") for s in found if s.path == path for c in s.columns):
            # The pass direction from the first rows; the level (from the name, the header
            # or the zip's XML header file) is the one _Source found.
            for (_name, _columns, sampled), s in zip(egms.probe_samples(path), [s for s in found if s.path == path]):
                direction = egms.pass_direction_of(sampled.get("track_angle"), sampled.get("los_east"))
                s.geometry = dataclasses.replace(s.geometry, pass_direction=direction)
    return found


def _parse_block(text: bytes, source: _Source, epoch_cols: list[str], name: str):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    keep_meta = [
        c for c in source.columns if c.lower() in {"pid", source.xc.lower(), source.yc.lower(), *egms.POINT_COLUMNS}
    ]
    types = {c: pa.float32() for c in epoch_cols}
    for c in keep_meta:
        types[c] = pa.string() if c.lower() == "pid" else pa.float64()
    try:
        table = pacsv.read_csv(
            pa.BufferReader(text),
            read_options=source.dialect.read_options(use_threads=True, block_size=1 << 20, column_names=source.columns),
            parse_options=source.dialect.parse_options(),
            convert_options=source.dialect.convert_options(column_types=types, include_columns=keep_meta + epoch_cols),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as exc:
        raise sources.arrow_error(name, exc, source.columns) from None
    return table


class _ValuesWriter:
    """Fill row-chunks of the Zarr values array straight from Arrow columns.

    The array is (n_points, n_times) float32 in Fortran order, so one epoch's column of a
    chunk is contiguous: every Arrow column is copied once, into the chunk buffer, and the
    buffer is written as is while the next one fills (one write in flight).
    """

    def __init__(self, path: Path, n_times: int):
        import zarr

        self.array = zarr.create_array(
            store=str(path),
            shape=(0, n_times),
            dtype="float32",
            chunks=(ROW_CHUNK, min(COL_CHUNK, n_times)),
            zarr_format=2,
            compressors=None,
            fill_value=np.nan,
            order="F",
            # Float values are noise-like; compression would cost more CPU than it saves disk.
        )
        self.n_times = n_times
        self.buffers = [self._new_buffer(), None]
        self.fill = 0
        self.written = 0
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.pending = None

    def _new_buffer(self):
        return np.empty((self.n_times, ROW_CHUNK), np.float32).T  # F-ordered (ROW_CHUNK, n_times)

    def append_columns(self, columns):
        """Append rows given as one float32 numpy array per epoch (equal lengths)."""
        n = len(columns[0])
        done = 0
        while done < n:
            k = min(n - done, ROW_CHUNK - self.fill)
            buf = self.buffers[0]
            for j, col in enumerate(columns):
                buf[self.fill : self.fill + k, j] = col[done : done + k]
            self.fill += k
            done += k
            if self.fill == ROW_CHUNK:
                self._write()

    def _write(self):
        if self.fill == 0:
            return
        if self.pending is not None:
            self.pending.result()  # the other buffer is free again
        start, n = self.written, self.fill
        self.written += n
        self.array.resize((self.written, self.n_times))
        block = self.buffers[0][:n]
        self.pending = self.pool.submit(self.array.__setitem__, slice(start, start + n), block)
        self.buffers = [self.buffers[1] if self.buffers[1] is not None else self._new_buffer(), self.buffers[0]]
        self.fill = 0

    def close(self) -> int:
        self._write()
        if self.pending is not None:
            self.pending.result()
        self.pool.shutdown()
        return self.written


class _Scan(NamedTuple):
    """What the scan of the inputs decided before any row is read."""

    files: list[Path]
    sources: list[_Source]
    geometry: egms.Geometry | None
    times: np.ndarray  # epochs kept: common to all inputs, within [start, end]
    epochs_dropped: int  # epochs not in every input
    rows_estimate: int


def scan_inputs(paths, input_crs=None, start=None, end=None, allow_dates: bool = False) -> _Scan:
    """Step 1 of :func:`build_points_cache`: headers and first lines of every CSV (one
    geometry, epochs common to all, ``[start, end]``, rows expected); nothing streamed."""
    files = sources.expand_inputs(paths)
    found = _scan_sources(files, input_crs, allow_dates)
    egms.check_single_release([s.name for s in found], [s.columns for s in found])
    geometry = egms.check_single_geometry([(s.name, s.geometry) for s in found])
    common, dropped = egms.common_epochs([s.name for s in found], [s.times for s in found])
    times = common[sources.select_epochs(common, start, end)]
    return _Scan(files, found, geometry, times, dropped, sum(s.rows_estimate for s in found))


def _drop_missing(table, epoch_cols: list[str]):
    """Rows with a value missing (empty, or NaN written as text) at a kept epoch dropped:
    ``(table, epoch columns as float32 arrays, mask of the rows kept)``."""
    import pyarrow as pa

    good = np.ones(table.num_rows, bool)
    for c in epoch_cols:
        col = table.column(c)
        if col.null_count:
            good &= col.is_valid().to_numpy(zero_copy_only=False)
    if not good.all():
        table = table.filter(pa.array(good))
    columns = [table.column(c).to_numpy(zero_copy_only=False) for c in epoch_cols]
    finite = np.ones(table.num_rows, bool)
    for col in columns:
        finite &= np.isfinite(col)
    if not finite.all():
        table = table.filter(pa.array(finite))
        columns = [col[finite] for col in columns]
        good[np.flatnonzero(good)[~finite]] = False
    return table, columns, good


def _check_first_block(table, source: _Source, name: str) -> None:
    """Whole-file mistakes, refused from the first block before streaming on: lat/lon
    swapped or coordinates of another frame, rows mostly sharing a pid."""
    x = table.column(source.xc).to_numpy(zero_copy_only=False)
    y = table.column(source.yc).to_numpy(zero_copy_only=False)
    sanitize.check_coordinate_frame(x, y, source.crs, name)
    pid_col = next((c for c in table.column_names if c.lower() == "pid"), None)
    if pid_col is not None:
        sanitize.check_pid_majority(table.column(pid_col), name, what="rows of the first block")


class _PointColumns:
    """Per-MP columns held in memory while the values stream to Zarr: coordinates (in
    the output CRS, chosen from the first rows unless ``crs`` is given), pids and the
    per-point attributes of :data:`insar_raster.io.egms.POINT_COLUMNS`."""

    def __init__(self, crs=None):
        self.crs, self.out_crs = crs, None
        self.xs, self.ys, self.pids = [], [], []
        self.extras = {a: [] for a in egms.POINT_COLUMNS}

    def add(self, table, source: _Source, name: str, row_numbers: np.ndarray) -> None:
        """Append the rows of ``table`` (``row_numbers``: their rows in the file, for
        the pids generated when the file has none)."""
        import pyarrow as pa

        x = table.column(source.xc).to_numpy(zero_copy_only=False)
        y = table.column(source.yc).to_numpy(zero_copy_only=False)
        if self.out_crs is None:  # CSV inputs are EGMS layouts
            self.out_crs = sources.choose_output_crs(source.crs, x, y, crs=self.crs, egms=True)
        if source.crs != self.out_crs:
            x, y = Transformer.from_crs(source.crs, self.out_crs, always_xy=True).transform(x, y)
        lower = {c.lower(): c for c in table.column_names}
        if "pid" in lower:
            self.pids.extend(table.column(lower["pid"]).cast(pa.string()).chunks)
        else:
            stem = Path(name.split("!")[-1]).stem
            self.pids.append(pa.array(np.char.add(f"{stem}:", row_numbers.astype(str))))
        for attr in egms.POINT_COLUMNS:
            if attr in lower:
                self.extras[attr].append(table.column(lower[attr]).to_numpy(zero_copy_only=False).astype(np.float32))
        self.xs.append(np.asarray(x, np.float64))
        self.ys.append(np.asarray(y, np.float64))


def stream_rows(scan: _Scan, folder: Path, crs=None, block_bytes: int = DEFAULT_BLOCK_BYTES, progress=False):
    """Step 2 of :func:`build_points_cache`: every CSV block by block, the values of the
    kept epochs into ``folder/values.zarr`` (rows with a missing value dropped), the
    per-MP columns kept in memory. Returns ``(point columns, points written, rows dropped)``."""
    from insar_raster.progress import progress_bar

    writer = _ValuesWriter(folder / "values.zarr", len(scan.times))
    kept, dropped = _PointColumns(crs), 0
    bar = progress_bar(total=sum(f.stat().st_size for f in scan.files), desc="read", disable=not progress, unit="B")
    bar.unit_scale = True
    for path in scan.files:
        for name, fh in _open_sources(path):
            source = next(s for s in scan.sources if s.name == name)
            by_date = dict(zip(source.times, source.date_cols))
            epoch_cols = [by_date[t] for t in scan.times]
            # Its own first epoch dropped (start, or not in every input): re-referenced as in memory.
            shift = len(scan.times) > 0 and np.min(source.times) < np.datetime64(scan.times[0], "D")
            _read_header(fh, name)  # skip it: blocks are parsed with the column names
            rows_here = dropped_here = raw_rows = 0
            for text in _blocks(fh, block_bytes):
                table = _parse_block(text, source, epoch_cols, name)
                bar.update(len(text))
                del text
                if table.num_rows == 0:
                    continue
                if raw_rows == 0:
                    _check_first_block(table, source, name)
                # Unusable coordinates (NaN, (0, 0), far away) are dropped when the cache
                # is opened (sanitize.drop_coordinate_outliers), so keep_outliers needs no rebuild.
                row_numbers = raw_rows + np.arange(table.num_rows)  # for generated pids
                raw_rows += table.num_rows
                table, columns, good = _drop_missing(table, epoch_cols)
                dropped_here += int((~good).sum())
                if table.num_rows == 0:
                    continue
                if shift:
                    columns = [col - columns[0] for col in columns]
                kept.add(table, source, name, row_numbers[good])
                rows_here += table.num_rows
                writer.append_columns(columns)
                del columns, table
            if rows_here == 0 and dropped_here == 0:
                raise InputError(name, "no data rows (header only)")
            egms.warn_spreadsheet_row_limit(name, raw_rows)
            dropped += dropped_here
    bar.close()
    return kept, writer.close(), dropped


def finalise_cache(
    scan: _Scan,
    kept: _PointColumns,
    n_points: int,
    dropped: int,
    folder: Path,
    seconds: float,
    warned: list[str] | None = None,
):
    """Step 3 of :func:`build_points_cache`: the warnings and refusals that need every row
    (rows dropped, no valid point, pids repeated), then ``points.parquet`` (with the
    first-of-each-pid mask) and ``meta.json`` in ``folder``, with ``warned`` (the text of
    the build's warnings, said again whenever the cache is reused: :func:`cached_points`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    egms.warn_dropped_rows(dropped)
    if n_points == 0:
        raise InputError(scan.sources[0].name, egms.NO_VALID_POINT)
    pid = pa.chunked_array(kept.pids, type=pa.string()).combine_chunks()
    columns = {"pid": pid, "x": np.concatenate(kept.xs), "y": np.concatenate(kept.ys)}
    columns.update({a: np.concatenate(v) for a, v in kept.extras.items() if v and sum(map(len, v)) == n_points})
    if pc_has_duplicates(pid):
        sanitize.check_pid_majority(pid, scan.sources[0].name if len(scan.sources) == 1 else "inputs")
    keep = _first_occurrence(pid, columns["x"], columns["y"])
    if keep is not None:
        columns["keep"] = keep
    pq.write_table(pa.table(columns), folder / "points.parquet")
    products = {s.product for s in scan.sources}
    meta = {
        "version": CACHE_VERSION,
        "n_points": n_points,
        "times": [str(t) for t in scan.times],
        "crs_wkt": CRS.from_user_input(kept.out_crs).to_wkt(),
        "source": ", ".join(egms.display_name(s.name) for s in scan.sources),
        "product": products.pop() if len(products) == 1 else "EGMS",
        "epochs_dropped": scan.epochs_dropped,
        "rows_dropped": dropped,
        "duplicate_pids": 0 if keep is None else int(len(keep) - np.count_nonzero(keep)),
        "warnings": list(warned or []),  # said again whenever the cache is reused
        **egms.geometry_attrs(scan.geometry),
        "seconds": round(seconds, 2),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


def build_points_cache(
    paths,
    folder,
    crs=None,
    input_crs=None,
    start=None,
    end=None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: bool = False,
    allow_dates: bool = False,
    max_output_size: int | None = None,
) -> Path:
    """Stream EGMS CSV tiles into a cache folder (module docstring); returns ``folder``.

    Same semantics as :func:`insar_raster.io.points.read_points` (the rules of
    :mod:`insar_raster.io.egms`): one geometry, epochs common to all tiles,
    ``[start, end]`` selection, rows with NaN dropped (warned), duplicate pids across
    tiles dropped (warned), coordinates reprojected to ``crs``, dates checked
    (``allow_dates``), a file whose rows mostly share a pid refused. Rows with unusable
    coordinates are kept in the cache and dropped when it is opened by :func:`cached_points`.
    Before streaming, the cache's size is estimated and refused when it would not fit in
    the free space of ``folder``'s parent or exceed ``max_output_size`` bytes
    (:func:`insar_raster.io.budget.check_budget`).

    Three steps: :func:`scan_inputs` (headers, epochs, size), :func:`stream_rows` (the
    values into Zarr), :func:`finalise_cache` (Parquet points, metadata); the folder is
    built under a temporary name and renamed when complete.
    """
    folder = Path(folder)
    with _noting_warnings() as warned:
        scan = scan_inputs(paths, input_crs, start, end, allow_dates)
        est = estimate_points_cache(scan.rows_estimate, len(scan.times), block_bytes)
        log.debug("%s", est.describe())
        check_budget(est, folder, max_output_size=max_output_size)

        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        t0 = time.perf_counter()
        try:
            kept, n_points, dropped = stream_rows(scan, tmp, crs, block_bytes, progress)
            finalise_cache(scan, kept, n_points, dropped, tmp, time.perf_counter() - t0, warned)
            if folder.exists():  # a concurrent run finished first: keep its cache
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    log.info("cached %d MPs x %d epochs in %s (%.1f s)", n_points, len(scan.times), folder, time.perf_counter() - t0)
    return folder


@contextlib.contextmanager
def _noting_warnings():
    """Yield a list that receives the text of each UserWarning this thread raises in the
    block (ours: rows, pids and epochs dropped...), whatever the filters in force, for the
    cache to say again when reused. Every warning raised in the block is then re-issued,
    in order, under the caller's filters, so the build shows what it always showed."""
    noted, texts = [], []
    builder = threading.get_ident()

    def note(message, category, filename, lineno, file=None, line=None):
        noted.append((message, category, filename, lineno))
        if category is UserWarning and threading.get_ident() == builder:
            texts.append(str(message))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = note
            yield texts
    finally:
        for message, category, filename, lineno in noted:
            # The module that raised it, for its registry: "default" still shows a warning once.
            module = next((m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == filename), None)
            if module is None:
                warnings.warn_explicit(message, category, filename, lineno)
            else:
                registry = vars(module).setdefault("__warningregistry__", {})
                warnings.warn_explicit(message, category, filename, lineno, module.__name__, registry, vars(module))


def pc_has_duplicates(pid) -> bool:
    """Whether an Arrow array of pids repeats one (no copy to Python objects)."""
    import pyarrow.compute as pc

    return pc.count_distinct(pid).as_py() != len(pid)


def _first_occurrence(pid, x, y) -> np.ndarray | None:
    """Mask keeping the first of each pid (warned, telling reused pids by ``x``/``y``), or
    None when all pids are unique."""
    import pyarrow.compute as pc

    if pc.count_distinct(pid).as_py() == len(pid):  # the usual case, without a pandas copy
        return None
    return egms.first_of_each_pid(pid.to_numpy(zero_copy_only=False), x, y)


def open_points_cache(folder) -> xr.Dataset:
    """Points Dataset (layout of :mod:`insar_raster.io.points`) over a cache folder.

    ``displacement`` is a dask array reading the Zarr values lazily; coordinates and
    per-point attributes are in memory.
    """
    import dask.array as da
    import pyarrow.parquet as pq

    folder = Path(folder)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        table = pq.read_table(folder / "points.parquet")
        values = da.from_zarr(str(folder / "values.zarr"))
    except Exception as exc:
        raise InputError(
            folder, f"not a readable points cache: {type(exc).__name__}: {exc}", "delete the folder to rebuild it"
        ) from None
    if meta.get("version") != CACHE_VERSION or values.shape[0] != meta["n_points"]:
        raise InputError(folder, "points cache from another version or incomplete", "delete the folder to rebuild it")
    names = set(table.column_names)
    extra = {a: table.column(a).to_numpy() for a in egms.POINT_COLUMNS if a in names}
    ds = sources.make_points(
        table.column("x").to_numpy(),
        table.column("y").to_numpy(),
        values,
        np.array(meta["times"], dtype="datetime64[D]"),
        CRS.from_wkt(meta["crs_wkt"]),
        pid=table.column("pid").to_numpy(zero_copy_only=False),
        extra=extra,
        attrs={
            "source": meta["source"],
            "product": meta["product"],
            "cache": str(folder),
            "epochs_dropped": meta.get("epochs_dropped", 0),
            **{k: meta[k] for k in ("product_level", "track", "pass_direction") if k in meta},
        },
    )
    if "keep" in names:
        ds = ds.isel(point=np.flatnonzero(table.column("keep").to_numpy(zero_copy_only=False)))
    return ds


def cached_points(
    paths,
    crs=None,
    input_crs=None,
    start=None,
    end=None,
    cache_dir=None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: bool = False,
    allow_dates: bool = False,
    keep_outliers: bool = False,
    max_output_size: int | None = None,
) -> xr.Dataset:
    """Points of EGMS CSV tiles through the cache: built on first use, reused after.

    Parameters
    ----------
    paths, crs, input_crs, start, end, allow_dates, keep_outliers
        As :func:`insar_raster.io.points.read_points`.
    cache_dir : path, optional
        Folder holding caches (default :func:`default_cache_dir`).
    block_bytes : int
        CSV text per record batch; bounds the reading memory.
    max_output_size : int, optional
        Largest cache built (bytes, estimated before streaming); the free space is always checked.

    Returns
    -------
    xarray.Dataset
        Points layout with a dask-backed ``displacement`` (see :func:`open_points_cache`).
    """
    files = sources.expand_inputs(paths, say_copies=True)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(
        files, crs=crs, input_crs=input_crs, start=start, end=end, **({"allow_dates": True} if allow_dates else {})
    )
    folder = root / f"points-{key}"
    if (folder / "meta.json").exists():
        log.info("reusing points cache %s", folder)
        said = []
        with contextlib.suppress(ValueError, OSError, AttributeError):  # an unreadable cache is named when opened
            said = [str(text) for text in json.loads((folder / "meta.json").read_text()).get("warnings", [])]
        for text in said:  # what the build warned about (rows, pids, epochs dropped...), said again
            warnings.warn(text, UserWarning, stacklevel=2)
    else:
        build_points_cache(
            files,
            folder,
            crs=crs,
            input_crs=input_crs,
            start=start,
            end=end,
            block_bytes=block_bytes,
            progress=progress,
            allow_dates=allow_dates,
            max_output_size=max_output_size,
        )
    return sanitize.drop_coordinate_outliers(open_points_cache(folder), keep_outliers=keep_outliers)


def use_cache(paths, cache="auto", cache_dir=None) -> bool:
    """Whether to read ``paths`` through the points cache.

    Only CSV inputs (and zips of them) can be streamed. ``cache=True`` streams them,
    ``False`` never does; ``"auto"`` streams when a ``cache_dir`` is given or the CSV
    text is larger than :data:`AUTO_CACHE_BYTES` (256 MB), where reading it whole into
    memory starts to hurt.
    """
    if cache not in (True, False, "auto"):
        raise InputError(None, f"expected True, False or 'auto', got {cache!r}", param="cache")
    if not cache or not is_streamable(paths):
        return False
    return cache is True or cache_dir is not None or input_bytes(paths) > AUTO_CACHE_BYTES
