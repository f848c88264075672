"""NetCDF writing with zlib on all cores.

HDF5 (under netCDF4) compresses chunk by chunk on one thread, behind one lock: writing a
cube to ``.nc`` took longer than gridding it (5M MPs x 300 epochs: 62 s of 109 s, 2 cores).
Here the file is laid out by xarray/netCDF4 as usual, so metadata, CF attributes,
dimensions and chunking are exactly theirs, with the float32 (time, y, x) variables first
written as fill-only chunks (constant chunks deflate to almost nothing). Then each chunk
of real values is byte-shuffled and deflated in the dask worker that computed it (numpy
and zlib release the GIL) and stored as is with h5py's ``write_direct_chunk``: the same
bytes HDF5's own shuffle + deflate filters would write, which every netCDF/HDF5 reader
(GDAL, QGIS, ncview, xarray) decodes as usual.

Falls back to the plain ``to_netcdf`` when h5py is missing, a dask.distributed client or a
process scheduler is active (the open HDF5 handle cannot travel to other processes), or
the laid-out variable does not have the expected filters.
"""

from __future__ import annotations

import sys
import threading
import zlib

import numpy as np
import xarray as xr


class _NotApplicable(Exception):
    """The direct path cannot write this dataset; use the plain one."""


def _local_threads() -> bool:
    """Whether dask will run this process's tasks on local threads."""
    import dask

    if dask.config.get("scheduler", None) not in (
        None,
        "threads",
        "threading",
        "sync",
        "synchronous",
        "single-threaded",
    ):
        return False
    if "distributed" in sys.modules:  # a client can only exist once distributed is imported
        from distributed import default_client

        try:
            default_client()
            return False
        except ValueError:
            pass
    return True


class ChunkWriter:
    """``da.store`` target: compresses each block (one HDF5 chunk) and writes it raw.

    Parameters
    ----------
    dataset : h5py.Dataset
        Chunked, shuffle + deflate, little-endian float32; blocks must be its chunks.
    lock : threading.Lock
        Serialises the HDF5 calls (compression runs outside it).
    """

    def __init__(self, dataset, lock: threading.Lock):
        import h5py

        plist = dataset.id.get_create_plist()
        pipeline = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        if (
            dataset.dtype != np.dtype("<f4")
            or sys.byteorder != "little"
            or dataset.chunks is None
            or pipeline != [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]
        ):
            raise _NotApplicable(f"{dataset.name}: dtype {dataset.dtype}, filters {pipeline}")
        self.dataset, self.lock = dataset, lock
        self.chunks = dataset.chunks
        self.level = int(dataset.compression_opts)
        fill = dataset.fillvalue
        self.fill = np.float32(np.nan if fill is None else fill)

    def __setitem__(self, key, block):
        offset = tuple(s.start or 0 for s in key)
        block = np.asarray(block, dtype=np.float32)
        if block.shape != self.chunks:  # an edge chunk: HDF5 stores it padded to full size
            full = np.full(self.chunks, self.fill, np.float32)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        # HDF5's shuffle filter: all first bytes of the elements, then all second bytes...
        shuffled = np.ascontiguousarray(block).view(np.uint8).reshape(-1, 4).T.tobytes()
        data = zlib.compress(shuffled, self.level)
        with self.lock:
            self.dataset.id.write_direct_chunk(offset, data)


def to_netcdf_parallel(ds: xr.Dataset, path, encoding: dict) -> bool:
    """Write ``ds`` to ``path`` (a new file) with chunks of its float32 (time, y, x)
    variables compressed on all cores.

    Returns False when the direct path does not apply (see the module doc): the caller
    then writes (or rewrites) ``path`` the usual way."""
    cubes = [
        n
        for n, v in ds.data_vars.items()
        if v.ndim == 3
        and v.dtype == np.float32
        and encoding.get(n, {}).get("zlib")
        and encoding[n].get("shuffle")
        and encoding[n].get("chunksizes")
    ]
    if not cubes or not _local_threads():
        return False
    try:
        import h5py
    except ImportError:
        return False
    import dask
    import dask.array as da

    # 1. Layout and metadata by xarray/netCDF4: cubes as fill-only chunks; the other lazy
    #    variables (the tiles' mp_count and distance layers) as zeros, filled in step 2.
    lazy_layers = {n: v.data for n, v in ds.data_vars.items() if n not in cubes and isinstance(v.data, da.Array)}
    if any(data.ndim > 2 for data in lazy_layers.values()):
        return False  # a big lazy variable we cannot stream: let netCDF4 write it chunk by chunk
    skeleton = ds.copy()
    for n in cubes:
        v = ds[n]
        skeleton[n] = v.copy(data=da.full(v.shape, np.nan, dtype=np.float32, chunks=encoding[n]["chunksizes"]))
    for n, data in lazy_layers.items():
        skeleton[n] = ds[n].copy(data=np.zeros(data.shape, data.dtype))
    skeleton.to_netcdf(path, engine="netcdf4", encoding=encoding)

    # 2. One dask computation: every cube chunk compressed and written where computed, the
    #    layers kept in memory (shared tasks such as tile weights run once).
    lock = threading.Lock()
    with h5py.File(path, "r+") as f:
        try:
            targets = [ChunkWriter(f[n], lock) for n in cubes]
        except _NotApplicable:
            return False
        # Layers are written raw: only when the file stores them as they are in memory
        # (no packing with scale_factor/add_offset carried over from a source file).
        if any(
            f[n].dtype != data.dtype or {"scale_factor", "add_offset"} & set(f[n].attrs)
            for n, data in lazy_layers.items()
        ):
            return False
        lazy = [(ds[n].data.rechunk(t.chunks), t) for n, t in zip(cubes, targets) if isinstance(ds[n].data, da.Array)]
        in_memory = [
            (np.asarray(ds[n].data), t) for n, t in zip(cubes, targets) if not isinstance(ds[n].data, da.Array)
        ]
        stored = da.store([a for a, _ in lazy], [t for _, t in lazy], lock=False, compute=False) if lazy else None
        _, layers = dask.compute(stored, lazy_layers)
        for n, values in layers.items():
            f[n][...] = np.asarray(values, dtype=f[n].dtype)
        for values, target in in_memory:  # no dask: from_array would copy the whole cube first
            _write_chunks(values, target)
    return True


def _write_chunks(values: np.ndarray, target: ChunkWriter) -> None:
    """Every chunk of an in-memory array through ``target``, on all cores."""
    import itertools

    from insar_raster.io.atomic import settled_threads

    starts = [range(0, n, c) for n, c in zip(values.shape, target.chunks)]
    keys = [
        tuple(slice(o, min(o + c, n)) for o, c, n in zip(origin, target.chunks, values.shape))
        for origin in itertools.product(*starts)
    ]

    def write(key):
        target[key] = values[key]

    # The pool is drained on leaving (chunks in flight finish, queued ones are dropped),
    # so no write reaches the file after an error or Ctrl-C has closed it.
    with settled_threads() as pool:
        for future in [pool.submit(write, key) for key in keys]:
            future.result()
