"""Architectures: output shapes, fixed vs any grid size, persistence at initialisation."""

import numpy as np
import pytest
import torch

from insar_raster.models import ARCHITECTURES, ENSEMBLE_MEMBERS, FULLY_CONVOLUTIONAL, build_model
from insar_raster.models.paper import PaperCNNLSTM


def _build(arch, **hparams):
    """A network of ``arch``; an ensemble of its members (equal weights) with these hparams."""
    if arch == "ensemble":
        members = [{"arch": a, "hparams": hparams} for a in ENSEMBLE_MEMBERS]
        return build_model("ensemble", members=members, weights=[0.5, 0.5])
    return build_model(arch, **hparams)


def test_paper_arch_maps_256_input_to_256_output():
    torch.manual_seed(0)
    model = PaperCNNLSTM(in_channels=1, steps=1, input_size=256).eval()
    x = torch.randn(2, 4, 1, 256, 256)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1, 256, 256)
    assert torch.isfinite(y).all()
    # The published compression: three blocks take 256x256 to 32x32x128.
    with torch.no_grad():
        features = model.encoder(x[:, 0])
    assert features.shape == (2, 128, 32, 32)
    assert not model.fully_convolutional


def test_paper_arch_is_fixed_size():
    model = PaperCNNLSTM(in_channels=1, steps=2, input_size=(32, 40))
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 1, 32, 40)).shape == (1, 2, 32, 40)
        with pytest.raises(ValueError, match="expects 32x40"):
            model(torch.zeros(1, 3, 1, 64, 64))
    with pytest.raises(ValueError, match="multiple of 8"):
        PaperCNNLSTM(input_size=70)


@pytest.mark.parametrize("arch", FULLY_CONVOLUTIONAL)
@pytest.mark.parametrize("shape", [(70, 93), (33, 17)])
def test_fully_convolutional_archs_run_on_odd_sizes(arch, shape):
    torch.manual_seed(0)
    model = _build(arch, in_channels=6, steps=3, window=5, hidden=8, features=8).eval()
    x = torch.randn(2, 5, 6, *shape)
    prior = torch.randn(2, 3, *shape)
    with torch.no_grad():
        y = model(x, torch.tensor([[1.0, 2, 3], [1, 2.5, 4]]), prior)
    assert y.shape == (2, 3, *shape)
    assert model.fully_convolutional


@pytest.mark.parametrize("arch", FULLY_CONVOLUTIONAL)
def test_untrained_model_forecasts_the_prior(arch):
    """Zero-initialised output layer: the change is exactly the prior (persistence if none)."""
    torch.manual_seed(0)
    model = _build(arch, in_channels=6, steps=2, window=4, hidden=8, features=8).eval()
    x = torch.randn(1, 4, 6, 20, 24)
    prior = torch.randn(1, 2, 20, 24)
    with torch.no_grad():
        assert torch.equal(model(x, None, prior), prior)
        assert torch.count_nonzero(model(x)) == 0


def test_velocity_head_scales_with_lead_time():
    """A velocity-only output extrapolates linearly to irregular leads."""
    torch.manual_seed(0)
    model = build_model("convlstm", in_channels=6, steps=3, window=4, hidden=8, features=8).eval()
    with torch.no_grad():
        model.out.bias[0] = 1.0  # velocity map = 1 (normalised units per step)
        y = model(torch.zeros(1, 4, 6, 10, 10), torch.tensor([[1.0, 2.0, 3.5]]))
    np.testing.assert_allclose(y[0, :, 5, 5].numpy(), [1.0, 2.0, 3.5], rtol=1e-6)


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("transformer")
    assert set(ARCHITECTURES) == {"convlstm", "paper", "cnn", "tau", "ensemble"}


def test_prior_filter_is_symmetric_zero_sum_and_keeps_planes():
    """Whatever its weights, the filter is D4-symmetric, sums to 0, passes ramps unchanged."""
    from insar_raster.models.convlstm import SymmetricSpatialFilter

    torch.manual_seed(0)
    filt = SymmetricSpatialFilter(5)
    with torch.no_grad():
        filt.weight.copy_(torch.randn(5, 5))
        k = filt.kernel()
        assert abs(float(k.sum())) < 1e-6
        for same in (k.flip(0), k.flip(1), k.transpose(0, 1)):
            assert torch.allclose(k, same)
        rows, cols = torch.meshgrid(torch.arange(12.0), torch.arange(15.0), indexing="ij")
        plane = (3.0 - 0.7 * rows + 2.5 * cols)[None, None]
        valid = torch.ones(1, 1, 12, 15)
        out = filt(plane, valid)
        # Interior (full 5x5 support): a plane is untouched; the 2-cell border is left alone.
        assert torch.allclose(out, torch.zeros_like(out), atol=1e-4)
        bumpy = plane + torch.randn_like(plane)
        out = filt(bumpy, valid)
        assert torch.count_nonzero(out[..., 2:-2, 2:-2]) > 0
        assert torch.count_nonzero(out[..., :2, :]) == 0 and torch.count_nonzero(out[..., :, -2:]) == 0
        # Never across a mask edge: cells within 2 of a masked cell get no correction.
        valid[..., 6, 7] = 0
        out = filt(bumpy, valid)
        assert torch.count_nonzero(out[..., 4:9, 5:10]) == 0
        assert torch.count_nonzero(out[..., 2:4, 2:-2]) > 0


@pytest.mark.parametrize("arch", FULLY_CONVOLUTIONAL)
def test_untrained_model_ignores_level(arch):
    """Before training, the absolute level changes nothing: the forecast is the prior."""
    torch.manual_seed(0)
    model = _build(arch, in_channels=6, steps=2, window=4, hidden=8, features=8).eval()
    x, prior = torch.randn(1, 4, 6, 20, 24), torch.randn(1, 2, 20, 24)
    x[:, :, 1] = 1.0  # all valid
    with torch.no_grad():
        assert torch.equal(model(x, None, prior, 50 * torch.randn(1, 1, 20, 24)), prior)
