"""IntGraph -> hls4ml project (convolutions, pooling, branches), beside backend.py's dense chain.

The layer list comes from graph_layers.py (hls4ml's own Conv, Pooling, Merge, Concatenate,
BatchNormalization and Reshape layers, qapflow's requantization layer), every type an integer
type wide enough for its tensor's reachable range, so the project computes the IntGraph's
integers. The ports are channels last; `ports` in the manifest gives the order of their
elements in the integer graph's flat, channels-first order, which the simulators apply.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qapflow.backends.hls4ml import requant, sparse
from qapflow.backends.hls4ml.graph_layers import GraphLayers


def build_graph_model(graph, out: Path, project: str, opts):
    """The hls4ml ModelGraph of an IntGraph, and the layer builder (tensor orders, types)."""
    import hls4ml
    from hls4ml.model import ModelGraph

    sparse.register()
    requant.register()
    built = GraphLayers(graph, stream=opts.io == "stream").build()
    config = hls4ml.utils.config.create_config(
        output_dir=str(out), project_name=project, backend=opts.vendor.capitalize(), part=opts.part,
        clock_period=opts.clock_ns, io_type=f"io_{opts.io}")
    config["HLSConfig"] = {
        "Model": {"Precision": "fixed<32,16>", "ReuseFactor": opts.reuse, "Strategy": opts.strategy.capitalize()},
        "LayerName": {name: {"Precision": p, "ReuseFactor": opts.reuse} for name, p in built.precision.items()},
    }
    return ModelGraph.from_layer_list(config, built.layers), built


def port_orders(built: GraphLayers) -> dict:
    """Element i of a port is element order[i] of the IntGraph tensor (flat, channels first)."""
    g = built.graph
    inp, out = built.tensors[g.input], built.output
    return {"n_in": len(inp.order), "n_out": len(out.order), "input_order": np.asarray(inp.order).tolist(),
            "output_order": np.asarray(out.order).tolist(), "input_shape": list(inp.shape),
            "output_shape": list(out.shape)}


def graph_summary_fields(hls_model, built: GraphLayers) -> dict:
    return {"ports": port_orders(built),
            "hls4ml_layers": [f"{layer.name} ({layer.class_name})" for layer in hls_model.get_layers()],
            "accumulator_types": [p["accum"] for p in built.precision.values() if "accum" in p]}
