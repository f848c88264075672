"""Model files (``.ipt``): a JSON header and the weights, never executable code.

Layout::

    b"INSAR-RASTER-MODEL\\n"            magic (19 bytes)
    uint64 little-endian                length of the JSON header in bytes
    JSON header (UTF-8)                 architecture, hyper-parameters, normalisation,
                                        window, steps, training grid, history, versions
    torch state_dict                    read with ``torch.load(weights_only=True)``

The magic is checked before anything else, so a pickle (or any foreign file) is
rejected without being unpickled; the weights themselves go through PyTorch's
restricted ``weights_only`` unpickler, which only builds tensors and plain containers.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

from insar_raster.errors import InputError, first_line
from insar_raster.io.atomic import atomic_path

MAGIC = b"INSAR-RASTER-MODEL\n"
#: 2: ``convlstm``/``cnn`` gained the prior filter (``refine.weight``) and the ``level``
#: input; their format-1 files cannot be loaded into the new architecture.
FORMAT_VERSION = 2
_MAX_HEADER = 64 * 1024 * 1024


def save_model(forecaster, path, overwrite: bool = False) -> Path:
    """Write ``forecaster`` to ``path`` atomically.

    Raises
    ------
    InputError
        The output exists (without ``overwrite``) or its folder is unusable.
    """
    import torch

    weights = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in forecaster.model_.state_dict().items()}
    torch.save(state, weights)
    # The checksum catches damaged weights (bit rot, partial copies), which torch would
    # otherwise often load without complaint.
    header = {
        "format": "insar-raster-model",
        "format_version": FORMAT_VERSION,
        **forecaster.header(),
        "weights_sha256": hashlib.sha256(weights.getvalue()).hexdigest(),
    }
    header_bytes = json.dumps(header, allow_nan=True).encode("utf-8")
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            f.write(struct.pack("<Q", len(header_bytes)))
            f.write(header_bytes)
            f.write(weights.getvalue())
    return path


def read_header(path) -> dict:
    """The JSON header of a model file, without loading weights."""
    return _read(path)[0]


def _read(path):
    path = Path(path)
    if not path.exists():
        raise InputError(path, "model file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a model file")
    with open(path, "rb") as f:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise InputError(
                path,
                "not an insar-raster model file (unknown header; it was not loaded)",
                "models are written by 'insar-raster train'; pickled objects are never loaded",
            )
        raw_len = f.read(8)
        if len(raw_len) != 8:
            raise InputError(path, "corrupt model file (truncated header)")
        (n,) = struct.unpack("<Q", raw_len)
        if n > _MAX_HEADER:
            raise InputError(path, "corrupt model file (implausible header length)")
        raw = f.read(n)
        payload = f.read()
    if len(raw) != n:
        raise InputError(path, "corrupt model file (truncated header)")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(path, "corrupt model file (header is not valid JSON)") from None
    if not isinstance(header, dict) or header.get("format") != "insar-raster-model":
        raise InputError(path, "corrupt model file (header is not an insar-raster model description)")
    if int(header.get("format_version", -1)) > FORMAT_VERSION:
        raise InputError(
            path,
            f"model file format {header.get('format_version')} is newer than this "
            f"insar-raster understands ({FORMAT_VERSION})",
            "upgrade insar-raster",
        )
    return header, payload


def read_model(path) -> tuple:
    """Read a model file written by :func:`save_model`: the fitted parts of a forecaster.

    Returns
    -------
    tuple
        ``(model, config, normalisation, grid, hparams, history, metadata)``, the
        arguments of :meth:`insar_raster.forecast.forecaster.Forecaster.from_fitted`
        (:func:`insar_raster.forecast.forecaster.load_model` builds the forecaster).

    Raises
    ------
    InputError
        Missing, foreign (e.g. a pickle), corrupt or incompatible file. Nothing in the
        file is executed.
    """
    import pickle

    import torch

    from insar_raster.forecast.config import TrainConfig
    from insar_raster.forecast.data import Normalisation
    from insar_raster.models import ARCHITECTURES, FULLY_CONVOLUTIONAL, build_model

    header, payload = _read(path)
    expected = header.get("weights_sha256")
    if expected is not None and hashlib.sha256(payload).hexdigest() != expected:
        raise InputError(path, "corrupt model file (weights do not match their checksum)")
    arch = header.get("arch")
    if arch not in ARCHITECTURES:
        raise InputError(path, f"unknown architecture {arch!r} in model file", "written by a newer insar-raster?")
    if arch in FULLY_CONVOLUTIONAL and int(header.get("format_version", -1)) < 2:
        raise InputError(
            path,
            f"{arch} model file format {header.get('format_version')} was written by an older "
            "insar-raster, before the prior filter",
            "retrain it with this version (insar-raster train)",
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(path, f"model weights refused by the safe loader: {first_line(exc)}") from None
    except Exception as exc:  # truncated zip, bad CRC...
        raise InputError(path, f"corrupt model file (weights unreadable: {type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise InputError(path, "corrupt model file (weights are not a state dict)")
    try:
        hparams = dict(header["hparams"])
        model = build_model(arch, **hparams)
        model.load_state_dict(state, strict=True)
        known = TrainConfig.__dataclass_fields__
        settings = {k: v for k, v in header["config"].items() if k in known}
        settings["device"] = "auto"  # a model trained on a GPU still loads on a CPU-only machine
        config = TrainConfig(**settings)
        norm = Normalisation(**header["normalisation"])
        grid = header["grid"]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(
            path,
            f"corrupt or incompatible model file ({type(exc).__name__}: {first_line(exc, empty='')})",
        ) from None
    model.eval()
    return model, config, norm, grid, hparams, header.get("history"), header.get("metadata")
