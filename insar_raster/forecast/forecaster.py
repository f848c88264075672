"""The trained forecaster: a network plus everything needed to use it on a cube.

``Forecaster`` follows the fit-then-predict style (:mod:`.estimator`):
``Forecaster(config).fit(cube, split)`` or :func:`train_model` train one, :func:`load_model`
reads one from a model file; :meth:`Forecaster.forecast` extends a cube by ``steps`` future epochs and
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
from insar_raster.forecast.cadence import cadence_view
from insar_raster.forecast.config import TrainConfig
from insar_raster.forecast.data import (
    CubeReader,
    Normalisation,
    acquisition_step_days,
    advection_input,
    cell_stride,
    grid_feature_means,
    grid_of,
    prepare_batch,
    target_days,
)
from insar_raster.forecast.modelfile import read_model, save_model
from insar_raster.forecast.tiles import blend_weights, fitted_tile, tile_origins
from insar_raster.forecast.train import fit_network, resolve_device
from insar_raster.forecast.windows import ChronoSplit, evenly_spread
from insar_raster.io.cube import CUBE_VARIABLE
from insar_raster.units import DAY_NS

log = logging.getLogger("insar_raster")


#: What the ``displacement`` of a decomposed cube's component is (its ``component`` attr).
COMPONENT_NAMES = {
    "vertical": "vertical displacement (up positive)",
    "east_west": "east-west displacement (east positive)",
}


class Forecaster:
    """A forecasting network bound to its normalisation and training grid.

    The estimator protocol of :mod:`insar_raster.forecast.estimator`: ``Forecaster(config)``
    only stores the configuration; :meth:`fit` trains the network on a cube's training
    samples and sets the fitted attributes below; :meth:`predict_windows` forecasts the
    samples of a chronological split and :meth:`forecast` the epochs after a cube's end.
    :func:`insar_raster.forecast.modelfile.load_model` returns a fitted one.

    Parameters
    ----------
    config : insar_raster.forecast.config.TrainConfig, optional
        Hyper-parameters (default ``TrainConfig()``).
    progress : bool
        Show a progress bar while fitting (rank 0 only under ``torchrun``).
    in_memory_bytes : int, optional
        Cubes up to this size (bytes of float32 displacement) are loaded into memory
        while fitting; larger ones are read patch by patch (default
        :data:`insar_raster.forecast.data.IN_MEMORY_BYTES`). Same result either way.

    Attributes
    ----------
    model_ : torch.nn.Module
        The network (see :mod:`insar_raster.models`).
    config_ : insar_raster.forecast.config.TrainConfig
        The configuration it was trained with, with the choices made while fitting
        (the history prior's ``acceleration_ridge``).
    normalisation_ : Normalisation
        Training-part statistics (scale in mm, acquisition step in days).
    grid_ : dict
        The training cube's grid (see :func:`~insar_raster.forecast.data.grid_of`).
    hparams_ : dict
        Constructor arguments of the network.
    history_ : list of dict
        Per training epoch: ``epoch``, ``train_loss``, ``val_loss`` (masked MSE in
        normalised units), ``val_rmse_mm``; epoch 0 is the untrained model (for
        ``convlstm``/``cnn`` exactly the prior, or persistence), ``train_loss`` None.
    metadata_ : dict
        Free-form provenance (persistence RMSE on validation, versions...).

    ``model``, ``normalisation``, ``grid``, ``hparams``, ``history`` and ``metadata``
    are read-only aliases of the fitted attributes.
    """

    def __init__(self, config=None, progress: bool = False, in_memory_bytes: int | None = None):
        self.config = config
        self.progress = progress
        self.in_memory_bytes = in_memory_bytes

    @classmethod
    def from_fitted(
        cls,
        model,
        config,
        normalisation: Normalisation,
        grid: dict,
        hparams: dict,
        history: list | None = None,
        metadata: dict | None = None,
    ) -> "Forecaster":
        """A fitted forecaster from its parts (a model file, or the trainer's result)."""
        self = cls(config)
        self._set_fitted(model, config, normalisation, grid, hparams, history, metadata)
        return self

    def _set_fitted(self, model, config, normalisation, grid, hparams, history=None, metadata=None) -> None:
        self.model_ = model
        self.config_ = config
        self.normalisation_ = normalisation
        self.grid_ = grid
        self.hparams_ = dict(hparams)
        self.history_ = list(history or [])
        self.metadata_ = dict(metadata or {})

    def fit(self, cube: xr.Dataset, split=None) -> "Forecaster":
        """Train the network on ``cube``'s training samples; returns ``self``.

        Parameters
        ----------
        cube : xarray.Dataset
            Cube layout of :mod:`insar_raster.io.cube` (may be dask-backed).
        split : ChronoSplit, optional
            Default: ``chronological_split`` of the cube with the config's window,
            steps and fractions. See :func:`insar_raster.forecast.train.train_model`.
        """
        config = self.config or TrainConfig()
        split = split if split is not None else _default_split(cube, config)
        view = cadence_view(cube, split)  # made once: training and calibration read it
        if config.arch == "ensemble":
            from insar_raster.forecast.ensemble import combine_members

            members = fit_ensemble_members(cube, config, split, self.progress, self.in_memory_bytes, view)
            parts = combine_members(members, cube, split, self.in_memory_bytes)
        else:
            parts = fit_network(cube, config, split, self.progress, self.in_memory_bytes, view)
        self._set_fitted(*parts)
        return self._calibrate_after_fit(cube, split, view)

    def _calibrate_after_fit(self, cube: xr.Dataset, split, view="auto") -> "Forecaster":
        from insar_raster.io.egms import cube_geometry

        # What the training values measured (LOS, vertical, east-west), for check_geometry.
        trained_on = cube_geometry(cube.attrs)
        if trained_on.component is not None:
            self.metadata_["geometry"] = {"component": trained_on.component, "described": str(trained_on)}
        if split is None:
            split = _default_split(cube, self.config_)
        # Interval calibration on the validation samples (never training targets), of the
        # final forecast (for an ensemble: the weighted average), at the step the forecast
        # takes: after a cadence change, on the record resampled to it (forecast.cadence).
        if isinstance(view, str):
            view = cadence_view(cube, split)
        if view is not None and len(view.split.val):
            self.calibrate_intervals(view.cube, view.split.val, in_memory_bytes=self.in_memory_bytes, noise_cube=cube)
            self.metadata_["intervals"]["step_days"] = view.step_days
        elif len(split.val):
            self.calibrate_intervals(cube, split.val, in_memory_bytes=self.in_memory_bytes)
        return self

    def reusable_members(self, fitted: dict) -> dict | None:
        """For an ``ensemble`` configuration: its members among ``fitted`` (``{name: model}``,
        e.g. the models an evaluation has trained), when every one of them is an unfitted
        :class:`Forecaster`'s twin (same configuration but the architecture); else None."""
        config = self.config or TrainConfig()
        if config.arch != "ensemble":
            return None
        from insar_raster.forecast.ensemble import member_configs

        members = {}
        for arch, wanted in member_configs(config).items():
            model = fitted.get(arch)
            if not isinstance(model, Forecaster) or model.config != wanted or "model_" not in model.__dict__:
                return None
            members[arch] = model
        return members

    def fit_from_members(self, cube: xr.Dataset, split, members: dict) -> "Forecaster":
        """Fit an ``ensemble`` from its fitted members (see :meth:`reusable_members`): only
        the weight is chosen (on ``split``'s validation samples) and the intervals calibrated.
        The result is the same as :meth:`fit` on the same cube and split."""
        from insar_raster.forecast.ensemble import combine_members

        self._set_fitted(*combine_members(members, cube, split, self.in_memory_bytes))
        return self._calibrate_after_fit(cube, split)

    def _fitted(self, name: str):
        try:
            return self.__dict__[name]
        except KeyError:
            raise RuntimeError("Forecaster is not fitted; call fit(cube, split) first") from None

    model = property(lambda self: self._fitted("model_"), doc="Alias of ``model_``.")
    normalisation = property(lambda self: self._fitted("normalisation_"), doc="Alias of ``normalisation_``.")
    grid = property(lambda self: self._fitted("grid_"), doc="Alias of ``grid_``.")
    hparams = property(lambda self: self._fitted("hparams_"), doc="Alias of ``hparams_``.")
    history = property(lambda self: self._fitted("history_"), doc="Alias of ``history_``.")
    metadata = property(lambda self: self._fitted("metadata_"), doc="Alias of ``metadata_``.")

    def __repr__(self) -> str:
        if "model_" not in self.__dict__:
            return f"Forecaster(config={self.config!r})"
        return (
            f"Forecaster(arch={self.config_.arch!r}, window={self.window}, steps={self.steps}, "
            f"grid={self.grid_['shape'][0]}x{self.grid_['shape'][1]})"
        )

    @property
    def _settings(self):
        """The effective configuration: fitted, else the given one (else the defaults)."""
        if "config_" in self.__dict__:
            return self.config_
        return self.config or TrainConfig()

    @property
    def window(self) -> int:
        """Input epochs per forecast."""
        return int(self._settings.window)

    @property
    def steps(self) -> int:
        """Epochs forecast at once (the forecast horizon)."""
        return int(self._settings.steps)

    @property
    def fully_convolutional(self) -> bool:
        """True if the network runs on any grid size."""
        return bool(getattr(self.model_, "fully_convolutional", False))

    # -- what evaluation reports ------------------------------------------------
    def details(self) -> dict:
        """What a report says about the fitted model (JSON-ready)."""
        history = self.history_
        # History entries of the network's training epochs (an "epoch 0" entry, if any, is the
        # model before its network learned: the history prior, filtered if stage 1 kept a filter).
        trained = [h for h in history if int(h.get("epoch", 1)) >= 1]
        best = min(history, key=lambda h: h["val_loss"]) if history else {}
        meta = self.metadata_
        out = {
            "epochs_trained": len(trained),
            "best_epoch": meta.get("best_epoch", best.get("epoch")),
            "val_rmse_mm": meta.get("val_rmse_mm"),
            "val_history_fit_rmse_mm": meta.get("val_history_fit_rmse_mm"),
            "parameters": int(sum(p.numel() for p in self.model_.parameters())),
            "prior_filter": meta.get("prior_filter"),
            "lag_prior": meta.get("lag_prior"),
            "cadence": meta.get("cadence"),
            # The network's best validation score even when it was not kept, so that
            # architectures can be compared (the ablation) when none beat the prior.
            "network_best_val_rmse_mm": min(
                (h["val_rmse_mm"] for h in trained if h.get("val_rmse_mm") is not None), default=None
            ),
            "config": asdict(self.config_),
        }
        if meta.get("ensemble"):  # the weights chosen on validation and each member's network
            ens = meta["ensemble"]
            out["ensemble"] = {
                k: ens[k] for k in ("weights", "members", "val_rmse_mm_by_weight", "chosen_by") if k in ens
            }
        return out

    def intrinsic_importance(self) -> dict | None:
        """None: a network has no per-lag weights to read (the permutation test measures it)."""
        return None

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
        mine = self.grid_
        same_crs = True
        if mine.get("crs_wkt") and other["crs_wkt"]:
            same_crs = CRS.from_wkt(mine["crs_wkt"]) == CRS.from_wkt(other["crs_wkt"])
        same_res = np.allclose(mine["resolution"], other["resolution"], rtol=1e-6)
        same_grid = (
            same_crs
            and same_res
            and np.allclose(mine["transform"], other["transform"])
            and mine["shape"] == other["shape"]
        )
        if same_grid:
            return
        from insar_raster.io.layout import cell_size_text

        what = (
            f"cube grid ({other['shape'][0]}x{other['shape'][1]} cells of "
            f"{cell_size_text(other['resolution'][0], other['crs_wkt'] or None)}) differs from the model's training "
            f"grid ({mine['shape'][0]}x{mine['shape'][1]} cells of "
            f"{cell_size_text(mine['resolution'][0], mine.get('crs_wkt') or None)})"
        )
        if not self.fully_convolutional:
            raise InputError(
                path,
                f"{what}; the {self.config_.arch!r} model only works on its training grid",
                "retrain on this cube, or use the fully convolutional default model",
            )
        if not same_res:
            raise InputError(
                path,
                f"{what}; a model only transfers between grids of the same resolution",
                "regrid the cube to the model's resolution or retrain",
            )
        if not same_crs:
            warnings.warn(
                "cube CRS differs from the model's training CRS; the resolution matches, "
                "so the fully convolutional model is applied anyway",
                stacklevel=2,
            )

    def _check_cube(self, cube: xr.Dataset, path=None) -> None:
        if CUBE_VARIABLE not in cube:
            raise InputError(path, f"no '{CUBE_VARIABLE}' variable in the cube")
        n = cube.sizes["time"]
        if n < self.window:
            raise InputError(
                path,
                f"cube has {n} epochs, fewer than the model's window of {self.window}",
                "use a longer cube or a model trained with a shorter window",
            )
        self.check_grid(cube, path)

    # -- prediction ---------------------------------------------------------
    def _tile_shape(self, height: int, width: int) -> tuple[int, int]:
        if not self.fully_convolutional:
            return tuple(self.hparams_["input_size"])
        max_tile = int(self.config_.tile_size)
        overlap = int(self.config_.tile_overlap)
        return (fitted_tile(height, max_tile, overlap, 2), fitted_tile(width, max_tile, overlap, 2))

    def _predict(
        self, reader: CubeReader, input_epochs: np.ndarray, target_days: np.ndarray, progress: bool = False
    ) -> np.ndarray:
        """Forecasts (n, steps, H, W) mm for inputs at ``input_epochs`` (n, window).

        Each sample's history (for the prior) is the ``history_epochs`` epochs up to its
        last input epoch; nothing after it is read.
        """
        import torch

        from insar_raster.progress import progress_bar

        norm = self.normalisation_
        device = resolve_device(self.config_.device)
        self.model_.to(device).eval()
        n = len(input_epochs)
        _, height, width = reader.shape
        tile_h, tile_w = self._tile_shape(height, width)
        overlap = int(self.config_.tile_overlap)
        rows = tile_origins(height, tile_h, overlap)
        cols = tile_origins(width, tile_w, overlap)
        history = self.config_.read_history
        total = np.zeros((n, self.steps, height, width), dtype=np.float32)
        weight_sum = np.zeros((height, width), dtype=np.float32)
        reference = np.empty((n, height, width), dtype=np.float32)
        batch = max(1, int(self.config_.batch_size))
        tiles = [(r, c) for r in rows for c in cols]
        # The centred prior's grid means: the whole grid's, whichever tile is read.
        means = grid_feature_means(reader, self.config_, norm.step_days)
        with torch.inference_mode():
            for y0, x0 in progress_bar(
                tiles, desc="forecast tiles", unit="tile", disable=not progress or len(tiles) < 2
            ):
                y1, x1 = min(y0 + tile_h, height), min(x0 + tile_w, width)
                h, w = y1 - y0, x1 - x0
                weights = blend_weights(h, w, overlap if len(tiles) > 1 else 0)
                for i in range(0, n, batch):
                    hists, hist_days = [], []
                    for last in input_epochs[i : i + batch, -1]:
                        first = max(0, int(last) + 1 - max(history, self.window))
                        hists.append(reader.read(first, int(last) + 1, y0, y1, x0, x1))
                        hist_days.append(reader.days[first : int(last) + 1])
                    x, leads, prior, level, ref = prepare_batch(
                        hists,
                        hist_days,
                        self.window,
                        target_days[i : i + batch],
                        norm,
                        self.config_.use_prior,
                        self.config_.acceleration_ridge or 0.0,
                        self.config_.linear_prior,
                        self.config_.fit_history,
                        None
                        if means is None
                        else means.at_samples(input_epochs[i : i + batch, -1], target_days[i : i + batch]),
                    )
                    reference[i : i + batch, y0:y1, x0:x1] = ref
                    inputs = [x, leads, prior, level]
                    if self.hparams_.get("advection"):
                        inputs.append(
                            advection_input(
                                hists,
                                hist_days,
                                self.window,
                                target_days[i : i + batch],
                                norm,
                                self.steps,
                                int(self.hparams_["advection"]),
                            )
                        )
                    if (h, w) != (tile_h, tile_w) and not self.fully_convolutional:
                        # Fixed-size model on a smaller grid: pad with masked cells.
                        pad = ((0, 0), (0, 0), (0, 0), (0, tile_h - h), (0, tile_w - w))
                        x = np.pad(x, pad)
                        inputs = [x, leads, np.pad(prior, pad[1:]), np.pad(level, pad[1:])]
                    change = self.model_(*(torch.from_numpy(a).to(device) for a in inputs))
                    change = change.float().cpu().numpy()
                    total[i : i + batch, :, y0:y1, x0:x1] += weights * change[..., :h, :w]
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
        return self._predict_starts(cube, CubeReader(cube), starts, progress)

    def _predict_starts(self, cube, reader: CubeReader, starts, progress: bool = False) -> np.ndarray:
        starts = np.asarray(starts, dtype=int).reshape(-1)
        n_times = reader.shape[0]
        if len(starts) == 0:
            return np.zeros((0, self.steps, *reader.shape[1:]), dtype=np.float32)
        if starts.min() < 0 or starts.max() + self.window > n_times:
            raise ValueError(f"window starts must lie in [0, {n_times - self.window}]")
        input_epochs = starts[:, None] + np.arange(self.window)[None, :]
        days = target_days(reader.days, starts, self.window, self.steps, acquisition_step_days(cube))
        return self._predict(reader, input_epochs, days, progress)

    # -- intervals ------------------------------------------------------------
    @property
    def has_intervals(self) -> bool:
        """Whether the model carries an interval calibration (:mod:`.intervals`)."""
        return bool(self.metadata_.get("intervals"))

    def _noise_levels(self, reader: CubeReader, last_epochs) -> np.ndarray:
        """Per-cell noise level (n, H, W) mm from the epochs up to each last input epoch."""
        from insar_raster.forecast.intervals import NOISE_EPOCHS, noise_level

        _, height, width = reader.shape
        return np.stack(
            [
                noise_level(reader.read(max(0, int(t) + 1 - NOISE_EPOCHS), int(t) + 1, 0, height, 0, width))
                for t in np.asarray(last_epochs).reshape(-1)
            ]
        )

    def calibrate_intervals(
        self,
        cube: xr.Dataset,
        starts,
        progress: bool = False,
        in_memory_bytes: int | None = None,
        noise_cube: xr.Dataset | None = None,
    ) -> dict:
        """Split-conformal calibration of forecast intervals on the samples ``starts``.

        ``starts`` should be validation samples (never trained on as targets); 6 to 24 of
        them (fewer on a larger grid, :func:`~insar_raster.forecast.intervals.calibration_sample_count`),
        evenly spread, are forecast, :data:`~insar_raster.forecast.intervals.CALIBRATION_CHUNK`
        at a time (memory). Stores and returns ``metadata_["intervals"]``. A cube
        larger than ``in_memory_bytes`` is read block by block (see ``CubeReader``).
        ``noise_cube``: the record the cells' noise levels are read from, up to each
        sample's last input date, when ``cube`` is a resampled view of it (the noise
        level of second differences depends on the step; a forecast reads it from the
        record as acquired).
        """
        from insar_raster.forecast.intervals import (
            CALIBRATION_CHUNK,
            LEVELS,
            calibration_sample_count,
            calibration_scores,
            conformal_quantiles,
        )

        starts = np.asarray(starts, dtype=int).reshape(-1)
        if len(starts) == 0:
            raise ValueError("no calibration samples")
        self._check_cube(cube)
        reader = CubeReader(cube, in_memory_bytes)
        _, height, width = reader.shape
        starts = starts[evenly_spread(len(starts), calibration_sample_count(len(starts), height * width))]
        noise_reader, last_epochs = reader, starts + self.window - 1
        if noise_cube is not None:
            noise_reader = CubeReader(noise_cube, in_memory_bytes)
            last_days = reader.days[last_epochs]
            last_epochs = np.searchsorted(noise_reader.days, last_days + 1e-6, side="right") - 1
        rng = np.random.default_rng(0)
        scores = []
        squared, counted = np.zeros(self.steps), np.zeros(self.steps)
        # The model's scene-wide error (median over the cells) per sample and step, on the
        # strided sample of cells the prior's is read from.
        scene_wide, stride = [], cell_stride(height, width)
        for i in range(0, len(starts), CALIBRATION_CHUNK):
            chunk = starts[i : i + CALIBRATION_CHUNK]
            forecast = self._predict_starts(cube, reader, chunk, progress)
            observed = reader.read_targets(chunk, self.window, self.steps)
            sigma = self._noise_levels(noise_reader, last_epochs[i : i + CALIBRATION_CHUNK])
            scores.append(calibration_scores(forecast, observed, sigma, rng, share=len(chunk) / len(starts)))
            error = (forecast - observed).astype(np.float64)
            squared += np.nansum(error**2, axis=(0, 2, 3))
            counted += np.isfinite(error).sum(axis=(0, 2, 3))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a target with no valid cell
                sampled = error[:, :, ::stride, ::stride]
                scene_wide.append(np.nanmedian(sampled.reshape(*sampled.shape[:2], -1), axis=2))
        scores = np.concatenate(scores)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scene_mse = np.nan_to_num(np.nanmean(np.concatenate(scene_wide) ** 2, axis=0))
        widening = self._scene_wide_widening(reader, starts, squared / np.maximum(counted, 1), scene_mse)
        quantiles = np.asarray(conformal_quantiles(scores)) * widening[None, :]
        self.metadata_["intervals"] = {
            "method": "split conformal, |observed - forecast| / cell noise level, per horizon step; widened for "
            "scene-wide errors the history prior made over the three years before the calibration samples "
            "beyond those it made on them, narrowed where it made fewer",
            "levels": list(LEVELS),
            "quantiles": quantiles.tolist(),
            "scene_wide_widening": [round(float(f), 4) for f in widening],
            "calibration_samples": [int(s) for s in starts],
            "scores_per_step": int(np.isfinite(scores).sum(axis=0).min()),
        }
        return self.metadata_["intervals"]

    def _scene_wide_widening(self, reader: CubeReader, starts, calibration_mse, calibration_scene_mse) -> np.ndarray:
        """Per-step factor on the quantiles (:func:`~insar_raster.forecast.intervals.scene_wide_widening`),
        from an evenly strided sample of the grid's cells (:meth:`CubeReader.strided_cells`)."""
        from insar_raster.forecast.intervals import scene_wide_widening

        config = self.config_
        values = reader.strided_cells()
        if not values.shape[1]:
            return np.ones(self.steps)
        # A model without the prior (the paper's) is still widened by the prior's scene-wide errors.
        history = config.fit_history if config.use_prior else config.history_epochs
        return scene_wide_widening(
            values,
            reader.days,
            starts,
            self.window,
            self.steps,
            history,
            config.acceleration_ridge or 0.0,
            calibration_mse,
            config.linear_prior,
            self.normalisation_.step_days,
            calibration_scene_mse,
        )

    def interval_bounds(
        self, cube: xr.Dataset, starts, forecast: np.ndarray, level: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (n, steps, H, W) mm around ``forecast`` of samples ``starts``.

        Raises
        ------
        InputError
            The model has no interval calibration, or ``level`` is out of range.
        """
        from insar_raster.forecast.intervals import quantile_at

        if not self.has_intervals:
            raise InputError(None, "this model file has no interval calibration", "retrain the model")
        try:
            q = quantile_at(self.metadata_["intervals"], float(level))
        except ValueError as exc:
            raise InputError(None, str(exc), param="interval") from None
        steps = forecast.shape[1]
        starts = np.asarray(starts, dtype=int).reshape(-1)
        sigma = self._noise_levels(CubeReader(cube), starts + self.window - 1)
        half = q[None, :steps, None, None].astype(np.float32) * sigma[:, None]
        return forecast - half, forecast + half

    def forecast(
        self,
        cube: xr.Dataset,
        steps: int | None = None,
        progress: bool = False,
        interval: float | None = None,
        *,
        checked: bool = False,
    ) -> xr.Dataset:
        """Forecast the ``steps`` epochs after the cube's last date.

        Future dates follow the cube's current acquisition step (the median of its last
        gaps, :func:`~insar_raster.forecast.data.acquisition_step_days`).

        Parameters
        ----------
        cube : xarray.Dataset
            Cube with at least ``window`` epochs.
        steps : int, optional
            Number of future epochs (default and maximum: the model's ``steps``).

        interval : float, optional
            Also return the calibrated interval at this level (percent, 50-99):
            ``displacement_lower`` and ``displacement_upper`` (see :mod:`.intervals`).
        checked : bool
            The caller has run :meth:`check_input` on ``cube`` already (the CLI does,
            before any training or reading of points), so it is not run again.

        Returns
        -------
        xarray.Dataset
            Cube layout: ``displacement`` (time, y, x) float32 mm, NaN where the cube's
            last epoch is masked, same CRS and transform, future dates on ``time``; with
            ``interval``, also ``displacement_lower``/``displacement_upper`` (mm).
        """
        from insar_raster.grid.spec import GridSpec
        from insar_raster.io.cube import make_cube

        steps = self.steps if steps is None else int(steps)
        if not 1 <= steps <= self.steps:
            raise InputError(
                None,
                f"this model forecasts 1 to {self.steps} epochs, got {steps}",
                f"train a model with steps={steps}",
                param="steps",
            )
        if not checked:
            self.check_input(cube)  # before the reader loads the cube
        source = self._at_model_step(cube)
        reader = CubeReader(source)
        n_times = reader.shape[0]
        step = acquisition_step_days(source)
        input_epochs = np.arange(n_times - self.window, n_times)[None, :]
        days = target_days(reader.days, [n_times - self.window], self.window, self.steps, step)
        values = self._predict(reader, input_epochs, days, progress)[0, :steps]
        future = (np.round(days[0, :steps] * DAY_NS)).astype("int64").astype("datetime64[ns]")
        spec = GridSpec.from_cube(cube)
        out = make_cube(
            values.astype(np.float32),
            future,
            spec,
            attrs={
                "title": "InSAR displacement forecast",
                "source": cube.attrs.get("source", ""),
                "method": f"insar-raster forecast, {self.config_.arch} model, window {self.window}",
                "forecast_reference_time": str(np.asarray(cube["time"].values[-1]).astype("datetime64[D]")),
            },
        )
        # Keep the cube's exact coordinates (make_cube recomputes them from the transform).
        out = out.assign_coords(x=cube["x"].values, y=cube["y"].values)
        # What the values are (a decomposed cube's component, the LOS geometry), so the file
        # says it and a later check of points against it can tell.
        out.attrs.update(
            {
                k: cube.attrs[k]
                for k in ("component", "product", "product_level", "track", "pass_direction")
                if k in cube.attrs
            }
        )
        what = COMPONENT_NAMES.get(cube.attrs.get("component"), "displacement")
        if what != "displacement":
            out.attrs["title"] = f"InSAR {what} forecast"
        out[CUBE_VARIABLE].attrs["long_name"] = f"{what} forecast, relative to the cube's first epoch"
        if interval is not None:
            # The noise levels from the record as acquired, as calibration read them.
            last_start = cube.sizes["time"] - self.window
            lower, upper = self.interval_bounds(cube, [last_start], values[None], interval)
            for name, bound in (("lower", lower), ("upper", upper)):
                var = f"{CUBE_VARIABLE}_{name}"
                out[var] = (("time", "y", "x"), bound[0].astype(np.float32))
                out[var].attrs.update(
                    units="mm",
                    grid_mapping="spatial_ref",
                    long_name=f"{what} forecast, {name} bound of the {interval:g} % interval",
                )
            out.attrs["interval_level_percent"] = float(interval)
        return out

    def _at_model_step(self, cube: xr.Dataset) -> xr.Dataset:
        """The record a forecast reads: the cube, or, where its revisit is finer than every
        step the model trained on (a 12-day record ending in Sentinel-1C's 6-day gaps, a
        6-day model on a 3-day cube), the cube resampled to the model's step, ending at
        its last date (warns): the model forecasts the steps it learned."""
        from insar_raster.forecast.cadence import forecast_resampling, trained_steps
        from insar_raster.forecast.resample import resample_cube

        current = acquisition_step_days(cube)
        step = forecast_resampling(current, trained_steps(self.normalisation_.step_days, self.metadata_))
        if step is None:
            return cube
        warnings.warn(
            f"the cube's revisit is {current:g} days, finer than the {step:g}-day epochs this model was trained "
            f"on: forecasting {step:g}-day steps from the record resampled to {step:g} days (ending at its last "
            "date)",
            stacklevel=3,
        )
        return resample_cube(cube, f"{step:g}D", end_anchored=True)

    def check_input(self, cube: xr.Dataset) -> None:
        """What :meth:`forecast` checks before it reads the cube: enough epochs on a grid
        this model works on, its last epoch holds data (:func:`check_last_epoch_observed`),
        its revisit is one this model knows and it holds the component the model learned.

        The networks, the learned linear prior and its spatial filter take the time gaps
        as input, but gaps they never saw are outside what they learned. Measured
        (benchmarks/README.md, "A model at another revisit"): a model trained on a 12-day
        cube forecast a 6-day one 2.1x (urban) and 1.14x (mixed) worse than a model
        trained at 6 days, near persistence; on a 24-day cube it was as good as a
        24-day model (1.00x). So a revisit finer than every step the model trained on
        is forecast at the model's step (:meth:`forecast` reads the cube resampled to
        it, and warns), a coarser one warns (its intervals were calibrated at the
        shorter step).

        Raises
        ------
        InputError
            Fewer epochs than the window, another grid (see :meth:`check_grid`) or an
            empty last epoch.

        Warns
        -----
        UserWarning
            A revisit :data:`~.cadence.CADENCE_CHANGE` times coarser than every step the
            model trained on, or another component than the model was trained on
            (:meth:`check_geometry`).
        """
        self._check_cube(cube)
        check_last_epoch_observed(cube)
        self.check_revisit(cube, forecasting=True)
        self.check_geometry(cube)

    def check_geometry(self, cube: xr.Dataset) -> None:
        """Warn when the cube holds another component than the model was trained on (an
        L3 Up model on an East cube, a LOS model on a decomposed one): its weights learned
        the other motion's behaviour (subsidence, seasonal swelling), so its forecast and
        intervals are not validated there. Unknown on either side (older model files,
        cubes without EGMS geometry): no warning.

        Warns
        -----
        UserWarning
        """
        from insar_raster.io.egms import cube_geometry

        trained = self.metadata_.get("geometry") or {}
        held = cube_geometry(cube.attrs)
        known = ("LOS", "vertical", "east-west")
        if trained.get("component") in known and held.component in known and trained["component"] != held.component:
            warnings.warn(
                f"this model was trained on {trained.get('described', trained['component'])} values but the cube holds"
                f" {held}: its forecast and intervals were not validated on this component; train a model on this"
                " cube",
                stacklevel=3,
            )

    def check_revisit(self, cube: xr.Dataset, forecasting: bool = False) -> None:
        """Refuse a cube whose revisit is finer than every step this model trained on
        (scoring it at the cube's own epochs, as ``evaluate`` does, would take steps the
        model never learned; with ``forecasting``, :meth:`forecast` resamples it to the
        model's step instead), warn on a coarser one (see :meth:`check_input`).

        Raises
        ------
        InputError

        Warns
        -----
        UserWarning
        """
        from insar_raster.forecast.cadence import cadence_mismatch, forecast_resampling, trained_steps

        step = acquisition_step_days(cube)
        trained = trained_steps(self.normalisation_.step_days, self.metadata_)
        if not cadence_mismatch(step, trained):
            return
        said = " and ".join(f"{t:g}-day" for t in trained)
        if forecast_resampling(step, trained) is not None:  # finer than every trained step
            if forecasting:
                return
            raise InputError(
                None,
                f"the cube's revisit is {step:g} days, finer than the {said} epochs this model was trained on: it"
                f" would forecast {step:g}-day steps from time gaps it never saw",
                f"resample the cube to the model's step (resample={min(trained):g}D), or train a model on this cube",
            )
        warnings.warn(
            f"the cube's revisit is {step:g} days, but this model was trained on {said} epochs: its forecast steps"
            f" {step:g} days from time gaps it never saw, and its intervals were calibrated at {max(trained):g}-day"
            " steps; train a model on this cube for calibrated intervals",
            stacklevel=3,
        )

    # -- persistence ----------------------------------------------------------
    def save(self, path, overwrite: bool = False):
        """Write the model file (weights + JSON header); see :mod:`.modelfile`."""
        return save_model(self, path, overwrite=overwrite)

    def header(self) -> dict:
        """JSON header describing the model (everything except weights)."""
        import torch

        return {
            "arch": self.config_.arch,
            "hparams": self.hparams_,
            "config": asdict(self.config_),
            "normalisation": self.normalisation_.to_dict(),
            "window": self.window,
            "steps": self.steps,
            "grid": self.grid_,
            "history": self.history_,
            "metadata": self.metadata_,
            "insar_raster_version": __version__,
            "torch_version": torch.__version__.split("+")[0],
        }


def _default_split(cube: xr.Dataset, config: TrainConfig) -> ChronoSplit:
    """The chronological split of ``config``'s window, steps and fractions (as training makes it)."""
    from insar_raster.forecast.windows import chronological_split

    try:
        return chronological_split(
            cube.sizes["time"], config.window, config.steps, config.val_fraction, config.test_fraction
        )
    except ValueError as exc:
        raise InputError(None, f"cannot split the cube for training: {exc}") from None


def fit_ensemble_members(
    cube: xr.Dataset,
    config: TrainConfig,
    split: ChronoSplit,
    progress: bool = True,
    in_memory_bytes: int | None = None,
    cadence="auto",
) -> dict:
    """``{arch: Forecaster}``: each member of an ``ensemble`` configuration trained on
    ``cube`` with ``split`` (:func:`insar_raster.forecast.ensemble.member_configs`; no
    interval calibration: the ensemble calibrates its own); ``cadence`` as in
    :func:`~insar_raster.forecast.train.fit_network`."""
    from insar_raster.forecast.ensemble import member_configs

    return {
        arch: Forecaster.from_fitted(*fit_network(cube, member, split, progress, in_memory_bytes, cadence))
        for arch, member in member_configs(config).items()
    }


def train_model(
    cube: xr.Dataset,
    config: TrainConfig | None = None,
    split: ChronoSplit | None = None,
    progress: bool = True,
    in_memory_bytes: int | None = None,
) -> Forecaster:
    """Train a forecaster on a cube: ``Forecaster(config).fit(cube, split, ...)``.

    Parameters
    ----------
    cube : xarray.Dataset
        Cube layout of :mod:`insar_raster.io.cube` (may be dask-backed).
    config : TrainConfig, optional
    split : ChronoSplit, optional
        Chronological split of the cube's samples; default
        ``chronological_split(n_times, window, steps, val_fraction, test_fraction)``.
        Training reads ``split.train`` samples, early stopping ``split.val``; test epochs
        are never used as targets.
    progress : bool
        Show a progress bar with train/validation loss per epoch (rank 0 only).
    in_memory_bytes : int, optional
        Cubes up to this size (bytes of float32 displacement) are loaded into memory;
        larger ones are read patch window by patch window (default
        :data:`insar_raster.forecast.data.IN_MEMORY_BYTES`). Same result either way.

    Returns
    -------
    Forecaster
        With the best (lowest validation loss) weights and the per-epoch ``history``.
        Under ``torchrun`` every rank returns the same weights; only rank 0 should save
        them (:func:`~insar_raster.forecast.train.is_main_process`).

    Raises
    ------
    InputError
        The cube is too short for the window/steps/split, or all-masked.
    """
    return Forecaster(config, progress=progress, in_memory_bytes=in_memory_bytes).fit(cube, split)


def check_last_epoch_observed(cube: xr.Dataset) -> None:
    """Refuse a cube whose last epoch is empty: a forecast is NaN wherever the last input
    epoch is masked, so it would be all NaN (a stack with an empty final band).

    Raises
    ------
    InputError
        No valid cell in the last epoch; the hint names the last epoch with data.
    """
    if np.isfinite(cube[CUBE_VARIABLE].isel(time=-1).values).any():
        return
    dates = np.asarray(cube["time"].values).astype("datetime64[D]")
    observed = np.flatnonzero(np.isfinite(cube[CUBE_VARIABLE]).any(("y", "x")).values)
    last = f"its last epoch with data is {dates[observed[-1]]}" if len(observed) else "no epoch has data"
    raise InputError(
        None,
        f"the cube's last epoch ({dates[-1]}) has no valid cell, so the forecast from it would be empty",
        f"{last}; remove the empty epochs at the end of the cube",
    )


def load_model(path) -> Forecaster:
    """The fitted :class:`Forecaster` of a model file (see :func:`.modelfile.read_model`).

    Raises
    ------
    InputError
        Missing, foreign (e.g. a pickle), corrupt or incompatible file. Nothing in the
        file is executed.
    """
    return Forecaster.from_fitted(*read_model(path))
