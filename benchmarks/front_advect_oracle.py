"""Advection with the TRUE face velocity: how far can the travelling-wave formula go? (issue 12)

Experiment (numpy only; an oracle, not a forecast). An advancing front is a travelling
wave, so the change a cell will see over the next ``tau`` epochs is the change its
upstream neighbour at ``x - V tau`` saw over the last ``tau``. Here ``V`` is taken from
the scene's :class:`~insar_raster.synth_processes.Front` objects (per cell, the panel
advancing at the forecast time whose future motion there is largest; where its face
stops within the horizon, the shift and the change stop with it), and the formula is
applied to the OBSERVED noisy cube (or, to isolate the formula's own error, the truth):

    forecast(x, t0 + tau) = HF(x, t0 + tau)
        + mean_s [O(x - V (tau + s), t0 - s) - O(x - V (tau + s), t0 - tau - s)]
        - mean_s [HF(x, t0 - s) - HF(x, t0 - tau - s)],   s = 0 .. m - 1

``HF`` the per-pixel history fit (as the ``history_fit`` baseline: 150 epochs, the
acceleration penalty chosen on validation), ``O`` the cube smoothed by a Gaussian of
``sigma`` cells; the average over ``s`` follows the wave back along its path (the same
change seen ``s`` epochs earlier, with independent atmosphere). Elsewhere the forecast is
the history fit. Three levels at ``t0``: the history fit's (``HF level``), the truth's
(``true level``, an oracle), and the fit's moved by the mean of its last 3 residuals
(smoothed like ``O``; from the past only). Scored against the truth on the started-panel
front cells (``front_cells(..., panels="started")``, the split of ``eval_fronts.py``),
in all and by the age of the reaching panel at the forecast time.

    PYTHONPATH=. python benchmarks/front_advect_oracle.py [--scenes fronts,realistic] [--seed 0]
        [--m 1,6] [--sigma 1]
"""

from __future__ import annotations

import sys

import numpy as np
from _args import parse_shape, scene_parser
from scipy.ndimage import gaussian_filter, map_coordinates

from insar_raster.evaluate.baselines import HistoryFit
from insar_raster.evaluate.fronts import front_cells
from insar_raster.forecast.data import history_eval, history_fit, times_in_days
from insar_raster.forecast.windows import chronological_split
from insar_raster.synth import build_scene, make_scene_cube
from insar_raster.synth_processes import Front

#: Ages (yr) of the reaching panel at the forecast time, for the breakdown.
AGES = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 99.0))


def smooth(values, sigma):
    if sigma <= 0:
        return values
    valid = np.isfinite(values)
    s = (0.0, sigma, sigma)
    num = gaussian_filter(np.where(valid, values, 0.0), s, mode="nearest")
    den = gaussian_filter(valid.astype(float), s, mode="nearest")
    return np.where(valid, num / np.maximum(den, 1e-6), np.nan)


def oracle_velocity(fronts, x, y, years, last, steps, shape, res, step_days):
    """Per cell (rows, cols) velocity in cells/epoch and the epochs the face still moves."""
    t0 = years[last]
    t = np.r_[t0, years[last] + np.arange(1, steps + 1) * step_days / 365.25]
    best = np.zeros(x.shape)
    vr, vc, left = np.zeros(x.shape), np.zeros(x.shape), np.zeros(x.shape)
    for p in fronts:
        t_end = p.t_start + p.length / p.speed
        if not (p.t_start <= t0 < t_end):
            continue
        d = p.displacement(x, y, t)
        change = np.abs(d[:, -1] - d[:, 0])
        better = change > np.maximum(best, 0.5)
        best = np.where(better, change, best)
        speed = p.speed * step_days / 365.25 / res  # cells per epoch
        vr = np.where(better, speed * np.sin(p.direction), vr)
        vc = np.where(better, speed * np.cos(p.direction), vc)
        left = np.where(better, (t_end - t0) * 365.25 / step_days, left)
    return vr.reshape(shape), vc.reshape(shape), left.reshape(shape)


def advected_forecast(obs_s, hf_coef, days, last, targets_days, vr, vc, left, m, steps):
    """The formula of the module docstring for one sample -> (steps, h, w) mm."""
    h, w = vr.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(float)
    base = history_eval(hf_coef, targets_days, days[last])  # (steps, h, w)
    out = base.copy()
    moving = (vr != 0) | (vc != 0)
    for k in range(steps):
        tau = k + 1
        te = np.clip(np.minimum(tau, left), 0, None)  # the face stops where the panel ends
        add = np.zeros((h, w))
        for s in range(m):
            tau_i = int(round(tau))
            a, b = last - s, last - s - tau_i
            if b < 0:
                continue
            shift_r, shift_c = rows - vr * (te + s), cols - vc * (te + s)
            diff = obs_s[a] - obs_s[b]
            moved = map_coordinates(np.nan_to_num(diff), [shift_r, shift_c], order=1, mode="nearest")
            hf_change = (
                history_eval(hf_coef, days[[a]], days[last])[0] - history_eval(hf_coef, days[[b]], days[last])[0]
            )
            # A face that stops within the horizon: only the part of the change before it stops.
            add += (moved - hf_change) * (te / tau_i)
        out[k] = np.where(moving, base[k] + add / m, base[k])
    return out


def main(argv=None) -> int:
    parser = scene_parser(__doc__, scenes="fronts,realistic", shape="128x128", resolution=200.0, n_epochs=144, seed=0)
    parser.add_argument("--m", default="1,6", help="epochs averaged along the wave path")
    parser.add_argument("--sigma", default="1", help="Gaussian smoothing of the observed epochs (cells)")
    args = parser.parse_args(argv)
    shape = parse_shape(args.shape)
    window, steps, res = 12, 6, args.resolution
    for scene in args.scenes.split(","):
        observed, truth = make_scene_cube(shape, args.n_epochs, 12, scene, args.seed, resolution=res)
        sc = build_scene(shape, args.n_epochs, 12, scene, args.seed, res)
        split = chronological_split(args.n_epochs, window, steps, 0.15, 0.15)
        mask = front_cells(truth, observed, split, panels="started")
        obs, tru = observed["displacement"].values.astype(float), truth["displacement"].values
        days, years = times_in_days(observed), sc.years
        rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
        x, y = (cols.ravel() + 0.5) * res, (rows.ravel() + 0.5) * res
        fronts = [p for p in sc.processes if isinstance(p, Front)]
        hf = HistoryFit(window, steps).fit(observed, split)
        ridge = hf.acceleration_ridge_
        hf_pred = hf.predict_windows(observed, split.test)
        tgt = np.stack([tru[s + window : s + window + steps] for s in split.test])
        # Age (yr) at the forecast time of the panel that reaches each cell.
        start_years = truth["front_reach_start_days"].values / 365.25
        age = np.stack([np.broadcast_to(years[s + window - 1] - start_years, tgt.shape[1:]) for s in split.test])
        parts = [("all", mask)] + [(f"age {lo:g}-{hi:g} yr", mask & (age >= lo) & (age < hi)) for lo, hi in AGES]

        def score(pred, parts=parts, tgt=tgt):
            out = []
            for _, m in parts:
                e = (pred - tgt)[m]
                out.append((float(np.sqrt(np.nanmean(e**2))), float(np.nanmean(e))))
            return out

        r_hf = score(hf_pred)
        print(f"\n{scene} seed {args.seed}: {int(mask[:, 0].sum())} started front cells x samples; ridge {ridge}")
        print("  started-panel cells x samples by the age of their panel at the forecast time: "
              + ", ".join(f"{name} {int(m[:, 0].sum())}" for name, m in parts[1:]))  # fmt: skip
        print(f"  {'forecast':58s} RMSE (ratio to history_fit) [bias], mm: " + " | ".join(n for n, _ in parts))

        def show(name, r, r_hf=r_hf):
            cells = [f"{a:.2f} ({a / h[0]:.2f}x) [{b:+.2f}]" for (a, b), h in zip(r, r_hf)]
            print(f"  {name:58s} " + " | ".join(cells), flush=True)

        show("history_fit", r_hf)
        coefs, velocities = [], []
        for st in split.test:
            last = st + window - 1
            first = max(0, last + 1 - hf._history)
            coefs.append(history_fit(obs[first : last + 1], days[first : last + 1], days[last], ridge))
            velocities.append(oracle_velocity(fronts, x, y, years, last, steps, shape, res, 12.0))
        sigmas = [float(v) for v in args.sigma.split(",")]
        for source_name, source, level in (
            ("truth cube, HF level", tru.astype(float), "hf"),
            ("truth cube, true level", tru.astype(float), "true"),
            ("observed, HF level", obs, "hf"),
            ("observed, true level", obs, "true"),
            ("observed, HF + last 3 residuals", obs, "recent"),
        ):
            for sigma in sigmas if source_name.startswith("observed") else [0.0]:
                src = smooth(source, sigma)
                for m in [int(v) for v in args.m.split(",")]:
                    pred = np.empty_like(hf_pred)
                    for i, st in enumerate(split.test):
                        last = st + window - 1
                        vr, vc, left = velocities[i]
                        tdays = days[last + 1 : last + 1 + steps]
                        pred[i] = advected_forecast(src, coefs[i], days, last, tdays, vr, vc, left, m, steps)
                        if level == "true":  # the history fit's level replaced by the truth's
                            pred[i] += tru[last] - history_eval(coefs[i], days[[last]], days[last])[0]
                        elif level == "recent":  # the fit's level moved by its last 3 residuals (from the past)
                            recent = obs[last - 2 : last + 1] - history_eval(
                                coefs[i], days[last - 2 : last + 1], days[last]
                            )
                            pred[i] += np.nan_to_num(smooth(recent, sigma).mean(axis=0))
                    show(f"oracle-V advection ({source_name}, sigma {sigma:g}, m {m})", score(pred))
    return 0


if __name__ == "__main__":
    sys.exit(main())
