"""A 16-bit MLP whose sums pass float32's 2**24 (16-bit weights times 18-bit inputs): the integer
model, qonnx's exact reference and hls4ml's firmware agree on every output, because such a
layer is defined in real arithmetic (float64) rather than rounded to float32 first
(software.dense_output's `wide`). Before, every such model was refused as differing from qonnx."""

import numpy as np
import onnx
import pytest
from qonnx.core.modelwrapper import ModelWrapper

import qapflow
from qapflow.backends.frontend import prepare
from qapflow.intmodel import reference
from qapflow.intmodel.probe import probe_inputs
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case


def _wide_model(tmp_path, pot_scales=True):
    layers = [LayerCase(w, 16, 16, sparsity=0.4 if w != 5 else 0.0) for w in (32, 16, 5)]
    proto = build_case(MlpCase(n_in=16, input_bits=18, layers=layers, pot_scales=pot_scales, seed=16))
    path = tmp_path / "wide.onnx"
    onnx.save(proto, str(path))
    return path


def test_a_16_bit_mlp_whose_sums_pass_float32_compiles_and_simulates_exactly(tmp_path):
    path = _wide_model(tmp_path)
    front = prepare(path, None, None, 2000, "auto")
    assert front.check["quantizer_mismatches"] == front.check["output_mismatching_samples"] == 0
    assert front.im.software.output.wide  # the output layer's sums need float64
    prj = qapflow.convert(path, backend="hls4ml", output_dir=tmp_path / "prj")
    prj.compile()
    x = probe_inputs(prj.int_model, 2000, seed=3)
    report = prj.verify(x)
    assert report["passed"] and report["mismatches_vs_int_model"] == 0 and report["samples"] == 2000
    assert report["qonnx"]["quantizer_mismatches"] == report["qonnx"]["output_mismatching_samples"] == 0
    # the exact outputs are float64 where float32 would have rounded them
    want = qapflow.reference_predict(path, x)
    assert np.array_equal(prj.predict(x), want)


def test_the_float32_rounding_of_those_sums_would_differ(tmp_path, monkeypatch):
    """The negative: with the wide layers rounded to float32 as before, the reference and the
    integer model part on many samples (the check sees it), so the float64 path is what makes
    them agree, not a looser comparison."""
    path = _wide_model(tmp_path)
    im = prepare(path, None, None, 0, "auto").im
    x = probe_inputs(im, 2000, seed=3)
    model = ModelWrapper(str(path))
    assert reference.compare_with_qonnx(im, model, x)[0]["quantizer_mismatches"] == 0
    monkeypatch.setattr(reference, "wide_sums", lambda *a: False)
    report = reference.compare_with_qonnx(im, model, x)[0]
    assert report["quantizer_mismatches"] > 0 and report["output_mismatching_samples"] > 0


@pytest.mark.parametrize("bits", [6, 8])
def test_narrow_sums_stay_float32(bits, tmp_path):
    """Layers whose sums float32 holds keep the float32 definition (no model changes meaning)."""
    layers = [LayerCase(w, bits, bits) for w in (32, 5)]
    path = tmp_path / "narrow.onnx"
    onnx.save(build_case(MlpCase(n_in=16, input_bits=bits, layers=layers, seed=1)), str(path))
    front = prepare(path, None, None, 500, "auto")
    assert not front.im.software.output.wide and front.check["output_mismatching_samples"] == 0
    assert qapflow.reference_predict(path, probe_inputs(front.im, 10)).dtype == np.float32
