"""Training of convolutional networks (issue 20, item 4): Deep Sets on constituents and a small
2D CNN on jet images are built from a ModelSpec, trained and pruned weight by weight on their
conv kernels (every schedule, activation pruning), costed in BOPs per output position, and a
residual CNN exported to QONNX compiles on the rtl backend with its integer graph equal to
qonnx's execution (and once in Verilator). Old MLP specs read as before."""

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from qapflow.cli import main
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.data.h5file import write_jets
from qapflow.data.schema import JetArrays
from qapflow.export.qonnx_export import export_checkpoint
from qapflow.metrics.bops import layer_bops, network_bops
from qapflow.metrics.evaluate import model_cost
from qapflow.nn.model import JetTagger, build_model
from qapflow.nn.spec import ModelSpec
from qapflow.train.checkpoint import load_checkpoint
from qapflow.train.config import RunConfig
from qapflow.train.inputs import ConstituentScaler, ImageScaler, scaler_from_dict
from qapflow.train.masks import PruneMasks
from qapflow.train.run import run_chain, run_qap
from qapflow.train.trainer import TrainConfig
from tests import exactness

N = 320
FAST = TrainConfig(max_epochs=2, patience=2, batch_size=64)


@dataclass
class Arrays:
    """JetArrays' fields (data.schema gains constituents and images in another change)."""
    features: np.ndarray
    labels: np.ndarray
    attrs: dict = field(default_factory=dict)
    constituents: np.ndarray | None = None
    images: np.ndarray | None = None

    def __len__(self):
        return len(self.features)


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    cls = rng.integers(0, 5, N)
    constituents = rng.normal(size=(N, 12, 11)).astype(np.float32) + cls[:, None, None]
    multiplicity = rng.integers(3, 12, N)
    constituents[np.arange(12)[None, :] >= multiplicity[:, None]] = 0.0  # zero padding
    images = np.abs(rng.normal(size=(N, 16, 16))).astype(np.float32) * (1 + cls[:, None, None])
    return Arrays(rng.normal(size=(N, 16)).astype(np.float32), np.eye(5, dtype=np.uint8)[cls], {},
                  constituents, images)


SPECS = {
    "deepsets-avg": dict(arch="deepsets", particles=10, channels=[8, 8], widths=[8], pool="avg"),
    "deepsets-max": dict(arch="deepsets", particles=10, channels=[8], widths=[], pool="max"),
    "cnn2d-max-residual": dict(arch="cnn2d", channels=[4, 4], strides=[2, 1], widths=[8], residual=True),
    "cnn2d-avg": dict(arch="cnn2d", channels=[4, 8], strides=[2, 1], widths=[], pool="avg"),
}


def spec(name, **kw):
    return ModelSpec(**{"bits": 4, "input_bits": 8, **SPECS[name], **kw})


def chain(out, arrays, model, **kw):
    kw = {"train": FAST, "prune": "ft", "iterations": 2, "fold_epochs": 1, **kw}
    cfg = RunConfig(data="unused", model=model, **kw)
    idx = np.arange(N)
    run_chain(out, cfg, arrays, idx[:220], idx[220:270], idx[270:], seed=0, progress=False)
    return out


def metrics(run, it):
    return json.loads((run / f"iter_{it:03d}" / "metrics.json").read_text())


# ---- the spec -----------------------------------------------------------------------------

OLD_MLP_SPEC = {"inputs": 16, "widths": [64, 32, 32], "outputs": 5, "bits": 6, "input_bits": 16,
                "input_int": None, "act_bits": None, "bias_bits": 24, "scheme": "fixed-point",
                "batch_norm": True, "act_max": 6.0, "activation_sparsity": 0.0}


def test_an_old_mlp_spec_loads_as_the_mlp_and_writes_back_unchanged():
    spec_ = ModelSpec.from_dict(dict(OLD_MLP_SPEC))
    assert spec_.arch == "mlp"
    assert spec_.to_dict() == OLD_MLP_SPEC  # config.json of old runs still equals the config
    model = build_model(spec_)
    assert isinstance(model, JetTagger) and model.prunable == list(model.linears)
    keys = model.state_dict().keys()
    assert {"linears.0.weight", "linears.3.bias", "norms.0.running_mean"} <= keys  # the names checkpoints hold
    assert not any(k.startswith("layers.") for k in keys)
    assert spec_.layer_positions == [1, 1, 1, 1] and spec_.input_shape == (16,)
    assert model(torch.zeros(3, 16)).shape == (3, 5)


@pytest.mark.parametrize("kw, name", [
    (dict(arch="transformer"), "arch"),
    (dict(arch="cnn2d", channels=[]), "channels"),
    (dict(arch="deepsets", channels=[8, 0]), "channels"),
    (dict(arch="cnn2d", channels=[4], pool="median"), "pool"),
    (dict(arch="cnn2d", channels=[4], kernels=4), "kernels"),
    (dict(arch="cnn2d", channels=[4, 4], strides=[1]), "strides"),
    (dict(arch="cnn2d", channels=[4, 4, 4], image=[4, 4]), "image"),
    (dict(arch="deepsets", channels=[4], particles=0), "particles"),
    (dict(arch="deepsets", channels=[4], residual=True), "residual"),
    (dict(arch="deepsets", channels=[4], widths=[], bits=[32, 6]), "bits"),
])
def test_a_bad_conv_field_is_named(kw, name):
    with pytest.raises(QapflowError, match=rf"^model\.{name}: "):
        ModelSpec(**kw)


def test_bits_list_one_width_per_conv_and_linear_layer():
    s = ModelSpec(arch="cnn2d", channels=[4], widths=[8], residual=True, bits=[8, 6, 6, 4, 3])
    assert s.layer_count == 5 and s.layer_bits == [8, 6, 6, 4, 3]
    with pytest.raises(QapflowError, match="bits lists 4 widths but the network has 5 layers"):
        ModelSpec(arch="cnn2d", channels=[4], widths=[8], residual=True, bits=[8, 6, 6, 4])


# ---- inputs, BOPs -------------------------------------------------------------------------

def test_constituents_standardised_over_real_particles_padding_stays_zero(arrays):
    scaler = ConstituentScaler.fit(arrays.constituents, particles=10)
    x = scaler.transform(arrays.constituents)
    assert x.shape == (N, 11, 10)
    padded = ~(arrays.constituents[:, :10] != 0).any(axis=-1)  # [N, P]
    assert padded.any() and np.all(x.transpose(0, 2, 1)[padded] == 0)
    real = x.transpose(0, 2, 1)[~padded]
    assert np.allclose(real.mean(axis=0), 0, atol=1e-4) and np.allclose(real.std(axis=0), 1, atol=1e-3)
    back = scaler_from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert np.array_equal(back.transform(arrays.constituents), x)
    img = ImageScaler.fit(arrays.images)
    assert img.transform(arrays.images).shape == (N, 1, 16, 16)
    assert scaler_from_dict(img.to_dict()).scale == img.scale == pytest.approx(arrays.images.std())


def test_conv_bops_count_every_output_position():
    w = np.ones((4, 2, 3, 3))
    w[0] = 0  # a quarter of the weights pruned
    got = network_bops([w], [4], [8], [36])
    assert got == pytest.approx(36 * layer_bops(18, 4, 8, 4, 0.25))
    assert got == pytest.approx(36 * 4 * 18 * (0.75 * 32 + 12 + np.log2(18)))
    model = build_model(spec("cnn2d-max-residual", widths=[]))
    s = model.spec  # 16x16 -> stride 2: 8x8 -> pool 4x4 -> conv 4x4 -> pool 2x2 -> residual at 2x2
    assert s.layer_positions == [64, 16, 4, 4, 1]
    weights = [q.numpy() for q in model.quant_weights()]
    want = sum(p * layer_bops(int(np.prod(q.shape[1:])), q.shape[0], a, b, float((q == 0).mean()))
               for q, p, a, b in zip(weights, [64, 16, 4, 4, 1], s.activation_bits_in(), s.layer_bits))
    assert model_cost(model)["bops"] == pytest.approx(want)
    assert model_cost(model)["bops"] > network_bops(weights, s.layer_bits, s.activation_bits_in())


# ---- training and pruning -----------------------------------------------------------------

@pytest.mark.parametrize("name", list(SPECS))
def test_each_arch_trains_and_prunes_its_conv_kernels(name, arrays, tmp_path):
    run = chain(tmp_path / name, arrays, spec(name))
    init = torch.load(run / "init.pt", weights_only=True)
    for it, target in ((1, 0.1), (2, 0.2)):
        assert metrics(run, it)["pruned_fraction"] == pytest.approx(target, abs=1e-2)
        for ckpt in ("checkpoint.pt", "folded.pt"):
            model, masks, _, _ = load_checkpoint(run / f"iter_{it:03d}" / ckpt)
            convs = [(layer, m) for layer, m in zip(model.prunable, masks.masks) if layer.weight.dim() > 2]
            assert len(convs) == model.spec.conv_count > 0
            for (layer, mask), q in zip(convs, model.quant_weights()):
                assert mask.shape == layer.weight.shape
                assert torch.all(layer.weight[~mask] == 0) and torch.all(q[~mask] == 0)
            assert any(not mask.all() for _, mask in convs)  # the global ranking reaches the kernels
            assert abs(masks.pruned - target * masks.total) <= 1
    assert metrics(run, 2)["sparsity"]["overall"] >= metrics(run, 2)["pruned_fraction"]  # measured, >= mask
    assert metrics(run, 2)["bops"] < metrics(run, 0)["bops"]
    trained, _, _, _ = load_checkpoint(run / "iter_000" / "checkpoint.pt")
    assert not torch.equal(trained.prunable[0].weight, init["layers.0.weight"])


@pytest.fixture(scope="module")
def jets_file(arrays, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "jets.h5"
    write_jets(path, JetArrays(arrays.features, arrays.labels, {"source": "generated"},
                               arrays.constituents, arrays.images))
    return path


@pytest.mark.parametrize("name", ["deepsets-max", "cnn2d-avg"])
def test_run_qap_reads_the_arch_input_from_a_data_file(name, jets_file, tmp_path):
    cfg = RunConfig(data=str(jets_file), model=spec(name), train=FAST, prune="ft", iterations=1, fold_epochs=1)
    summary = run_qap(cfg, tmp_path / "run", progress=False)
    assert [r["iteration"] for r in summary["iterations"]] == [0, 1]
    scaler = json.loads((tmp_path / "run" / "scaler.json").read_text())
    assert scaler["kind"] == ("constituents" if name.startswith("deepsets") else "images")
    _, _, loaded, _ = load_checkpoint(tmp_path / "run" / "iter_001" / "folded.pt")
    assert loaded.to_dict() == scaler


def test_a_data_file_without_constituents_is_refused_by_name(arrays, tmp_path):
    path = tmp_path / "features_only.h5"
    write_jets(path, JetArrays(arrays.features, arrays.labels, {"source": "generated"}))
    cfg = RunConfig(data=str(path), model=spec("deepsets-max"), train=FAST)
    with pytest.raises(DataFormatError, match=r"features_only\.h5.*constituents requested"):
        run_qap(cfg, tmp_path / "run", progress=False)


@pytest.mark.parametrize("schedule, kw", [
    ("prune-then-quantize", dict(iterations=1, quantize_epochs=1)),
    ("joint", dict(target_sparsity=0.3, joint_ramp_epochs=2)),
    ("quantize-then-prune", dict(iterations=1, prune_criterion="hardware")),
])
def test_schedules_and_activation_pruning_run_on_conv_nets(schedule, kw, arrays, tmp_path):
    name = "cnn2d-max-residual" if schedule == "joint" else "deepsets-avg"
    model = spec(name, activation_sparsity=0.75)  # above ReLU's own zeros (about half): thresholds > 0
    run = chain(tmp_path / "run", arrays, model, schedule=schedule, **kw)
    last = max(int(p.parent.name[5:]) for p in run.glob("iter_*/metrics.json"))
    net, masks, _, _ = load_checkpoint(run / f"iter_{last:03d}" / "checkpoint.pt")
    assert not net.spec.is_float and masks.pruned / masks.total == pytest.approx(kw.get("target_sparsity", 0.1),
                                                                                 abs=1e-2)
    assert len(net.act_prunes) == net.spec.layer_count - 1
    assert all(float(p.threshold) >= 0 for p in net.act_prunes) and any(float(p.threshold) > 0 for p in net.act_prunes)
    hidden = net.hidden_activations(torch.randn(50, *net.spec.input_shape))
    assert len(hidden) == net.spec.layer_count - 1
    assert metrics(run, last)["neural_efficiency"]["network"] > 0


def test_a_float_conv_spec_builds_plain_torch_layers():
    model = build_model(spec("cnn2d-avg", bits=32, channels=[4], strides=1))
    assert all(type(m) in (torch.nn.Conv2d, torch.nn.Linear) for m in model.prunable)
    masks = PruneMasks.ones_like(model).prune_smallest(model, 10)
    masks.apply(model)
    assert int((model.prunable[0].weight == 0).sum()) + int((model.prunable[1].weight == 0).sum()) >= 10


# ---- export and compile -------------------------------------------------------------------

def test_a_trained_residual_cnn_exports_and_compiles_exactly_on_rtl(arrays, tmp_path):
    small = ModelSpec(arch="cnn2d", channels=[2], strides=2, widths=[], residual=True, bits=4, act_bits=3,
                      input_bits=6)
    run = chain(tmp_path / "run", arrays, small, iterations=1)
    manifest = json.loads(export_checkpoint(run / "iter_001", tmp_path / "model.onnx").read_text())
    assert manifest["input_shape"] == [1, 16, 16] and manifest["zeros_folded"] is False
    assert manifest["spec"]["arch"] == "cnn2d" and manifest["qonnx_inference_cost"]["macs"] > 0
    prj = tmp_path / "rtl"
    assert main(["compile", str(tmp_path / "model.onnx"), "--backend", "rtl", "--out", str(prj)]) == 0
    summary = json.loads((prj / "qapflow_project.json").read_text())
    assert summary["integer_graph"] and summary["input_shape"][-3:] == [1, 16, 16]
    check = summary["int_model_vs_qonnx"]
    assert check["quantizer_mismatches"] == 0 and check["output_mismatching_samples"] == 0
    kinds = [op.split("(")[-1].rstrip(")") for op in summary["ops"]]
    assert kinds.count("conv") == 3 and "add" in kinds and "maxpool" in kinds
    # the one Verilator run of this file: the firmware equals the integer graph and qonnx on the
    # test jets' images. On a copy without the manifest: with it, csim's PyTorch comparison takes
    # the graph project's float outputs for integers at exponent 0 and stops (sim/pytorch_ref.py)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.onnx").write_bytes((tmp_path / "model.onnx").read_bytes())
    assert main(["compile", str(bare / "model.onnx"), "--backend", "rtl", "--out", str(bare / "rtl")]) == 0
    x = ImageScaler.fit(arrays.images[:220]).transform(arrays.images[270:])
    np.save(tmp_path / "x.npy", x)
    assert main(["csim", str(bare / "rtl"), "--inputs", str(tmp_path / "x.npy"), "--n", str(len(x))]) == 0
    exactness.assert_exact(json.loads((bare / "rtl" / "csim_report.json").read_text()), len(x),
                           float32_graph_agrees=False)
