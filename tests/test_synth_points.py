"""Per-MP individual behaviour of synthetic points (own offset, seasonal amplitude, noise)."""

import numpy as np
import pytest

from insar_raster.forecast.data import harmonic_design
from insar_raster.synth import MPBehaviour, make_scene


@pytest.fixture(scope="module")
def pair():
    """The same scene with and without per-MP behaviour (same positions and atmosphere)."""
    kw = dict(n_points=1500, shape=(24, 24), n_epochs=90, seed=4)
    return make_scene(**kw), make_scene(**kw, mp_behaviour=None)


def test_per_mp_parts_are_individual_and_the_truth_is_the_common_field(pair):
    (points, truth), (plain, truth_plain) = pair
    np.testing.assert_array_equal(points.x.values, plain.x.values)
    np.testing.assert_array_equal(truth.displacement.values, truth_plain.displacement.values)
    assert "MPBehaviour" in points.attrs["mp_behaviour"] and plain.attrs["mp_behaviour"] == "none"
    dev = (points.displacement.values - plain.displacement.values).astype(np.float64)  # per-MP parts - 1 mm noise
    assert np.all(dev[:, 0] == 0)  # EGMS reference: first epoch 0
    days = (points.time.values - points.time.values[0]) / np.timedelta64(1, "D")
    design = harmonic_design(days[1:], 0.0, seasonal=True, acceleration=False)  # 1, t, sin, cos
    coef, *_ = np.linalg.lstsq(design, dev[:, 1:].T, rcond=None)
    resid = dev[:, 1:] - (design @ coef).T
    offset, amplitude, noise = coef[0], np.hypot(coef[2], coef[3]), resid.std(axis=1)
    # Offsets: 3 mm std across MPs; no individual trend.
    assert 2.5 < offset.std() < 3.6
    assert np.abs(coef[1]).mean() < 0.5
    # Own seasonal amplitude: spread across MPs (the scene alone gives none).
    assert np.percentile(amplitude, 90) > 1.0
    # Own noise: each MP's std within 2-4 mm (plus the removed 1 mm white noise), and spread.
    assert 1.8 < np.percentile(noise, 5) and np.percentile(noise, 95) < 4.4
    assert np.percentile(noise, 90) - np.percentile(noise, 10) > 1.0


def test_behaviour_can_be_tuned_and_switched_off():
    quiet = MPBehaviour(offset_mm=0.0, seasonal_scale=(1.0, 1.0), noise_mm=(0.0, 0.0))
    kw = dict(n_points=300, shape=(16, 16), n_epochs=20, seed=2)
    a, _ = make_scene(**kw, mp_behaviour=quiet)
    b, _ = make_scene(**kw, mp_behaviour=None)
    # Without per-MP parts the two differ only by the plain run's 1 mm white noise.
    diff = (a.displacement.values - b.displacement.values)[:, 1:]
    assert 0.8 < diff.std() < 1.2 and abs(diff.mean()) < 0.1


def test_cli_synth_long_record_ends_by_today_and_grids(tmp_path, capsys):
    """300 epochs every 12 days from 2019-01-03 ran to 2028: grid refused the file it had
    just written ('date column ... is after today'). It now starts earlier; the default
    record keeps its dates."""
    from insar_raster.cli import main
    from insar_raster.io.points import read_points

    long = tmp_path / "long.csv"
    assert main(["synth", "-o", str(long), "--points", "60", "--shape", "5x5", "--epochs", "300", "--no-truth"]) == 0
    assert main(["grid", str(long), "-q"]) == 0
    times = read_points([long]).time.values.astype("datetime64[D]")
    assert len(times) == 300 and times[0] >= np.datetime64("2014-10-03") and times[-1] <= np.datetime64("2025-12-31")
    short = tmp_path / "short.csv"
    assert main(["synth", "-o", str(short), "--points", "60", "--shape", "5x5", "--epochs", "20", "--no-truth"]) == 0
    assert read_points([short]).time.values[0].astype("datetime64[D]") == np.datetime64("2019-01-03")
    capsys.readouterr()
    too_long = tmp_path / "too_long.csv"
    assert (
        main(["synth", "-o", str(too_long), "--points", "60", "--shape", "5x5", "--epochs", "800", "--no-truth"]) == 0
    )
    assert "is after today: grid, forecast and evaluate need --allow-dates" in capsys.readouterr().err
