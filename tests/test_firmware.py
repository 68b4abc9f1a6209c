"""Export, zero folding, integer model, hls4ml compile and g++ csim, end to end and exact."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from qapflow.backends.hls4ml.backend import compile_hls4ml
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.export.fold import fold_zeros
from qapflow.export.graph import dense_chain
from qapflow.intmodel.build import build_int_model
from qapflow.export.qonnx_export import export_checkpoint, read_manifest
from qapflow.nn.spec import ModelSpec
from qapflow.sim.csim import run_csim
from qapflow.train.checkpoint import load_checkpoint
from qapflow.train.config import RunConfig
from qapflow.train.run import run_qap
from qapflow.train.trainer import TrainConfig

FAST = TrainConfig(max_epochs=3, patience=2, batch_size=256)
CSIM_SAMPLES = 10_000


def train_run(data, out, bits, **kw):
    kw.setdefault("prune", "ft")
    kw.setdefault("target_sparsity", 0.8)
    cfg = RunConfig(data=str(data), model=ModelSpec(bits=bits), train=FAST, fold_epochs=2, max_jets=3000, **kw)
    run_qap(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def runs(generated_jets_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {bits: train_run(generated_jets_file, root / f"b{bits}", bits) for bits in (4, 6, 8)}


def compile_iteration(run, it, tmp, name):
    onnx_path = tmp / f"{name}.onnx"
    export_checkpoint(run / f"iter_{it:03d}", onnx_path)
    return compile_hls4ml(onnx_path, tmp / name)


@pytest.mark.parametrize("bits, iteration, label", [(6, 8, "6bit-80pct"), (4, 8, "4bit-80pct"),
                                                    (8, 8, "8bit-80pct"), (6, 0, "6bit-unpruned")])
def test_end_to_end_csim_is_bit_exact(runs, generated_jets_file, tmp_path, bits, iteration, label):
    metrics = json.loads((runs[bits] / f"iter_{iteration:03d}" / "metrics.json").read_text())
    if iteration == 8:
        assert metrics["pruned_fraction"] == pytest.approx(0.8, abs=1e-3)
    summary = compile_iteration(runs[bits], iteration, tmp_path, label)
    assert summary["bit_exact"]
    assert summary["multiplications_in_code"] == summary["nonzero_weights"]
    report = run_csim(tmp_path / label, generated_jets_file, CSIM_SAMPLES, split="all")
    assert report["samples"] == CSIM_SAMPLES
    assert report["mismatches_vs_int_model"] == 0
    assert report["mismatches_vs_pytorch"] == 0
    assert report["passed"]
    assert report["accuracy"]["firmware"] == report["accuracy"]["pytorch"] > 0.3
    assert report["qonnx"]["quantizer_mismatches"] == 0 and report["qonnx"]["output_mismatching_samples"] == 0
    # power-of-two scales: onnxruntime's own float32 execution of the graph is exact too
    assert report["qonnx"]["float32_graph"]["output_mismatching_samples"] == 0


def test_multiplications_in_sources_equal_nonzero_weights_after_folding(runs, tmp_path):
    summary = compile_iteration(runs[6], 8, tmp_path, "p")
    code = (tmp_path / "p" / "firmware" / "nnet_utils" / "nnet_code_gen.h").read_text()
    im = build_int_model(ModelWrapper(str(tmp_path / "p.onnx")))
    assert code.count("* weights[") == im.nonzero_weights == summary["nonzero_weights"]
    parameters = (tmp_path / "p" / "firmware" / "parameters.h").read_text()
    assert "DenseLatency" not in parameters and parameters.count("dense_sparse_") == 4


def _flip_first_nonzero(values: list[float]) -> list[float]:
    k = next(i for i, v in enumerate(values) if v != 0)
    values[k] = -values[k]  # flip the sign of one non-zero weight
    return values


def test_corrupted_weights_make_csim_fail(runs, generated_jets_file, tmp_path):
    """A wrong weight in the firmware (the synthesized array and the csim's copy alike)."""
    compile_iteration(runs[6], 8, tmp_path, "bad")
    weights = sorted((tmp_path / "bad" / "firmware" / "weights").glob("w*.txt"))[0]
    values = _flip_first_nonzero([float(v) for v in weights.read_text().replace(",", " ").split()])
    weights.write_text(", ".join(repr(v) for v in values))
    header = weights.with_suffix(".h")
    text = header.read_text()
    body_at = text.index("{", text.index("#else"))
    header.write_text(text[: body_at + 1] + ", ".join(repr(v) for v in values) + text[text.index("}", body_at):])
    result = subprocess.run([sys.executable, "-m", "qapflow.cli", "csim", str(tmp_path / "bad"),
                             "--data", str(generated_jets_file), "--n", "2000", "--split", "all"],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "bad" / "csim_report.json").read_text())
    assert report["mismatches_vs_int_model"] > 0 and report["mismatches_vs_pytorch"] > 0
    first = report["first_mismatches_vs_int_model"][0]
    assert first["simulated"] != first["int_model"]
    assert not report["passed"]


def test_csim_refuses_weight_files_that_differ_from_the_synthesized_arrays(runs, generated_jets_file, tmp_path):
    compile_iteration(runs[6], 8, tmp_path, "txt")
    weights = sorted((tmp_path / "txt" / "firmware" / "weights").glob("w*.txt"))[0]
    values = _flip_first_nonzero([float(v) for v in weights.read_text().replace(",", " ").split()])
    weights.write_text(", ".join(repr(v) for v in values))
    with pytest.raises(QapflowError, match=rf"{weights.name}: differs from the synthesized array"):
        run_csim(tmp_path / "txt", generated_jets_file, 100, split="all")


def test_a_relative_path_to_the_training_file_simulates_its_test_split(runs, generated_jets_file, tmp_path,
                                                                       monkeypatch):
    summary = compile_iteration(runs[6], 8, tmp_path, "rel")
    monkeypatch.chdir(generated_jets_file.parent)
    report = run_csim(tmp_path / "rel", generated_jets_file.name, 100)
    assert report["inputs"]["split"] == "test split of the model's training file"
    assert summary["data"]["file"] != generated_jets_file.name


def test_a_scaler_of_another_width_is_refused_at_compile(runs, tmp_path):
    manifest_file = export_checkpoint(runs[6] / "iter_008", tmp_path / "m.onnx")
    (tmp_path / "scaler.json").write_text(json.dumps({"mean": [0.0] * 15, "std": [1.0] * 15}))
    with pytest.raises(DataFormatError, match="takes 16 inputs but the scaler"):
        compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj", scaler_file=tmp_path / "scaler.json")
    manifest = json.loads(manifest_file.read_text())
    manifest["scaler"]["mean"] = manifest["scaler"]["mean"][:15]
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(DataFormatError, match=r"takes 16 inputs but the scaler \(m.manifest.json\)"):
        compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj")


def test_int_model_equals_brevitas_exactly(runs, generated_jets_file, tmp_path):
    from qapflow.data.sources import load_jets

    export_checkpoint(runs[6] / "iter_008", tmp_path / "m.onnx")
    im = build_int_model(ModelWrapper(str(tmp_path / "m.onnx")))
    model, _, scaler, _ = load_checkpoint(runs[6] / "iter_008" / "folded.pt")
    x = scaler.transform(load_jets(generated_jets_file).features)
    with torch.no_grad():
        exact = model.double()(torch.from_numpy(x).double()).numpy()
    assert np.array_equal(im.logits(x), exact)


def kill_neurons(model: ModelWrapper) -> ModelWrapper:
    """Zero all incoming weights of neuron 3 and all outgoing weights of neuron 5 (layer 0)."""
    chain = dense_chain(model)
    w0_name = chain.layers[0].weight_quant.input[0]
    w0 = model.get_initializer(w0_name).copy()
    w0[3, :] = 0
    model.set_initializer(w0_name, w0)
    b0_name = chain.layers[0].bias_quant.input[0]
    b0 = model.get_initializer(b0_name).copy()
    b0[3] = 1.3  # a dead neuron with a non-zero constant output
    model.set_initializer(b0_name, b0)
    w1_name = chain.layers[1].weight_quant.input[0]
    w1 = model.get_initializer(w1_name).copy()
    w1[:, 5] = 0
    model.set_initializer(w1_name, w1)
    return model


def test_zero_folding_keeps_the_function_exactly(runs, tmp_path):
    export_checkpoint(runs[6] / "iter_004", tmp_path / "m.onnx", fold=False)
    before = kill_neurons(ModelWrapper(str(tmp_path / "m.onnx")))
    after = fold_zeros(ModelWrapper(before.model))
    widths_before = [l.weight.shape for l in build_int_model(before).layers]
    widths_after = [l.weight.shape for l in build_int_model(after).layers]
    assert widths_after[0][0] <= widths_before[0][0] - 2  # neurons 3 and 5 are gone
    x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32) * 2
    name_in, name_out = before.graph.input[0].name, before.graph.output[0].name
    for row in x:
        a = execute_onnx(before, {name_in: row[None]})[name_out]
        b = execute_onnx(after, {after.graph.input[0].name: row[None]})[after.graph.output[0].name]
        assert np.array_equal(a, b)


def test_scaled_int_model_with_unfolded_bn_is_exact_through_thresholds(generated_jets_file, tmp_path):
    cfg = RunConfig(data=str(generated_jets_file), model=ModelSpec(bits=6, scheme="scaled-int"), train=FAST,
                    max_jets=3000)
    run_qap(cfg, tmp_path / "run", progress=False)
    export_checkpoint(tmp_path / "run" / "iter_000", tmp_path / "s.onnx")
    summary = compile_hls4ml(tmp_path / "s.onnx", tmp_path / "prj")
    assert summary["bit_exact"] and summary["activations"] == ["thresholds"] * 3 + ["none"]
    assert summary["threshold_comparators"] > 0
    report = run_csim(tmp_path / "prj", generated_jets_file, 3000, split="all")
    assert report["mismatches_vs_int_model"] == 0 and report["qonnx"]["quantizer_mismatches"] == 0
    assert report["qonnx"]["output_mismatching_samples"] == 0
    assert report["mismatches_vs_pytorch"] is None and "float scales" in report["pytorch"]
    assert report["passed"]


# -- bad input -----------------------------------------------------------------------------

def test_corrupt_onnx_file_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\x08\x07garbage")
    (tmp_path / "m.manifest.json").write_text("{}")
    with pytest.raises(DataFormatError, match="not an ONNX file"):
        compile_hls4ml(path, tmp_path / "prj")


def test_float_model_without_quantizers_is_refused(generated_jets_file, tmp_path):
    cfg = RunConfig(data=str(generated_jets_file), model=ModelSpec(bits=32), train=FAST, max_jets=3000)
    run_qap(cfg, tmp_path / "run", progress=False)
    with pytest.raises(QapflowError, match="float model without quantizers"):
        export_checkpoint(tmp_path / "run" / "iter_000", tmp_path / "f.onnx")
    # a plain ONNX MLP with no Quant nodes handed to compile
    torch.onnx.export(torch.nn.Sequential(torch.nn.Linear(16, 5)), torch.zeros(1, 16),
                      str(tmp_path / "plain.onnx"), dynamo=False)
    (tmp_path / "plain.manifest.json").write_text("{}")
    with pytest.raises(DataFormatError, match="no quantizer nodes"):
        compile_hls4ml(tmp_path / "plain.onnx", tmp_path / "prj")


def test_unsupported_layer_is_named(runs, tmp_path):
    export_checkpoint(runs[6] / "iter_000", tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.op_type = "Sigmoid"
    onnx.save(model, str(tmp_path / "m.onnx"))
    (tmp_path / "m.manifest.json").unlink()  # an edited model is no longer the export
    with pytest.raises(DataFormatError, match=r"unsupported node \S+ \(Sigmoid\).*between dense layers"):
        compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj")


def test_hostile_layer_names_never_reach_the_generated_code(runs, tmp_path):
    export_checkpoint(runs[6] / "iter_008", tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    for k, node in enumerate(model.graph.node):
        node.name = f'evil"; system("rm -rf /"); //{k}'
    onnx.save(model, str(tmp_path / "m.onnx"))
    (tmp_path / "m.manifest.json").unlink()
    summary = compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj")
    sources = "".join(p.read_text() for p in (tmp_path / "prj" / "firmware").rglob("*")
                      if p.is_file() and p.suffix in (".h", ".cpp") and "ap_types" not in p.parts)
    assert "system(" not in sources and "evil" not in sources
    assert summary["bit_exact"]


def test_folder_that_is_not_a_project_is_refused(tmp_path, generated_jets_file):
    (tmp_path / "x").mkdir()
    with pytest.raises(QapflowError, match="not a qapflow project"):
        run_csim(tmp_path / "x", generated_jets_file, 10)


def test_a_model_changed_after_export_is_refused(runs, tmp_path):
    export_checkpoint(runs[6] / "iter_008", tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    model.graph.node[0].name = "renamed"
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(DataFormatError, match="SHA-256 differs from its manifest"):
        compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj")


def test_export_manifest_records_the_source(runs, tmp_path):
    export_checkpoint(runs[6] / "iter_008", tmp_path / "m.onnx")
    manifest = read_manifest(tmp_path / "m.onnx")
    assert manifest["source_checkpoint"].endswith("iter_008/folded.pt")
    assert manifest["zeros_folded"] and manifest["bits"] == [6, 6, 6, 6]
    assert manifest["data"]["split_seed"] == 0 and manifest["scaler"]["mean"]
