"""An IntGraph seen through what the simulators and their reports ask of an integer model.

The simulators (sim/verilator.py, sim/report.py) take flat input integers per sample and give
flat output integers; the IntModel (dense chains) offers that, and GraphModel gives the same
calls over an IntGraph (any shape): the firmware's integers are the IntGraph's tensors in
integer units (scale exponent 0), flattened channels first. Nothing is computed here that the
IntGraph does not compute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.intmodel.graph import IntGraph
from qapflow.intmodel.graph_reference import compare_graph
from qapflow.intmodel.model import QuantSpec

GRAPH_FILE = "int_graph.json"


class GraphModel:
    def __init__(self, graph: IntGraph):
        self.graph = graph
        spec = graph.tensors[graph.input].grid.spec
        self.input = QuantSpec(spec.bits, 0, spec.signed, spec.narrow)  # integer units on the ports

    @property
    def input_shape(self) -> list[int]:
        return list(self.graph.ends.input_shape)

    def input_integers(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """(flat input integers, values off the grid: 0, the graph's own quantizer rounds them)."""
        q = self.graph.input_integers(x)
        return q.reshape(len(q), -1), 0

    def forward_int(self, x_int: np.ndarray) -> np.ndarray:
        shape = self.graph.tensors[self.graph.input].shape
        out = self.graph.forward(np.asarray(x_int, np.int64).reshape(len(x_int), *shape))
        return out.reshape(len(out), -1)

    def outputs(self, out_int: np.ndarray) -> np.ndarray:
        shape = self.graph.tensors[self.graph.output].shape
        return self.graph.outputs(np.asarray(out_int, np.int64).reshape(len(out_int), *shape))

    def output_exp(self) -> int:
        return 0

    def compare_with_qonnx(self, model: ModelWrapper, x: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
        return compare_graph(self.graph, model, x)

    @property
    def nonzero_weights(self) -> int:
        return sum(int(np.count_nonzero(op.weight)) for op in self.graph.ops if op.kind in ("dense", "conv"))

    @property
    def comparators(self) -> int:
        return self.graph.comparators

    def save(self, folder: Path) -> None:
        self.graph.save(Path(folder) / GRAPH_FILE)

    @classmethod
    def load(cls, folder: Path) -> "GraphModel":
        return cls(IntGraph.load(Path(folder) / GRAPH_FILE))
