"""What every backend starts from: the ingested graph, its IntModel, checked, and provenance.

Any QONNX file is taken, with or without a qapflow manifest. The IntModel built from it is
compared at once with qonnx's execution of the original graph on probe inputs (saturation,
rounding ties), quantizer by quantizer; a mismatch stops the compile. The manifest, when
there is one, brings the scaler and the data provenance (its model digest checked); else
`--scaler FILE.json` or none (the model takes raw inputs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from qapflow.common.atomic import atomic_path
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.common.hashing import file_digest
from qapflow.export.ingest import ingest
from qapflow.export.qonnx_export import manifest_path
from qapflow.intmodel.build import DEFAULT_INPUT_TYPE, build_int_model
from qapflow.intmodel.model import IntModel
from qapflow.intmodel.probe import probe_inputs
from qapflow.intmodel.reference import compare_with_qonnx

SOURCE_COPY = "source.qonnx.onnx"


@dataclass
class Frontend:
    model_path: Path
    model: ModelWrapper
    im: IntModel
    manifest: dict | None
    scaler: dict | None
    check: dict
    dead_neurons_folded: int | None = None  # None: folding was not asked for

    def summary_fields(self) -> dict:
        im = self.im
        return {
            "source_model": str(self.model_path.resolve()),
            "source_sha256": file_digest(self.model_path),
            "qapflow_manifest": self.manifest is not None,
            "bit_exact": True,
            "nonzero_weights": im.nonzero_weights,
            "layer_widths": [list(l.weight.shape) for l in im.layers],
            "activations": [l.activation for l in im.layers],
            "threshold_comparators": im.comparators,
            "input": im.input.__dict__,
            "input_shape": im.software.input_shape if im.software else [im.layers[0].weight.shape[1]],
            "output_exp": im.output_exp(),
            "output_exact": im.software.output.exact if im.software else True,
            "software": im.software.description if im.software else {},
            "int_model_vs_qonnx": self.check,
            "scaler": self.scaler,
            "dead_neurons_folded": self.dead_neurons_folded,
            "data": (self.manifest or {}).get("data"),
        }

    def write(self, folder: Path) -> None:
        self.im.save(folder / "int_model.json")
        with atomic_path(folder / SOURCE_COPY) as tmp:
            self.model.save(str(tmp))


def read_checked_manifest(model_path: Path) -> dict | None:
    """The export manifest beside a qapflow-exported model (None for any other file), its model
    digest checked against the file."""
    if not (manifest_path(model_path).exists() and model_path.is_file()):
        return None
    manifest = json.loads(manifest_path(model_path).read_text())
    digest = manifest.get("model_sha256")
    if digest and digest != file_digest(model_path):
        raise DataFormatError(model_path, f"the model's SHA-256 differs from its manifest "
                              f"({manifest_path(model_path).name}): the file changed after export")
    return manifest


def load_scaler(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(path, f"cannot read the scaler JSON: {exc}") from exc
    if not isinstance(data, dict) or "mean" not in data or "std" not in data:
        raise DataFormatError(path, "a scaler needs fields 'features', 'mean' and 'std' (qapflow's "
                                    "Standardizer JSON, as `qapflow train` saves it)")
    return data


ACTIVATION_FORMS = ("auto", "thresholds")


def fold_dead_neurons(model: ModelWrapper) -> tuple[ModelWrapper, int]:
    """Dead neurons folded away where qapflow's zero folding reads the graph (Gemm chains, as
    qapflow exports them; those are folded at export already); (model, neurons removed)."""
    from qapflow.export.fold import fold_zeros
    from qapflow.export.graph import UnsupportedGraph as NotAGemmChain

    def hidden(m) -> int:
        return sum(int(m.get_tensor_shape(n.output[0])[-1]) for n in m.graph.node if n.op_type == "Gemm")

    quants = [model.find_producer(n.input[1]) for n in model.graph.node if n.op_type == "Gemm"]
    per_tensor = all(q is not None and q.op_type == "Quant" and model.get_initializer(q.input[1]).size == 1
                     for q in quants)
    if not quants or not per_tensor:  # zero folding deletes rows of per-tensor-scaled weights only
        return model, 0
    try:
        folded = fold_zeros(model)  # its transforms work on a copy
    except NotAGemmChain:
        return model, 0
    return folded, hidden(model) - hidden(folded)


def prepare(model_path, input_type: str | None = None, scaler_file=None, probe: int = 2000,
            activations: str = "auto", fold_dead: bool = False, input_shape=None) -> Frontend:
    """`input_shape` (ints, batch first) fixes the graph input's shape where the file leaves it
    symbolic or out (`--input-shape`); ingest checks it against the declared one."""
    model_path = Path(model_path)
    manifest = read_checked_manifest(model_path)
    if activations not in ACTIVATION_FORMS:
        raise QapflowError(f"--activations {activations!r}: use one of {ACTIVATION_FORMS}")
    model = ingest(model_path, input_shape)
    removed = None
    if fold_dead:
        model, removed = fold_dead_neurons(model)
    try:
        im = build_int_model(model, input_type, force_thresholds=activations == "thresholds")
    except QapflowError as exc:
        raise DataFormatError(model_path, str(exc)) from exc
    scaler = load_scaler(scaler_file) if scaler_file else (manifest or {}).get("scaler")
    n_in = im.layers[0].weight.shape[1]
    if scaler is not None and len(scaler["mean"]) != n_in:
        where = scaler_file or manifest_path(model_path).name
        raise DataFormatError(model_path, f"the model takes {n_in} inputs but the scaler ({where}) has "
                                          f"{len(scaler['mean'])} features")
    check = compare_with_qonnx(im, model, probe_inputs(im, probe))[0] if probe else {}
    if check and (check["quantizer_mismatches"] or check["output_mismatching_samples"]):
        raise QapflowError(f"{model_path}: the integer model differs from qonnx's execution of the graph "
                           f"(quantizers {check['layers']}, outputs {check['output_mismatching_samples']} "
                           "samples); please report this model")
    if check:
        check["input_type"] = im.software.description.get("input_type_assumed") if im.software else None
        check["default_input_type"] = DEFAULT_INPUT_TYPE
    return Frontend(model_path, model, im, manifest, scaler, check, removed)
