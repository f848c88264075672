"""Quicklook PNGs (matplotlib, Agg): maps in mm with colour bars, and time series.

- :func:`plot_forecast`: last observed epoch, first forecast epoch and their
  difference, plus observed + forecast series at chosen points.
- :func:`plot_cube`: latest epoch and mean velocity of a cube, plus series.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly (no
``pyplot`` global state, no GUI backend), and saved atomically.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from insar_raster.errors import InputError
from insar_raster.gis.style import robust_limit
from insar_raster.io.atomic import atomic_path, check_output_path
from insar_raster.io.layout import is_geographic

log = logging.getLogger("insar_raster")

CMAP = "RdBu"  # red = negative (subsidence), blue = positive (uplift), as the .qml styles
_MAX_PIXELS = 1500  # longest side drawn; larger grids are subsampled for the picture only
_AUTO_POINTS = 2


def _disp(cube) -> xr.DataArray:
    da = cube["displacement"] if isinstance(cube, xr.Dataset) else cube
    if da.dims != ("time", "y", "x"):
        raise InputError(None, f"expected a (time, y, x) displacement cube, got {da.dims}")
    return da


def _day(t) -> str:
    return str(np.datetime_as_string(np.datetime64(t, "ns"), unit="D"))


def _thin(layer: xr.DataArray) -> xr.DataArray:
    step = int(np.ceil(max(layer.sizes["y"], layer.sizes["x"]) / _MAX_PIXELS))
    return layer.isel(y=slice(None, None, step), x=slice(None, None, step)) if step > 1 else layer


def _extent(layer: xr.DataArray):
    x, y = layer["x"].values, layer["y"].values
    dx = abs(x[1] - x[0]) if len(x) > 1 else 1.0
    dy = abs(y[1] - y[0]) if len(y) > 1 else 1.0
    return (x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2)


def _map(fig, ax, layer: xr.DataArray, limit: float, title: str, label: str):
    import matplotlib

    layer = _thin(layer)
    values = np.asarray(layer.values, dtype=float)
    if layer["y"].values[0] < layer["y"].values[-1]:
        values = values[::-1]  # imshow draws row 0 at the top: north first
    # Masked cells (no measurement points) in light grey.
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad="0.85")
    image = ax.imshow(
        values, cmap=cmap, vmin=-limit, vmax=limit, extent=_extent(layer), interpolation="nearest", origin="upper"
    )
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    degrees = is_geographic(layer.rio.crs)
    ax.set_xlabel("longitude (°)" if degrees else "x (m)", fontsize=8)
    ax.set_ylabel("latitude (°)" if degrees else "y (m)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(style="plain", useOffset=False)
    for tick in ax.get_xticklabels():
        tick.set_rotation(30)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, extend="both")
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return image


def resolve_points(
    points, cube: xr.DataArray, points_dataset: xr.Dataset | None = None
) -> list[tuple[str, float, float]]:
    """Turn user point specs into (label, x, y) in the cube's CRS.

    Parameters
    ----------
    points : iterable
        Items are ``(x, y)`` pairs, ``"x,y"`` strings (metres, cube CRS), or measurement
        point ids (``pid``; needs ``points_dataset``). A dict maps labels to such items.
    cube : xarray.DataArray
        The cube the points are drawn on (used to check they fall inside it).
    points_dataset : xarray.Dataset, optional
        Points layout of :mod:`insar_raster.io.points`, to look pids up.

    Raises
    ------
    InputError
        An unparsable item, an unknown pid, or a point outside the grid.
    """
    items = points.items() if isinstance(points, dict) else ((None, p) for p in points)
    x0, x1, y0, y1 = _extent(cube)
    out = []
    for label, item in items:
        xy = None
        if isinstance(item, str):
            parts = item.split(",")
            if len(parts) == 2:
                try:
                    xy = float(parts[0]), float(parts[1])
                except ValueError:
                    xy = None
            if xy is None:
                if points_dataset is None or "pid" not in points_dataset.coords:
                    raise InputError(
                        None,
                        f"{item!r} is neither x,y nor a known pid",
                        "give x,y in the cube's CRS (metres), or pids together with the points file",
                        param="points",
                    )
                hit = np.flatnonzero(points_dataset["pid"].values.astype(str) == item)
                if hit.size == 0:
                    raise InputError(None, f"no measurement point with pid {item!r}", param="points")
                xy = float(points_dataset["x"].values[hit[0]]), float(points_dataset["y"].values[hit[0]])
                label = label or item
        else:
            try:
                xy = float(item[0]), float(item[1])
            except (TypeError, ValueError, IndexError):
                raise InputError(
                    None, f"cannot read point {item!r}", "expected (x, y), 'x,y' or a pid", param="points"
                ) from None
        if not (x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1):
            raise InputError(
                None,
                f"point {xy[0]:.1f},{xy[1]:.1f} is outside the grid (x {x0:.1f} to {x1:.1f}, y {y0:.1f} to {y1:.1f})",
                param="points",
            )
        out.append((label or f"P{len(out) + 1}", *xy))
    return out


def _auto_points(cube: xr.DataArray) -> list[tuple[str, float, float]]:
    """Cells with the largest subsidence and uplift at the latest epoch (valid cells only)."""
    last = np.asarray(_thin(cube.isel(time=-1)).values, dtype=float)
    if not np.isfinite(last).any():
        return []
    thin = _thin(cube.isel(time=-1))
    picks = []
    for label, idx in (("max subsidence", np.nanargmin(last)), ("max uplift", np.nanargmax(last))):
        r, c = np.unravel_index(idx, last.shape)
        picks.append((label, float(thin["x"].values[c]), float(thin["y"].values[r])))
    return picks[:_AUTO_POINTS]


def _series_at(da: xr.DataArray, x: float, y: float) -> xr.DataArray:
    return da.sel(x=x, y=y, method="nearest").load()


def _mark(axes, picks):
    """Circle each picked cell and label it clear of the marker: the label is set 10 pt
    away on the side facing the map's centre (so it stays inside the map), on a white
    box, joined to the marker by a thin line."""
    for ax in axes:
        x0, x1 = sorted(ax.get_xlim())
        y0, y1 = sorted(ax.get_ylim())
        for label, x, y in picks:
            ax.plot(x, y, marker="o", markersize=5, markerfacecolor="none", markeredgecolor="k")
            dx = 10 if x < (x0 + x1) / 2 else -10
            dy = 10 if y < (y0 + y1) / 2 else -10
            ax.annotate(
                label,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7,
                ha="left" if dx > 0 else "right",
                va="bottom" if dy > 0 else "top",
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
                arrowprops={"arrowstyle": "-", "lw": 0.6, "color": "k", "shrinkA": 0, "shrinkB": 3},
            )


def _save(fig, path, overwrite: bool) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def _series_axes(fig, grid_spec_row, picks, observed: xr.DataArray, forecast: xr.DataArray | None):
    ax = fig.add_subplot(grid_spec_row)
    colours = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    for i, (label, x, y) in enumerate(picks):
        colour = colours[i % len(colours)]
        obs = _series_at(observed, x, y)
        if not np.isfinite(obs.values).any():
            warnings.warn(f"quicklook: point {label} ({x:.0f}, {y:.0f}) falls on a masked cell (no data)", stacklevel=3)
        ax.plot(obs["time"].values, obs.values, "-", color=colour, marker=".", markersize=3, label=f"{label} observed")
        if forecast is not None:
            fc = _series_at(forecast, x, y)
            # Start the forecast line at the last observed value so the hand-over is visible.
            before = observed["time"].values < fc["time"].values[0]
            times = fc["time"].values
            values = fc.values
            if before.any():
                last = _series_at(observed.isel(time=np.flatnonzero(before)[-1]), x, y)
                times = np.r_[last["time"].values, times]
                values = np.r_[float(last.values), values]
            ax.plot(times, values, "--", color=colour, marker="s", markersize=3, label=f"{label} forecast")
    if forecast is not None and forecast.sizes["time"]:
        ax.axvline(forecast["time"].values[0], color="0.5", linewidth=0.8, linestyle=":")
    ax.axhline(0, color="0.7", linewidth=0.6)
    ax.set_ylabel("displacement (mm)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if picks:
        ax.legend(fontsize=7, ncol=2 if len(picks) > 2 else 1, loc="best")
    ax.set_title("time series at " + ", ".join(f"{label} ({x:.0f}, {y:.0f})" for label, x, y in picks), fontsize=9)
    return ax


def check_plot_path(path, overwrite: bool = False) -> Path:
    """Validate a quicklook path before long work (``.png``, writable, not existing)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(path, "quicklooks are PNG files", "name the output *.png")
    return check_output_path(path, overwrite)


def plot_forecast(
    observed_cube,
    forecast_cube,
    path,
    points=None,
    overwrite: bool = False,
    points_dataset: xr.Dataset | None = None,
    title: str | None = None,
) -> Path:
    """Quicklook of a forecast: last observed epoch, first forecast epoch, difference, series.

    Parameters
    ----------
    observed_cube, forecast_cube : xarray.Dataset or xarray.DataArray
        Cubes (``displacement`` (time, y, x), mm) on the same grid; the forecast's
        epochs follow the observed ones.
    path : str or Path
        Output ``.png`` (written atomically).
    points : list, optional
        Where to draw time series: ``(x, y)`` pairs or ``"x,y"`` strings in the cube's
        CRS, or pids (with ``points_dataset``); see :func:`resolve_points`. Default: the
        cells of largest subsidence and uplift at the last observed epoch.
    overwrite : bool
        Replace an existing PNG.
    points_dataset : xarray.Dataset, optional
        Measurement points, to resolve pids.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.figure import Figure

    path = check_plot_path(path, overwrite)
    observed, forecast = _disp(observed_cube), _disp(forecast_cube)
    if observed.sizes["time"] == 0 or forecast.sizes["time"] == 0:
        raise InputError(path, "need at least one observed and one forecast epoch to plot")
    last_obs = observed.isel(time=-1).load()
    first_fc = forecast.isel(time=0).load()
    same_grid = (
        first_fc.shape == last_obs.shape
        and np.allclose(first_fc["x"], last_obs["x"])
        and np.allclose(first_fc["y"], last_obs["y"])
    )
    if not same_grid:
        res = abs(float(last_obs["x"][1] - last_obs["x"][0])) if last_obs.sizes["x"] > 1 else 1.0
        first_fc = first_fc.reindex_like(last_obs, method="nearest", tolerance=res / 2)
    picks = resolve_points(points, observed, points_dataset) if points else _auto_points(observed)

    limit = robust_limit(np.r_[last_obs.values.ravel(), first_fc.values.ravel()])
    diff = first_fc - last_obs
    diff_limit = robust_limit(diff.values)
    t_obs, t_fc = last_obs["time"].values, first_fc["time"].values
    lead_days = (np.datetime64(t_fc, "ns") - np.datetime64(t_obs, "ns")) / np.timedelta64(1, "D")

    fig = Figure(figsize=(15, 9), layout="constrained")
    gs = fig.add_gridspec(2, 3, height_ratios=[1.3, 1])
    axes = [fig.add_subplot(gs[0, i]) for i in range(3)]
    _map(fig, axes[0], last_obs, limit, f"last observed epoch {_day(t_obs)}", "displacement (mm)")
    _map(fig, axes[1], first_fc, limit, f"first forecast epoch {_day(t_fc)} (+{lead_days:g} d)", "displacement (mm)")
    _map(fig, axes[2], diff, diff_limit, "difference: first forecast - last observed", "difference (mm)")
    _mark(axes, picks)
    _series_axes(fig, gs[1, :], picks, observed, forecast)
    fig.suptitle(
        title
        or f"Forecast {_day(forecast['time'].values[0])} to {_day(forecast['time'].values[-1])} "
        f"({forecast.sizes['time']} epochs) from observations to {_day(t_obs)}",
        fontsize=12,
    )
    return _save(fig, path, overwrite)


def plot_cube(
    cube, path, points=None, overwrite: bool = False, points_dataset: xr.Dataset | None = None, title: str | None = None
) -> Path:
    """Quicklook of a cube: latest epoch, mean velocity, and series at points.

    Parameters are as in :func:`plot_forecast` (without the forecast).
    """
    from matplotlib.figure import Figure

    from insar_raster.gis.derived import mean_velocity

    path = check_plot_path(path, overwrite)
    disp = _disp(cube)
    if disp.sizes["time"] == 0:
        raise InputError(path, "the cube has no epochs to plot")
    last = disp.isel(time=-1).load()
    picks = resolve_points(points, disp, points_dataset) if points else _auto_points(disp)
    fig = Figure(figsize=(12, 9), layout="constrained")
    gs = fig.add_gridspec(2, 2, height_ratios=[1.3, 1])
    axes = [fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])]
    _map(
        fig,
        axes[0],
        last,
        robust_limit(last.values),
        f"displacement at {_day(last['time'].values)}",
        "displacement (mm)",
    )
    if disp.sizes["time"] >= 2:
        velocity = mean_velocity(_thin(disp)).load()
        _map(
            fig,
            axes[1],
            velocity,
            robust_limit(velocity.values),
            f"mean velocity {_day(disp['time'].values[0])} to {_day(disp['time'].values[-1])}",
            "velocity (mm/yr)",
        )
    else:
        axes[1].set_axis_off()
    _mark(axes, picks)
    _series_axes(fig, gs[1, :], picks, disp, None)
    fig.suptitle(
        title or f"Displacement cube: {disp.sizes['y']} x {disp.sizes['x']} cells, {disp.sizes['time']} epochs",
        fontsize=12,
    )
    return _save(fig, path, overwrite)
