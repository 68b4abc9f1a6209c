"""Checkpoint -> QONNX model with a manifest beside it.

Brevitas `export_qonnx` (needs onnxoptimizer) writes Quant nodes for the input, weights,
biases and activations; qonnx's cleanup then infers shapes and folds constants.
"""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import version
from pathlib import Path

import torch
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from qapflow.common.atomic import atomic_path, write_json
from qapflow.common.errors import QapflowError
from qapflow.common.hashing import file_digest
from qapflow.export.fold import fold_zeros
from qapflow.export.transforms.thresholded_relu import WhereGreaterToThresholdedRelu
from qapflow.metrics.evaluate import model_cost
from qapflow.train.checkpoint import load_checkpoint

MANIFEST_SUFFIX = ".manifest.json"


def manifest_path(onnx_path) -> Path:
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.stem + MANIFEST_SUFFIX)


def resolve_checkpoint(source) -> Path:
    """An iteration folder (its deploy checkpoint) or a checkpoint file."""
    source = Path(source)
    if source.is_dir():
        metrics = source / "metrics.json"
        if not metrics.exists():
            raise QapflowError(f"{source}: not a finished iteration folder (no metrics.json)")
        return source / json.loads(metrics.read_text()).get("deploy_checkpoint", "checkpoint.pt")
    return source


def run_config_of(checkpoint: Path) -> dict:
    """The run's config.json (data file, split), found above the checkpoint."""
    for folder in checkpoint.parents:
        if (folder / "config.json").exists():
            return json.loads((folder / "config.json").read_text())
    return {}


def export_checkpoint(source, out, fold: bool = True) -> Path:
    """Export `source` (iteration folder or checkpoint) to QONNX at `out`; return the manifest path.

    With `fold`, pruned zeros are folded (dead neurons removed, see export.fold): a dense chain
    only, so a convolutional model (spec.arch deepsets or cnn2d) is written with its zeros kept.
    """
    checkpoint = resolve_checkpoint(source)
    model, masks, scaler, meta = load_checkpoint(checkpoint)
    if model.spec.is_float:
        raise QapflowError(f"{checkpoint}: a float model without quantizers cannot be exported to "
                           "QONNX for firmware; train with --bits below 32")
    from brevitas.export import export_qonnx

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        export_qonnx(model, torch.zeros(1, *model.spec.input_shape), export_path=str(raw))
        cleaned = cleanup_model(ModelWrapper(str(raw)).transform(WhereGreaterToThresholdedRelu()))
        dense = model.spec.arch == "mlp"
        fold = fold and dense
        if fold:
            cleaned = fold_zeros(cleaned)
        with atomic_path(out) as tmp_out:
            cleaned.save(str(tmp_out))
    run_config = run_config_of(checkpoint)
    cost = model_cost(model)
    manifest = {
        "stage": "export",
        "model": out.name,
        "model_sha256": file_digest(out),
        "source_checkpoint": str(checkpoint.resolve()),
        "source_sha256": file_digest(checkpoint),
        "spec": model.spec.to_dict(),
        "bits": model.spec.layer_bits,
        "zeros_folded": fold,
        "layer_widths": [[int(d) for d in model_widths] for model_widths in _widths(out)] if dense else None,
        "input_shape": list(model.spec.input_shape),
        "input_bits": model.spec.input_bits,
        "input_int": model.spec.input_int,
        "act_bits": model.spec.hidden_act_bits,
        "bias_bits": model.spec.layer_bias_bits,
        "sparsity": cost["sparsity"],
        "bops": cost["bops"],
        "bops_float_input": cost["bops_float_input"],
        "qonnx_inference_cost": qonnx_cost(out),
        "scaler": scaler.to_dict(),
        "data": {"file": run_config.get("data"), "split_seed": run_config.get("split_seed"),
                 "max_jets": run_config.get("max_jets"), "split": "paper (472500:157500:240000)"},
        "iteration": meta.get("iteration"),
        "versions": {p: version(p) for p in ("torch", "brevitas", "qonnx", "onnx")},
    }
    path = manifest_path(out)
    write_json(path, manifest)
    return path


def qonnx_cost(onnx_path) -> dict:
    """qonnx's inference_cost, sparse (zero weights discounted) and dense.

    qonnx counts b_a * b_w per multiply-accumulate only; the paper's formula adds
    b_a + b_w + log2(n) per weight position for the accumulation, pruned or not, so the
    paper's BOPs are always the larger of the two.
    """
    import contextlib
    import io

    from qonnx.util.inference_cost import inference_cost

    with contextlib.redirect_stdout(io.StringIO()):
        sparse = inference_cost(str(onnx_path), discount_sparsity=True)["total_cost"]
        dense = inference_cost(str(onnx_path), discount_sparsity=False)["total_cost"]
    return {"bops": sparse["total_bops"], "macs": sparse["total_macs"],
            "bops_dense": dense["total_bops"], "macs_dense": dense["total_macs"]}


def _widths(onnx_path) -> list[tuple[int, int]]:
    from qapflow.export.graph import dense_chain, weight_matrix

    model = ModelWrapper(str(onnx_path))
    return [weight_matrix(model, layer).shape for layer in dense_chain(model).layers]


def read_manifest(onnx_path) -> dict:
    path = manifest_path(onnx_path)
    if not path.exists():
        raise QapflowError(f"{onnx_path}: no manifest ({path.name}) beside it; export it with `qapflow export`")
    return json.loads(path.read_text())
