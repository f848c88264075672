"""The ``ensemble`` forecaster: a ``convlstm`` and a ``cnn`` averaged with a validated weight.

Both members are the whole default pipeline (history prior, its learned 5x5 filter,
a network trained on the prior's residuals and kept only when it beats the filtered
prior on validation, :mod:`insar_raster.forecast.train`); they differ only in the core
of the network (a ConvLSTM, or convolutions over the stacked epochs). Two differently
built networks make partly independent errors, so a weighted average of their forecasts
has a lower variance than either (variance reduction, as in any model average).

The weight ``w`` of the ``convlstm`` (``1 - w`` for the ``cnn``) is chosen on the
**validation** samples of the split, never on test: every cell of up to
:data:`WEIGHT_SAMPLES` validation samples (evenly spread) is forecast by both members
and ``w`` on :data:`WEIGHT_GRID` minimises the mean squared error against the
observations. ``w = 1`` or ``0`` drops a member, and a member whose network was not
kept *is* the filtered history prior, so the average falls back to either network alone
or to the prior alone when validation says so. When neither network was kept both
members are the same filtered prior: ``w = 1`` without forecasting anything.

:meth:`insar_raster.forecast.forecaster.Forecaster.fit` trains the members
(:func:`insar_raster.forecast.forecaster.fit_ensemble_members`) and calls
:func:`combine_members`. ``evaluate`` trains ``convlstm`` and ``cnn`` anyway:
:meth:`~insar_raster.forecast.forecaster.Forecaster.fit_from_members` reuses them (same
configuration, same split), so the ensemble costs only the weight choice there.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np

from insar_raster.forecast.data import CubeReader
from insar_raster.forecast.windows import evenly_spread
from insar_raster.models import ENSEMBLE_MEMBERS

log = logging.getLogger("insar_raster")

#: Candidate weights of the first member (``convlstm``), tried from 1 down to 0: on
#: a tie (e.g. identical members) the first member alone wins.
WEIGHT_GRID = tuple(np.round(np.linspace(1.0, 0.0, 21), 2).tolist())
#: At most this many validation samples (evenly spread) are forecast to choose the weight.
WEIGHT_SAMPLES = 24
#: Samples forecast at once while accumulating the validation error.
_CHUNK = 4


def member_configs(config) -> dict:
    """The configuration of each member of an ``ensemble`` configuration."""
    return {arch: replace(config, arch=arch) for arch in ENSEMBLE_MEMBERS}


def weight_errors(first: np.ndarray, second: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Sums ``[n, sum d^2, sum d e, sum e^2]`` for the MSE of ``w first + (1 - w) second``.

    With ``d = first - second`` and ``e = second - observed`` the error of the average
    is ``w d + e``, so its summed square is ``w^2 sum d^2 + 2 w sum d e + sum e^2``:
    these four sums give the MSE of every weight exactly. Cells where any of the three
    is NaN are left out.
    """
    ok = np.isfinite(first) & np.isfinite(second) & np.isfinite(observed)
    d = np.where(ok, first.astype(np.float64) - second, 0.0)
    e = np.where(ok, second.astype(np.float64) - observed, 0.0)
    return np.array([ok.sum(), (d * d).sum(), (d * e).sum(), (e * e).sum()])


def choose_weight(sums: np.ndarray, grid=WEIGHT_GRID) -> tuple[float, np.ndarray]:
    """The weight of ``grid`` with the lowest MSE (the first on a tie) and the MSE of each.

    ``sums`` are those of :func:`weight_errors` (added over samples).
    """
    n, dd, de, ee = (float(v) for v in sums)
    w = np.asarray(grid, dtype=np.float64)
    mse = (w * w * dd + 2 * w * de + ee) / max(n, 1.0)
    best = int(np.argmin(mse))  # argmin keeps the first of equal values
    return float(w[best]), mse


def _kept(member) -> bool:
    return int(member.metadata_.get("best_epoch") or 0) > 0


def _check_compatible(members: dict) -> None:
    """Members must share the data handling: normalisation, grid, window, the chosen prior."""
    first, *others = members.values()
    for other in others:
        c1, c2 = first.config_, other.config_
        same = (
            first.normalisation_.to_dict() == other.normalisation_.to_dict()
            and first.grid_ == other.grid_
            and (c1.window, c1.steps, c1.prior, c1.use_prior) == (c2.window, c2.steps, c2.prior, c2.use_prior)
            and (c1.fit_history, c1.acceleration_ridge, c1.lag_prior, c1.lag_prior_fit, c1.lag_prior_centred)
            == (c2.fit_history, c2.acceleration_ridge, c2.lag_prior, c2.lag_prior_fit, c2.lag_prior_centred)
            and bool(first.hparams_.get("advection")) == bool(other.hparams_.get("advection"))
        )
        if not same:
            raise ValueError(
                "ensemble members differ in normalisation, grid, window, steps or history prior; "
                "they must be trained on the same cube, split and settings"
            )


def validation_starts(split):
    """The samples the weight is chosen on: the validation samples (the last training
    samples when there are none, as early stopping does), at most ``WEIGHT_SAMPLES``."""
    starts = split.val if len(split.val) else split.train[-max(1, len(split.train) // 5) :]
    starts = np.asarray(starts, dtype=int)
    return starts[evenly_spread(len(starts), WEIGHT_SAMPLES)]


def combine_members(members: dict, cube, split, in_memory_bytes: int | None = None) -> tuple:
    """The fitted parts of an ``ensemble`` forecaster from its fitted members.

    Parameters
    ----------
    members : dict
        ``{arch: Forecaster}`` for each of :data:`~insar_raster.models.ENSEMBLE_MEMBERS`,
        fitted on ``cube`` with ``split`` and the same settings.
    cube : xarray.Dataset
        The cube they were fitted on.
    split : ChronoSplit
        Their split; the weight is chosen on its validation samples.

    Returns
    -------
    tuple
        ``(model, config, normalisation, grid, hparams, history, metadata)``, the
        arguments of :meth:`Forecaster.from_fitted`.
    """
    from insar_raster.models import build_model

    members = {arch: members[arch] for arch in ENSEMBLE_MEMBERS}
    _check_compatible(members)
    first, second = members.values()
    kept = {arch: _kept(m) for arch, m in members.items()}
    starts = validation_starts(split)
    combination = {
        "members": {
            arch: {
                "network_kept": kept[arch],
                "best_epoch": m.metadata_.get("best_epoch"),
                "epochs_trained": len([h for h in m.history_ if int(h.get("epoch", 1)) >= 1]),
                "val_rmse_mm": m.metadata_.get("val_rmse_mm"),
                "val_history_fit_rmse_mm": m.metadata_.get("val_history_fit_rmse_mm"),
            }
            for arch, m in members.items()
        },
        "weight_grid": list(WEIGHT_GRID),
    }
    if not any(kept.values()):
        # Neither network beat the filtered prior: both members are that prior.
        weight, scored = 1.0, None
        combination["chosen_by"] = "neither network was kept on validation: the filtered history prior"
    else:
        reader = CubeReader(cube, in_memory_bytes)
        _, height, width = reader.shape
        window, steps = first.window, first.steps
        sums = np.zeros(4)
        persistence = np.zeros(2)
        for i in range(0, len(starts), _CHUNK):
            chunk = starts[i : i + _CHUNK]
            a = first._predict_starts(cube, reader, chunk)
            b = second._predict_starts(cube, reader, chunk)
            observed = reader.read_targets(chunk, window, steps)
            sums += weight_errors(a, b, observed)
            last = reader.read_epochs(chunk + window - 1, 0, height, 0, width)[:, None]
            ok = np.isfinite(a) & np.isfinite(observed)
            persistence += [float(np.where(ok, (last - observed) ** 2, 0.0).sum()), float(ok.sum())]
        weight, mse = choose_weight(sums)
        scored = {
            "val_rmse_mm": math.sqrt(float(mse[WEIGHT_GRID.index(weight)])),
            "val_persistence_rmse_mm": math.sqrt(persistence[0] / max(persistence[1], 1.0)),
        }
        combination["val_rmse_mm_by_weight"] = [round(math.sqrt(max(float(v), 0.0)), 5) for v in mse]
        combination["chosen_by"] = (
            f"lowest MSE against the observations on every cell of {len(starts)} validation samples"
        )
        combination["samples"] = [int(s) for s in starts]
    weights = [weight, round(1.0 - weight, 10)]
    combination["weights"] = dict(zip(members, weights))
    log.info(
        "ensemble: weight %.2f convlstm (network %s), %.2f cnn (network %s), chosen on validation",
        weights[0],
        "kept" if kept["convlstm"] else "not kept",
        weights[1],
        "kept" if kept["cnn"] else "not kept",
    )
    # The member whose training record the ensemble reports: the one with the latest kept
    # epoch among those with a weight (the larger weight on a tie).
    lead = max(
        (arch for arch, w in zip(members, weights) if w > 0),
        key=lambda arch: (int(members[arch].metadata_.get("best_epoch") or 0), combination["weights"][arch]),
    )
    hparams = {
        "members": [{"arch": arch, "hparams": dict(m.hparams_)} for arch, m in members.items()],
        "weights": weights,
        "advection": int(first.hparams_.get("advection", 0) or 0),
    }
    model = build_model("ensemble", **hparams)
    for part, member in zip(model.members, members.values()):
        part.load_state_dict(member.model_.state_dict())
    model.eval()
    metadata = {k: v for k, v in members[lead].metadata_.items() if k != "intervals"}
    if scored is not None:  # scored on the validation grid, not the training patches
        metadata.update(scored)
        metadata["val_history_fit_rmse_mm"] = None
    metadata["ensemble"] = combination
    config = replace(members[lead].config_, arch="ensemble")
    return (
        model,
        config,
        first.normalisation_,
        first.grid_,
        hparams,
        list(members[lead].history_),
        metadata,
    )
