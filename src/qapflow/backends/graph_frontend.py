"""What a backend that builds integer graphs starts from: the dense chain's frontend where the
file is a dense chain, else the ingested graph read as an IntGraph and checked at once against
qonnx's execution of the file on probe inputs (every quantizer, the outputs), as the chain's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from qapflow.backends.frontend import SOURCE_COPY, Frontend, prepare, read_checked_manifest
from qapflow.common.atomic import atomic_path
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.common.hashing import file_digest
from qapflow.export.ingest import ingest
from qapflow.intmodel.chain import UnsupportedGraph
from qapflow.intmodel.graph_model import GraphModel
from qapflow.intmodel.graph_probe import graph_probe_inputs
from qapflow.intmodel.read_graph import read_graph


@dataclass
class GraphFrontend:
    model_path: Path
    model: ModelWrapper
    im: GraphModel
    check: dict
    manifest: dict | None = None  # a qapflow export's: the scaler of its inputs, the data it was trained on

    def summary_fields(self) -> dict:
        g = self.im.graph
        out = g.tensors[g.output]
        return {
            "source_model": str(self.model_path.resolve()),
            "source_sha256": file_digest(self.model_path),
            "qapflow_manifest": self.manifest is not None,
            "bit_exact": True,
            "integer_graph": True,
            "ops": [f"{op.name} ({op.kind})" for op in g.ops],
            "nonzero_weights": self.im.nonzero_weights,
            "activations": [op.kind for op in g.ops if op.kind in ("shift", "thresholds")],
            "threshold_comparators": self.im.comparators,
            "input": self.im.input.__dict__,
            "input_shape": self.im.input_shape,
            "output_shape": list(out.shape),
            "output_exp": 0,
            "output_exact": True,
            "software": {**g.ends.description, "input_type_assumed": None},
            "int_model_vs_qonnx": {k: v for k, v in self.check.items() if k not in ("tensors", "float32_graph")},
            "scaler": (self.manifest or {}).get("scaler"),
            "dead_neurons_folded": None,
            "data": (self.manifest or {}).get("data"),
        }

    def write(self, folder: Path) -> None:
        self.im.save(folder)
        with atomic_path(folder / SOURCE_COPY) as tmp:
            self.model.save(str(tmp))


def prepare_graph(model_path, probe: int = 1000, input_shape=None) -> GraphFrontend:
    model_path = Path(model_path)
    model = ingest(model_path, input_shape)
    try:
        gm = GraphModel(read_graph(model))
    except QapflowError as exc:
        raise DataFormatError(model_path, str(exc)) from exc
    check = gm.compare_with_qonnx(model, graph_probe_inputs(gm.graph, probe))[0] if probe else {}
    if check and (check["quantizer_mismatches"] or check["output_mismatching_samples"]):
        raise QapflowError(f"{model_path}: the integer graph differs from qonnx's execution of the graph "
                           f"(tensors {check['tensors']}, outputs {check['output_mismatching_samples']} samples); "
                           "please report this model")
    return GraphFrontend(model_path, model, gm, check, read_checked_manifest(model_path))


def prepare_chain_or_graph(model_path, input_type=None, scaler_file=None, probe: int = 2000,
                           activations: str = "auto", input_shape=None) -> Frontend | GraphFrontend:
    """The dense chain's frontend; where the chain reader refuses the file's structure (a
    convolution, a pooling, a branch), the integer graph's. A file neither reads gets both reasons."""
    try:
        return prepare(model_path, input_type, scaler_file, probe, activations, input_shape=input_shape)
    except DataFormatError as chain_exc:
        if not isinstance(chain_exc.__cause__, UnsupportedGraph):
            raise
        if input_type is not None or scaler_file is not None or activations != "auto":
            raise DataFormatError(model_path, f"{chain_exc.problem} (--input-type, --scaler and --activations "
                                              "apply to dense chains; integer graphs take neither yet)") from chain_exc
        try:
            return prepare_graph(model_path, min(probe, 1000) if probe else 0, input_shape)
        except DataFormatError as graph_exc:
            raise DataFormatError(model_path, f"as a dense chain: {chain_exc.problem}; as an integer graph: "
                                              f"{graph_exc.problem}") from graph_exc
