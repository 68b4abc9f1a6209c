"""Activation pruning: thresholds calibrated to a target fraction, exported as ThresholdedRelu,
exact in the integer model and both firmwares."""

import numpy as np
import onnx
import pytest
import torch

from qapflow.backends.hls4ml.backend import compile_hls4ml
from qapflow.data.sources import load_jets
from qapflow.export.qonnx_export import export_checkpoint
from qapflow.nn.model import build_model
from qapflow.nn.spec import ModelSpec
from qapflow.sim.csim import run_csim
from qapflow.train.checkpoint import load_checkpoint
from qapflow.train.config import RunConfig
from qapflow.train.run import run_qap
from qapflow.train.trainer import TrainConfig


def test_calibration_prunes_the_target_fraction_of_activations():
    torch.manual_seed(0)
    model = build_model(ModelSpec(bits=32, widths=[32, 16], batch_norm=False, activation_sparsity=0.7))
    x = torch.randn(4000, 16)
    model.calibrate_activation_pruning(x)
    for a in model.hidden_activations(x):
        assert abs(float((a == 0).float().mean()) - 0.7) < 0.01
    # without pruning, ReLU alone leaves about half of them
    plain = build_model(ModelSpec(bits=32, widths=[32, 16], batch_norm=False))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("act_prunes")})
    assert float((plain.hidden_activations(x)[0] == 0).float().mean()) < 0.6


@pytest.fixture(scope="module")
def pruned_run(generated_jets_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("actprune")
    cfg = RunConfig(data=str(generated_jets_file), model=ModelSpec(bits=6, activation_sparsity=0.6),
                    train=TrainConfig(max_epochs=3, patience=3, batch_size=256), prune="ft", iterations=1,
                    fold_epochs=2, max_jets=3000)
    run_qap(cfg, out / "run", progress=False)
    return out


def test_an_activation_pruned_model_is_exact_in_firmware(pruned_run, generated_jets_file, tmp_path):
    model, _, scaler, _ = load_checkpoint(pruned_run / "run" / "iter_001" / "folded.pt")
    # the jets the thresholds were calibrated on (random vectors in feature space would not say
    # how much of the real activations is pruned)
    jets = load_jets(generated_jets_file).features[:2000]
    x = torch.from_numpy(scaler.transform(np.asarray(jets, np.float32)))
    zeros = [float((a == 0).float().mean()) for a in model.hidden_activations(x)]
    assert all(z >= 0.5 for z in zeros), zeros
    export_checkpoint(pruned_run / "run" / "iter_001", tmp_path / "m.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert ops.count("ThresholdedRelu") == 3 and "Where" not in ops and "Greater" not in ops
    summary = compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj")
    assert summary["bit_exact"] and summary["activations"] == ["thresholds"] * 3 + ["none"]
    report = run_csim(tmp_path / "prj", generated_jets_file, 2000, split="all")
    assert report["mismatches_vs_int_model"] == 0 and report["mismatches_vs_pytorch"] == 0
    assert report["qonnx"]["output_mismatching_samples"] == 0 and report["passed"]


def test_a_shifted_activation_threshold_is_caught(pruned_run, tmp_path):
    """Negative test: a model whose firmware thresholds would ignore the pruning must not match."""
    import onnx.helper

    export_checkpoint(pruned_run / "run" / "iter_001", tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx"))
    node = next(n for n in graph.graph.node if n.op_type == "ThresholdedRelu")
    for a in node.attribute:
        if a.name == "alpha":
            assert a.f > 0
            a.f = 0.0  # plain ReLU: the pruned activations come back
    onnx.save(graph, str(tmp_path / "shifted.onnx"))
    from qapflow.intmodel.build import build_int_model
    from qapflow.export.ingest import ingest

    original, shifted = build_int_model(ingest(tmp_path / "m.onnx")), build_int_model(ingest(tmp_path / "shifted.onnx"))
    probe = np.random.default_rng(1).integers(-2000, 2000, size=(500, 16))
    assert not np.array_equal(original.forward_int(probe), shifted.forward_int(probe))
