"""The trained forecaster: a network plus everything needed to use it on a cube.

``Forecaster`` follows the fit-then-predict style: :func:`insar_raster.forecast.train.train_model`
returns one; :meth:`Forecaster.forecast` extends a cube by ``steps`` future epochs and
:meth:`Forecaster.predict_windows` forecasts the windows of a chronological split (for
evaluation). Prediction runs by overlapping tiles (:mod:`.tiles`), so grids much larger
than the training patches work with bounded memory.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import asdict

import numpy as np
import xarray as xr

from insar_raster import __version__
from insar_raster.errors import InputError
from insar_raster.forecast.data import (
    CubeReader,
    Normalisation,
    acquisition_step_days,
    prepare_batch,
)
from insar_raster.forecast.tiles import blend_weights, fitted_tile, tile_origins
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.gis.raster import grid_transform

log = logging.getLogger("insar_raster")
_DAY_NS = 86400 * 10**9


def grid_of(cube: xr.Dataset) -> dict:
    """JSON-safe description of a cube's grid: CRS (WKT), transform, shape, resolution."""
    crs = cube.rio.crs
    transform = grid_transform(cube)
    return {
        "crs_wkt": crs.to_wkt() if crs is not None else None,
        "transform": [float(v) for v in list(transform)[:6]],
        "shape": [int(cube.sizes["y"]), int(cube.sizes["x"])],
        "resolution": [abs(float(transform.a)), abs(float(transform.e))],
    }


def resolve_device(device: str):
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an input error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "CUDA requested but no CUDA device is available", "use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise InputError("--device", f"unknown device {device!r}", "use auto, cpu or cuda")
    return torch.device(device)


class Forecaster:
    """A trained forecasting model bound to its normalisation and training grid.

    Attributes
    ----------
    model : torch.nn.Module
        The network (see :mod:`insar_raster.models`).
    config : insar_raster.forecast.train.TrainConfig
        Hyper-parameters it was trained with.
    normalisation : Normalisation
        Training-part statistics (scale in mm, acquisition step in days).
    grid : dict
        The training cube's grid (see :func:`grid_of`).
    hparams : dict
        Constructor arguments of the network.
    history : list of dict
        Per training epoch: ``epoch``, ``train_loss``, ``val_loss`` (masked MSE in
        normalised units), ``val_rmse_mm``; epoch 0 is the untrained model (for
        ``convlstm``/``cnn`` exactly the prior, or persistence), ``train_loss`` None.
    metadata : dict
        Free-form provenance (persistence RMSE on validation, versions...).
    """

    def __init__(self, model, config, normalisation: Normalisation, grid: dict, hparams: dict,
                 history: list | None = None, metadata: dict | None = None):
        self.model = model
        self.config = config
        self.normalisation = normalisation
        self.grid = grid
        self.hparams = dict(hparams)
        self.history = list(history or [])
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        return (f"Forecaster(arch={self.config.arch!r}, window={self.window}, steps={self.steps}, "
                f"grid={self.grid['shape'][0]}x{self.grid['shape'][1]})")

    @property
    def window(self) -> int:
        """Input epochs per forecast."""
        return int(self.config.window)

    @property
    def steps(self) -> int:
        """Epochs forecast at once (the forecast horizon)."""
        return int(self.config.steps)

    @property
    def fully_convolutional(self) -> bool:
        """True if the network runs on any grid size."""
        return bool(getattr(self.model, "fully_convolutional", False))

    # -- checks -------------------------------------------------------------
    def check_grid(self, cube: xr.Dataset, path=None) -> None:
        """Refuse a cube whose grid the model cannot serve.

        Same grid: fine. Another grid: only a fully convolutional model at the same
        resolution may forecast it (a different CRS then only warns); a fixed-size model
        (``paper``) needs the training grid's shape.

        Raises
        ------
        InputError
        """
        from pyproj import CRS

        other = grid_of(cube)
        mine = self.grid
        same_crs = True
        if mine.get("crs_wkt") and other["crs_wkt"]:
            same_crs = CRS.from_wkt(mine["crs_wkt"]) == CRS.from_wkt(other["crs_wkt"])
        same_res = np.allclose(mine["resolution"], other["resolution"], rtol=1e-6)
        same_grid = same_crs and same_res and np.allclose(mine["transform"], other["transform"]) and mine["shape"] == other["shape"]
        if same_grid:
            return
        what = (f"cube grid ({other['shape'][0]}x{other['shape'][1]} cells of "
                f"{other['resolution'][0]:g} m) differs from the model's training grid "
                f"({mine['shape'][0]}x{mine['shape'][1]} cells of {mine['resolution'][0]:g} m)")
        if not self.fully_convolutional:
            raise InputError(path, f"{what}; the {self.config.arch!r} model only works on its training grid",
                             "retrain on this cube, or use the fully convolutional default model")
        if not same_res:
            raise InputError(path, f"{what}; a model only transfers between grids of the same resolution",
                             "regrid the cube to the model's resolution or retrain")
        if not same_crs:
            warnings.warn("cube CRS differs from the model's training CRS; the resolution matches, "
                          "so the fully convolutional model is applied anyway")

    def _check_cube(self, cube: xr.Dataset, path=None) -> None:
        if CUBE_VARIABLE not in cube:
            raise InputError(path, f"no '{CUBE_VARIABLE}' variable in the cube")
        n = cube.sizes["time"]
        if n < self.window:
            raise InputError(path, f"cube has {n} epochs, fewer than the model's window of {self.window}",
                             "use a longer cube or a model trained with a shorter --window")
        self.check_grid(cube, path)

    # -- prediction ---------------------------------------------------------
    def _tile_shape(self, height: int, width: int) -> tuple[int, int]:
        if not self.fully_convolutional:
            return tuple(self.hparams["input_size"])
        max_tile = int(self.config.tile_size)
        overlap = int(self.config.tile_overlap)
        return (fitted_tile(height, max_tile, overlap, 2), fitted_tile(width, max_tile, overlap, 2))

    def _predict(self, reader: CubeReader, input_epochs: np.ndarray, target_days: np.ndarray,
                 progress: bool = False) -> np.ndarray:
        """Forecasts (n, steps, H, W) mm for inputs at ``input_epochs`` (n, window).

        Each sample's history (for the prior) is the ``history_epochs`` epochs up to its
        last input epoch; nothing after it is read.
        """
        import torch
        from insar_raster.progress import progress_bar

        norm = self.normalisation
        device = resolve_device(self.config.device)
        self.model.to(device).eval()
        n = len(input_epochs)
        _, height, width = reader.shape
        tile_h, tile_w = self._tile_shape(height, width)
        overlap = int(self.config.tile_overlap)
        rows = tile_origins(height, tile_h, overlap)
        cols = tile_origins(width, tile_w, overlap)
        history = self.config.history_epochs if self.config.use_prior else self.window
        total = np.zeros((n, self.steps, height, width), dtype=np.float32)
        weight_sum = np.zeros((height, width), dtype=np.float32)
        reference = np.empty((n, height, width), dtype=np.float32)
        batch = max(1, int(self.config.batch_size))
        tiles = [(r, c) for r in rows for c in cols]
        with torch.inference_mode():
            for y0, x0 in progress_bar(tiles, desc="forecast tiles", unit="tile", disable=not progress or len(tiles) < 2):
                y1, x1 = min(y0 + tile_h, height), min(x0 + tile_w, width)
                h, w = y1 - y0, x1 - x0
                weights = blend_weights(h, w, overlap if len(tiles) > 1 else 0)
                for i in range(0, n, batch):
                    hists, hist_days = [], []
                    for last in input_epochs[i:i + batch, -1]:
                        first = max(0, int(last) + 1 - max(history, self.window))
                        hists.append(reader.read(first, int(last) + 1, y0, y1, x0, x1))
                        hist_days.append(reader.days[first:int(last) + 1])
                    x, leads, prior, level, ref = prepare_batch(hists, hist_days, self.window, target_days[i:i + batch],
                                                                norm, self.config.use_prior,
                                                                self.config.acceleration_ridge or 0.0)
                    reference[i:i + batch, y0:y1, x0:x1] = ref
                    if (h, w) != (tile_h, tile_w) and not self.fully_convolutional:
                        # Fixed-size model on a smaller grid: pad with masked cells.
                        pad = ((0, 0), (0, 0), (0, 0), (0, tile_h - h), (0, tile_w - w))
                        x = np.pad(x, pad)
                        prior = np.pad(prior, pad[1:])
                        level = np.pad(level, pad[1:])
                    change = self.model(*(torch.from_numpy(a).to(device) for a in (x, leads, prior, level)))
                    change = change.float().cpu().numpy()
                    total[i:i + batch, :, y0:y1, x0:x1] += weights * change[..., :h, :w]
                weight_sum[y0:y1, x0:x1] += weights
        change_mm = total / weight_sum * np.float32(norm.scale_mm)
        # NaN exactly where the last observed epoch is masked.
        return change_mm + reference[:, None]

    def predict_windows(self, cube: xr.Dataset, starts: np.ndarray, progress: bool = False) -> np.ndarray:
        """Forecast the samples starting at ``starts``.

        Sample ``s`` reads cube epochs ``[s, s + window)`` and forecasts epochs
        ``[s + window, s + window + steps)`` (the samples of
        :func:`insar_raster.forecast.windows.chronological_split`). Target epochs past
        the cube's end are placed at the cube's acquisition step.

        Returns
        -------
        ndarray (n, steps, H, W) float32
            Displacement (mm), NaN where the last input epoch is masked.
        """
        self._check_cube(cube)
        reader = CubeReader(cube)
        starts = np.asarray(starts, dtype=int).reshape(-1)
        n_times = reader.shape[0]
        if len(starts) == 0:
            return np.zeros((0, self.steps, *reader.shape[1:]), dtype=np.float32)
        if starts.min() < 0 or starts.max() + self.window > n_times:
            raise ValueError(f"window starts must lie in [0, {n_times - self.window}]")
        input_epochs = starts[:, None] + np.arange(self.window)[None, :]
        target_epochs = starts[:, None] + self.window + np.arange(self.steps)[None, :]
        step = acquisition_step_days(cube)
        last = reader.days[-1]
        target_days = np.where(target_epochs < n_times, reader.days[np.minimum(target_epochs, n_times - 1)],
                               last + (target_epochs - n_times + 1) * step)
        return self._predict(reader, input_epochs, target_days, progress)

    def forecast(self, cube: xr.Dataset, steps: int | None = None, progress: bool = False) -> xr.Dataset:
        """Forecast the ``steps`` epochs after the cube's last date.

        Future dates follow the cube's acquisition step (median gap between epochs).

        Parameters
        ----------
        cube : xarray.Dataset
            Cube with at least ``window`` epochs.
        steps : int, optional
            Number of future epochs (default and maximum: the model's ``steps``).

        Returns
        -------
        xarray.Dataset
            Cube layout: ``displacement`` (time, y, x) float32 mm, NaN where the cube's
            last epoch is masked, same CRS and transform, future dates on ``time``.
        """
        from insar_raster.grid.spec import GridSpec
        from insar_raster.io.cube import make_cube

        steps = self.steps if steps is None else int(steps)
        if not 1 <= steps <= self.steps:
            raise InputError("--steps", f"this model forecasts 1 to {self.steps} epochs, got {steps}",
                             f"train a model with --steps {steps}")
        self._check_cube(cube)
        reader = CubeReader(cube)
        n_times = reader.shape[0]
        step = acquisition_step_days(cube)
        input_epochs = np.arange(n_times - self.window, n_times)[None, :]
        target_days = reader.days[-1] + step * np.arange(1, self.steps + 1)[None, :]
        values = self._predict(reader, input_epochs, target_days, progress)[0, :steps]
        future = (np.round(target_days[0, :steps] * _DAY_NS)).astype("int64").astype("datetime64[ns]")
        transform = grid_transform(cube)
        spec = GridSpec(cube.rio.crs, abs(transform.a), transform.c, transform.f, cube.sizes["x"], cube.sizes["y"])
        out = make_cube(values.astype(np.float32), future, spec, attrs={
            "title": "InSAR displacement forecast",
            "source": cube.attrs.get("source", ""),
            "method": f"insar-raster forecast, {self.config.arch} model, window {self.window}",
            "forecast_reference_time": str(np.asarray(cube["time"].values[-1]).astype("datetime64[D]")),
        })
        # Keep the cube's exact coordinates (make_cube recomputes them from the transform).
        out = out.assign_coords(x=cube["x"].values, y=cube["y"].values)
        out[CUBE_VARIABLE].attrs["long_name"] = "forecast ground displacement relative to the cube's first epoch"
        return out

    # -- persistence ----------------------------------------------------------
    def save(self, path, overwrite: bool = False):
        """Write the model file (weights + JSON header); see :mod:`.modelfile`."""
        from insar_raster.forecast.modelfile import save_model

        return save_model(self, path, overwrite=overwrite)

    def header(self) -> dict:
        """JSON header describing the model (everything except weights)."""
        import torch

        return {
            "arch": self.config.arch,
            "hparams": self.hparams,
            "config": asdict(self.config),
            "normalisation": self.normalisation.to_dict(),
            "window": self.window,
            "steps": self.steps,
            "grid": self.grid,
            "history": self.history,
            "metadata": self.metadata,
            "insar_raster_version": __version__,
            "torch_version": torch.__version__.split("+")[0],
        }
