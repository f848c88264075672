"""Training and forecasting on synthetic cubes: split, masks, normalisation, rasters, CLI."""

import numpy as np
import pytest
import rasterio
import xarray as xr
from cli_args import FAST_TRAINING_DEFAULT_PATCH

from insar_raster import TrainConfig, train_model
from insar_raster.cli import main
from insar_raster.errors import InputError
from insar_raster.forecast.data import Normalisation, history_eval, history_fit
from insar_raster.forecast.windows import chronological_split
from insar_raster.gis.write import write_cube
from insar_raster.grid.spec import GridSpec
from insar_raster.io.cube import make_cube, open_cube
from insar_raster.synth import make_scene_cube

TINY = dict(
    window=6, steps=3, epochs=2, samples_per_epoch=16, batch_size=8, patch_size=16, val_patches=8, hidden=8, features=8
)


def _rmse(a, b):
    return float(np.sqrt(np.nanmean((a - b) ** 2)))


@pytest.fixture(scope="module")
def scene():
    """A small mixed scene (water masked) and a model trained on it briefly."""
    cube, truth = make_scene_cube(shape=(24, 30), n_epochs=40, scene="mixed", seed=1)
    forecaster = train_model(cube, TrainConfig(**TINY), progress=False)
    return cube, truth, forecaster


def test_predict_windows_shapes_and_mask(scene):
    cube, _, forecaster = scene
    split = chronological_split(cube.sizes["time"], 6, 3, 0.15, 0.15)
    pred = forecaster.predict_windows(cube, split.test)
    assert pred.shape == (len(split.test), 3, 24, 30) and pred.dtype == np.float32
    values = cube["displacement"].values
    for i, s in enumerate(split.test):
        masked = np.isnan(values[s + 5])
        assert masked.any() and not masked.all()
        for k in range(3):  # NaN exactly where the last input epoch is masked
            np.testing.assert_array_equal(np.isnan(pred[i, k]), masked)


def test_training_never_reads_test_epochs(scene):
    """Changing only the held-out test epochs leaves the trained model bit-identical."""
    cube, _, forecaster = scene
    split = chronological_split(cube.sizes["time"], 6, 3, 0.15, 0.15)
    poisoned = cube.copy(deep=True)
    poisoned["displacement"][split.val_end :] = 1e6
    other = train_model(poisoned, TrainConfig(**TINY), progress=False)
    for name, tensor in forecaster.model.state_dict().items():
        assert np.array_equal(tensor.numpy(), other.model.state_dict()[name].numpy()), name
    assert other.history == forecaster.history


def test_normalisation_from_training_epochs_only(scene):
    cube, _, forecaster = scene
    split = chronological_split(cube.sizes["time"], 6, 3, 0.15, 0.15)
    assert forecaster.metadata["split"]["train_end"] == split.train_end
    expected = Normalisation.from_training_epochs(cube, split.train_end, 3)
    assert forecaster.normalisation == expected
    changed = cube.copy(deep=True)
    changed["displacement"][split.train_end :] *= 10  # validation and test epochs
    assert Normalisation.from_training_epochs(changed, split.train_end, 3) == expected
    # ...and the statistic is the RMS 3-epoch change of the training epochs.
    values = cube["displacement"].values[: split.train_end].astype(np.float64)
    change = values[3:] - values[:-3]
    assert forecaster.normalisation.scale_mm == pytest.approx(np.sqrt(np.nanmean(change**2)), rel=1e-6)
    assert forecaster.normalisation.step_days == 12.0


def test_history_fit_recovers_trend_and_season():
    days = np.arange(60) * 12.0
    t = (days - days[-1]) / 365.25
    truth = 3.0 - 20 * t - 4 * t**2 + 5 * np.sin(2 * np.pi * days / 365.25 + 0.7)
    values = np.repeat(truth[:, None, None], 2, axis=2).astype(np.float32)
    values[5:9, 0, 1] = np.nan  # a gap in one pixel
    coef = history_fit(values, days, days[-1])
    future = days[-1] + 12.0 * np.arange(1, 4)
    tf = (future - days[-1]) / 365.25
    expected = 3.0 - 20 * tf - 4 * tf**2 + 5 * np.sin(2 * np.pi * future / 365.25 + 0.7)
    np.testing.assert_allclose(history_eval(coef, future, days[-1])[:, 0, 0], expected, atol=0.1)
    np.testing.assert_allclose(history_eval(coef, future, days[-1])[:, 0, 1], expected, atol=0.1)


def _trend_cube(shape=(28, 28), n_epochs=60, seed=0):
    """Trend-dominated scene: smooth velocity field plus 1 mm white noise, a masked lake."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    velocity = -2.0 * np.exp(-((yy - 10) ** 2 + (xx - 15) ** 2) / 60.0) + 0.4 * xx / shape[1]  # mm / epoch
    values = velocity[None] * np.arange(n_epochs)[:, None, None] + rng.normal(0, 1.0, (n_epochs, *shape))
    values[:, 20:25, 3:8] = np.nan
    times = np.datetime64("2020-01-01") + 12 * np.arange(n_epochs) * np.timedelta64(1, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_400_000.0, shape[1], shape[0])
    return make_cube(values.astype(np.float32), times, spec)


def test_network_learns_and_beats_persistence_on_a_trend_scene():
    """Without the history prior the network alone must learn the trend: a real check."""
    cube = _trend_cube()
    config = TrainConfig(
        window=8,
        steps=4,
        epochs=6,
        samples_per_epoch=96,
        batch_size=16,
        patch_size=20,
        val_patches=16,
        hidden=8,
        features=8,
        prior="none",
        lr=5e-3,
    )
    forecaster = train_model(cube, config, progress=False)
    val_losses = [h["val_loss"] for h in forecaster.history]
    assert min(val_losses[1:]) < 0.7 * val_losses[0]  # validation loss drops
    split = chronological_split(cube.sizes["time"], 8, 4, 0.15, 0.15)
    pred = forecaster.predict_windows(cube, split.test)
    values = cube["displacement"].values
    target = values[split.target_indices("test")]
    persistence = np.repeat(values[split.test + 7][:, None], 4, axis=1)
    assert _rmse(pred, target) < 0.75 * _rmse(persistence, target)
    assert forecaster.metadata["val_rmse_mm"] < forecaster.metadata["val_persistence_rmse_mm"]


def test_forecast_geotiff_and_netcdf(scene, tmp_path):
    cube, _, forecaster = scene
    forecast = forecaster.forecast(cube)
    last = cube["time"].values[-1]
    expected_dates = [str((last + k * np.timedelta64(12, "D")).astype("datetime64[D]")) for k in (1, 2, 3)]
    assert [str(d)[:10] for d in forecast["time"].values] == expected_dates
    path = write_cube(forecast, tmp_path / "forecast.tif")
    masked = np.isnan(cube["displacement"].values[-1])
    with rasterio.open(path) as src:
        assert src.count == 3
        assert list(src.descriptions) == expected_dates
        assert src.crs == cube.rio.crs
        assert src.transform == cube.rio.transform()
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        data = src.read()
    for band in data:
        np.testing.assert_array_equal(np.isnan(band), masked)
    nc = write_cube(forecast, tmp_path / "forecast.nc")
    reopened = open_cube(nc)
    assert reopened.sizes["time"] == 3 and reopened.rio.crs == cube.rio.crs
    np.testing.assert_allclose(reopened["displacement"].values, data, equal_nan=True)
    assert forecaster.forecast(cube, steps=2).sizes["time"] == 2
    with pytest.raises(InputError, match="1 to 3 epochs"):
        forecaster.forecast(cube, steps=5)


def test_fully_convolutional_model_runs_on_larger_grid_by_tiles(scene):
    cube, _, forecaster = scene
    big, _ = make_scene_cube(shape=(70, 93), n_epochs=20, scene="mixed", seed=5)
    small_tiles = TrainConfig(**{**TINY, "tile_size": 32, "tile_overlap": 8})
    forecaster_tiled = type(forecaster).from_fitted(
        forecaster.model, small_tiles, forecaster.normalisation, forecaster.grid, forecaster.hparams
    )
    whole = forecaster.forecast(big)["displacement"].values
    tiled = forecaster_tiled.forecast(big)["displacement"].values
    assert whole.shape == tiled.shape == (3, 70, 93)
    np.testing.assert_array_equal(np.isnan(tiled), np.isnan(big["displacement"].values[-1])[None].repeat(3, 0))
    # Blended tiles agree with the one-pass prediction away from tile borders' zero padding.
    assert _rmse(whole, tiled) < 0.1 * np.nanstd(whole)


def test_grid_checks(scene):
    cube, _, forecaster = scene
    coarse, _ = make_scene_cube(shape=(24, 30), n_epochs=20, resolution=50.0, seed=2)
    with pytest.raises(InputError, match="same resolution"):
        forecaster.forecast(coarse)
    paper = train_model(
        cube, TrainConfig(**{**TINY, "arch": "paper", "paper_lstm_hidden": 8, "epochs": 1}), progress=False
    )
    assert paper.hparams["input_size"] == [24, 24]  # clipped to the grid, multiple of 8
    assert paper.forecast(cube)["displacement"].shape == (3, 24, 30)
    other, _ = make_scene_cube(shape=(24, 30), n_epochs=20, seed=2)
    shifted = other.rio.write_transform(other.rio.transform() @ other.rio.transform().translation(3, 0))
    shifted = shifted.assign_coords(x=other["x"].values + 300.0)
    with pytest.raises(InputError, match="only works on its training grid"):
        paper.forecast(shifted)
    short = cube.isel(time=slice(0, 4))
    with pytest.raises(InputError, match="fewer than the model's window"):
        forecaster.forecast(short)


def test_cube_with_an_empty_last_epoch_is_refused_not_forecast_as_all_nan(scene, tmp_path, capsys):
    # A stack whose final band is empty: the forecast (NaN where the last input epoch is
    # masked) would be all NaN, written with exit 0. Refused, naming the last epoch with data,
    # and by the CLI before any training.
    cube, _, forecaster = scene
    emptied = cube.copy(deep=True)
    emptied["displacement"].values[-1] = np.nan
    last_with_data = str(cube["time"].values[-2])[:10]
    with pytest.raises(InputError, match=f"last epoch .* has no valid cell.*{last_with_data}"):
        forecaster.forecast(emptied)
    path = tmp_path / "emptied.nc"
    write_cube(emptied, path)
    out = tmp_path / "f.tif"
    assert main(["forecast", str(path), "-o", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "emptied.nc: the cube's last epoch" in err and last_with_data in err
    assert "training" not in err and not out.exists()


def test_cli_forecast_checks_the_last_epoch_once(scene, tmp_path, monkeypatch):
    """The CLI refuses an empty last epoch before any training or reading of points; the
    forecast it then asks for does not check (and load) the last epoch again."""
    import insar_raster.forecast.forecaster as forecaster_module

    cube, _, forecaster = scene
    write_cube(cube, tmp_path / "c.nc")
    forecaster.save(tmp_path / "m.ipt")
    calls = []
    check = forecaster_module.check_last_epoch_observed
    monkeypatch.setattr(forecaster_module, "check_last_epoch_observed", lambda c: calls.append(1) or check(c))
    out = tmp_path / "f.tif"
    assert main(["forecast", str(tmp_path / "c.nc"), "--model", str(tmp_path / "m.ipt"), "-o", str(out), "-q"]) == 0
    assert out.exists() and len(calls) == 1
    forecaster.forecast(cube)  # the library on its own still checks
    assert len(calls) == 2


def test_irregular_epochs_and_resample(tmp_path):
    cube, _ = make_scene_cube(shape=(16, 18), n_epochs=50, scene="bowl", seed=4, missing_fraction=0.25)
    forecaster = train_model(cube, TrainConfig(**{**TINY, "epochs": 1}), progress=False)
    forecast = forecaster.forecast(cube)
    assert np.all(np.diff(forecast["time"].values).astype("timedelta64[D]").astype(int) == 12)
    path = write_cube(cube, tmp_path / "irregular.nc")
    out = tmp_path / "f.nc"
    code = main(
        [
            "forecast",
            str(path),
            "-o",
            str(out),
            "--resample",
            "12D",
            *FAST_TRAINING_DEFAULT_PATCH,
            "-q",
        ]
    )
    assert code == 0
    reopened = xr.open_dataset(out)
    assert reopened.sizes["time"] == 2
    reopened.close()


def test_cli_train_then_forecast(tmp_path, capsys):
    cube, _ = make_scene_cube(shape=(16, 20), n_epochs=36, scene="bowl", seed=6)
    path = write_cube(cube, tmp_path / "cube.nc")
    model = tmp_path / "model.ipt"
    code = main(
        [
            "train",
            str(path),
            "-o",
            str(model),
            "--epochs",
            "2",
            "--window",
            "6",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--patch-size",
            "16",
            "--samples-per-epoch",
            "16",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and model.exists()
    assert "validation RMSE" in out and "persistence" in out
    tif = tmp_path / "forecast.tif"
    assert main(["forecast", str(path), "--model", str(model), "-o", str(tif), "-q"]) == 0
    with rasterio.open(tif) as src:
        assert src.count == 2 and src.crs == cube.rio.crs
    assert main(["forecast", str(path), "--model", str(model), "-o", str(tif), "-q"]) == 2  # exists
    assert "already exists" in capsys.readouterr().err
    assert (
        main(["forecast", str(path), "--model", str(model), "--steps", "4", "-o", str(tmp_path / "g.tif"), "-q"]) == 2
    )
    assert "forecasts 1 to 2 epochs" in capsys.readouterr().err
    # --plot writes the quicklook PNG beside the forecast (a real, decodable image).
    png = tmp_path / "forecast_plot.png"
    assert (
        main(["forecast", str(path), "--model", str(model), "-o", str(tmp_path / "p.tif"), "--plot", str(png), "-q"])
        == 0
    )
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0


def test_prior_filter_learns_to_denoise_the_history_fit():
    """Smooth truth + white noise per cell: the default model must beat the per-pixel fit.

    The per-pixel history fit carries each cell's noise into its forecast; the learned
    spatial filter averages it with the neighbours'. Checked on held-out test epochs
    against the noise-free truth, versus the same fit computed here independently.
    """
    rng = np.random.default_rng(3)
    n_times, shape, window, steps = 70, (28, 28), 6, 3
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    velocity = -20.0 * np.exp(-((rows - 14) ** 2 + (cols - 12) ** 2) / 60.0) + 0.1 * cols  # mm/yr
    years = np.arange(n_times) * 12 / 365.25
    truth = (velocity[None] * years[:, None, None]).astype(np.float32)
    observed = truth + rng.normal(0, 2.0, truth.shape).astype(np.float32)
    times = np.datetime64("2020-01-01") + np.arange(n_times) * np.timedelta64(12, "D")
    spec = GridSpec("EPSG:3035", 100.0, 3_000_000.0, 3_400_000.0, shape[1], shape[0])
    cube = make_cube(observed, times, spec)
    config = TrainConfig(
        window=window,
        steps=steps,
        epochs=8,
        samples_per_epoch=64,
        batch_size=8,
        patch_size=20,
        val_patches=16,
        hidden=8,
        features=8,
        seed=0,
    )
    forecaster = train_model(cube, config, progress=False)
    stage = forecaster.metadata["prior_filter"]
    assert stage["kept"] and stage["val_rmse_filtered_mm"] < stage["val_rmse_prior_mm"]
    kernel = np.asarray(stage["kernel"])
    assert kernel[2, 2] < 0 < kernel[2, 1]  # a smoother: takes from the centre, gives to neighbours
    split = chronological_split(n_times, window, steps, 0.15, 0.15)
    pred = forecaster.predict_windows(cube, split.test)
    days = (times - times[0]) / np.timedelta64(1, "D")
    per_pixel = np.stack(
        [
            history_eval(
                history_fit(observed[: s + window], days[: s + window], days[s + window - 1]),
                days[s + window : s + window + steps],
                days[s + window - 1],
            )
            for s in split.test
        ]
    )
    target = truth[split.target_indices("test")]
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # the filter needs 5x5 support
    assert _rmse(pred[inner], target[inner]) < 0.85 * _rmse(per_pixel[inner], target[inner])


def test_new_weights_need_a_gain_that_holds_across_validation_dates():
    """A lower loss from a lucky date or two is refused; a steady gain is kept."""
    from insar_raster.forecast.train import _beats, _Score

    config = TrainConfig(min_improvement=0.01, significance=2.0)
    incumbent = _Score(1.0, np.ones(10))
    lucky = np.ones(10)
    lucky[3] = 0.5  # loss 0.95, all from one date
    assert not _beats(_Score(float(lucky.mean()), lucky), incumbent, config)
    steady = np.full(10, 0.95) + np.linspace(-0.01, 0.01, 10)
    assert _beats(_Score(float(steady.mean()), steady), incumbent, config)
    assert _beats(_Score(float(lucky.mean()), lucky), incumbent, TrainConfig(significance=0.0))
    assert not _beats(_Score(0.995, steady), incumbent, config)  # below min_improvement
    with pytest.raises(InputError, match="significance"):
        TrainConfig(significance=-1.0)


def test_a_model_trained_on_one_component_warns_on_another(tmp_path):
    """A model trained on an EGMS L3 Up cube, given an East cube (was: forecast silently,
    as if east-west motion behaved like the vertical it learned). Same component, or a
    cube whose geometry is not known: no warning; the model file keeps what it learned on."""
    import warnings

    from insar_raster.forecast.forecaster import load_model

    cube, _ = make_scene_cube(shape=(16, 16), n_epochs=40, scene="bowl", seed=1)
    up = cube.assign_attrs(product_level="L3U")
    model = train_model(up, TrainConfig(**{**TINY, "epochs": 1}), progress=False)
    assert model.metadata_["geometry"]["component"] == "vertical"
    model.save(tmp_path / "m.ipt")
    east = cube.assign_attrs(product_level="L3E")
    for forecaster in (model, load_model(tmp_path / "m.ipt")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            forecaster.forecast(up)
            forecaster.forecast(cube)
        with pytest.warns(
            UserWarning, match=r"trained on L3U \(vertical\) values but the cube holds L3E \(east-west\)"
        ):
            forecaster.forecast(east)
