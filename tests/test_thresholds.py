"""Threshold derivation: exact against brute force, checked at its boundaries, and the
compile-time comparison with qonnx catches an integer model that is off by one threshold."""

import numpy as np
import onnx
import pytest

from qapflow.common.errors import QapflowError
from qapflow.intmodel import build as build_module
from qapflow.intmodel.thresholds import ThresholdError, channel_directions, derive_thresholds
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case


def staircase(acc: np.ndarray) -> np.ndarray:
    """A float32 affine map per channel, then round half to even and clip to [-3, 4]."""
    scale = np.array([0.37, 0.05, 1.9], np.float32)
    shift = np.array([1.25, -0.4, 0.0], np.float32)
    y = acc.astype(np.float32) * scale + shift
    return np.clip(np.round(y), -3, 4).astype(np.int64)


def test_thresholds_equal_brute_force_on_every_accumulator():
    lo, hi = np.array([-40, -100, -6]), np.array([40, 100, 9])
    t = derive_thresholds(staircase, lo, hi, -3, 4, "test layer")
    for j in range(3):
        acc = np.arange(lo[j], hi[j] + 1)
        grid = np.zeros((len(acc), 3), np.int64)
        grid[:, j] = acc
        assert np.array_equal(t.apply(grid)[:, j], staircase(grid)[:, j])
    assert t.comparators == int(t.count.sum()) and t.comparators <= 3 * 7


def test_a_falling_channel_is_found_for_flipping():
    def falling(acc):
        return np.clip(np.round(-acc.astype(np.float32) * 0.5), 0, 7).astype(np.int64)

    assert channel_directions(falling, np.array([-10]), np.array([10])).tolist() == [-1]
    assert channel_directions(staircase, np.array([-5] * 3), np.array([5] * 3)).tolist() == [1, 1, 1]


def test_a_map_that_is_not_monotone_is_refused():
    def bump(acc):  # rises to 3 at 0, then falls back
        return np.clip(3 - np.abs(acc), 0, 3).astype(np.int64)

    with pytest.raises(ThresholdError, match="not monotone"):
        derive_thresholds(bump, np.array([-10]), np.array([10]), 0, 3, "layer 7")


def test_an_integer_model_one_threshold_off_stops_the_compile(tmp_path, monkeypatch):
    from qapflow.backends.frontend import prepare

    case = MlpCase(n_in=8, input_bits=6, layers=[LayerCase(6, 5, 4, batch_norm=True), LayerCase(3, 5, 4)],
                   pot_scales=False, seed=2)
    onnx.save(build_case(case), str(tmp_path / "m.onnx"))
    assert prepare(tmp_path / "m.onnx").check["quantizer_mismatches"] == 0
    real = build_module.derive_thresholds

    def off_by_one(*args, **kwargs):
        t = real(*args, **kwargs)
        t.values[0, 0] += 1  # one threshold one accumulator step too high
        return t

    monkeypatch.setattr(build_module, "derive_thresholds", off_by_one)
    with pytest.raises(QapflowError, match="differs from qonnx's execution"):
        prepare(tmp_path / "m.onnx", probe=20000)
