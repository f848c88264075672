"""Model files: round trip, and nothing in a model file is ever executed."""

import io
import json
import pickle
import struct

import numpy as np
import pytest
import torch

from insar_raster import TrainConfig, train_model
from insar_raster.cli import main
from insar_raster.errors import InputError
from insar_raster.forecast.forecaster import load_model
from insar_raster.forecast.modelfile import MAGIC, read_header
from insar_raster.gis.write import write_cube
from insar_raster.synth import make_scene_cube


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cube, _ = make_scene_cube(shape=(20, 22), n_epochs=36, scene="bowl", seed=3)
    config = TrainConfig(
        window=6,
        steps=2,
        epochs=2,
        samples_per_epoch=16,
        batch_size=8,
        patch_size=16,
        val_patches=8,
        hidden=8,
        features=8,
    )
    forecaster = train_model(cube, config, progress=False)
    folder = tmp_path_factory.mktemp("model")
    path = forecaster.save(folder / "model.ipt")
    write_cube(cube, folder / "cube.nc")
    return cube, forecaster, path


class _Marker:
    """Unpickling this runs code: it would create the marker file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_model_file_round_trips(trained):
    cube, forecaster, path = trained
    loaded = load_model(path)
    assert loaded.config_ == forecaster.config_  # the fitted config, with its chosen acceleration ridge
    assert loaded.normalisation == forecaster.normalisation
    assert loaded.grid == forecaster.grid
    assert loaded.history == forecaster.history and [h["epoch"] for h in loaded.history] == [0, 1, 2]
    for name, tensor in forecaster.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name
    starts = np.array([10, 20])
    np.testing.assert_array_equal(loaded.predict_windows(cube, starts), forecaster.predict_windows(cube, starts))
    header = read_header(path)
    assert header["arch"] == "convlstm" and header["window"] == 6 and header["steps"] == 2
    assert header["grid"]["shape"] == [20, 22]
    assert header["grid"]["transform"] == list(cube.rio.transform())[:6]
    assert "EPSG" in header["grid"]["crs_wkt"] or "LAEA" in header["grid"]["crs_wkt"]
    assert header["normalisation"]["scale_mm"] == forecaster.normalisation.scale_mm
    assert header["insar_raster_version"]


def test_save_refuses_existing_file_unless_overwrite(trained):
    _, forecaster, path = trained
    before = path.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        forecaster.save(path)
    forecaster.save(path, overwrite=True)
    assert path.read_bytes()[: len(MAGIC)] == MAGIC and len(path.read_bytes()) == len(before)


def test_pickled_object_is_rejected_without_running(tmp_path):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.ipt"
    evil.write_bytes(pickle.dumps(_Marker(marker)))
    with pytest.raises(InputError, match="not an insar-raster model file"):
        load_model(evil)
    assert not marker.exists()
    # A whole torch module saved with torch.save (a pickle) is refused the same way.
    full = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), full)
    with pytest.raises(InputError, match="not an insar-raster model file"):
        load_model(full)


def test_pickle_behind_a_valid_header_is_not_run(trained, tmp_path):
    """Even with our magic and header, the weights go through the weights-only loader."""
    _, _, path = trained
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
    head = raw[: len(MAGIC) + 8 + n]
    marker = tmp_path / "executed"
    payload = io.BytesIO()
    torch.save({"weight": _Marker(marker)}, payload)
    evil = tmp_path / "evil.ipt"
    evil.write_bytes(head + payload.getvalue())
    with pytest.raises(InputError, match="refused|corrupt"):
        load_model(evil)
    assert not marker.exists()


def test_corrupt_and_foreign_files_give_clear_errors(trained, tmp_path):
    _, _, path = trained
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.ipt"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="corrupt"):
        load_model(truncated)
    (n,) = struct.unpack("<Q", raw[len(MAGIC) : len(MAGIC) + 8])
    header = json.loads(raw[len(MAGIC) + 8 : len(MAGIC) + 8 + n])
    header["hparams"]["hidden"] = 16  # weights no longer fit the architecture
    body = json.dumps(header).encode()
    mismatched = tmp_path / "mismatched.ipt"
    mismatched.write_bytes(MAGIC + struct.pack("<Q", len(body)) + body + raw[len(MAGIC) + 8 + n :])
    with pytest.raises(InputError, match="corrupt or incompatible"):
        load_model(mismatched)
    header["hparams"]["hidden"] = 8
    header["format_version"] = 1  # a convlstm from before the prior filter
    body = json.dumps(header).encode()
    older = tmp_path / "older.ipt"
    older.write_bytes(MAGIC + struct.pack("<Q", len(body)) + body + raw[len(MAGIC) + 8 + n :])
    with pytest.raises(InputError, match="older insar-raster.*retrain"):
        load_model(older)
    text = tmp_path / "notes.ipt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not an insar-raster model file"):
        load_model(text)
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "missing.ipt")


def test_cli_rejects_a_pickle_as_model_in_one_line(trained, tmp_path, capsys):
    _, _, path = trained
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Marker(marker)))
    cube_path = path.parent / "cube.nc"
    code = main(["forecast", str(cube_path), "--model", str(evil), "-o", str(tmp_path / "f.tif"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not an insar-raster model file" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "f.tif").exists()
