"""`qapflow compile --backend finn` of an integer graph (convolutions, pools, a flatten, dense layers).

FINN's own builder steps lower every Conv (LowerConvsToMatMul, then FMPadding,
ConvolutionInputGenerator and MVAU, all RTL after specialization), make the requantizations
Thresholding layers, a max pool a depthwise sliding window and a Pool, a global average pool a
GlobalAccPool, and move the data channels last; qapflow's steps give FINN an integer input, make
every mean over the spatial axes a GlobalAveragePool and a 1D graph 2D, cut FINN's graph to its
hardware layers and write the IntGraph's integers into them (transforms/int_graph_parameters.py:
FINN gives the architecture, the IntGraph every number). The Pool and GlobalAccPool FINN has in
HLS only are qapflow's RTL (hdl.OWN_LAYERS); what else FINN has only in HLS (windowed average
pools, branches) is refused by node before FINN runs. The ports are channels last; `ports` in
the manifest gives their order in the IntGraph's channels-first numbering, which
sim/finn_sim.py applies.
"""

from __future__ import annotations

from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from qapflow.backends.finn.runtime import vendor_note
from qapflow.backends.finn.transforms.global_average_pool import GlobalAveragePools
from qapflow.backends.finn.transforms.graph_integer_input import GraphIntegerInput
from qapflow.backends.finn.transforms.graph_partition import GraphPartition
from qapflow.backends.finn.transforms.int_graph_parameters import (IntGraphParameters, check_graph,
                                                                   compare_graph_parameters, layer_plan,
                                                                   stream_orders)
from qapflow.backends.finn.transforms.one_d_as_two_d import OneDAsTwoD
from qapflow.backends.project import PROJECT_MANIFEST, build_into
from qapflow.common.atomic import write_json
from qapflow.common.console import say
from qapflow.common.errors import QapflowError

STEPS = ["step_qapflow_graph_integer_input", "step_qonnx_to_finn", "step_tidy_up",
         "step_qapflow_global_average_pools", "step_qapflow_1d_as_2d",
         "step_streamline",
         "step_convert_to_hw", "step_qapflow_graph_partition", "step_qapflow_int_graph_parameters",
         "step_specialize_layers", "step_qapflow_check_rtl", "step_target_fps_parallelization",
         "step_apply_folding_config", "step_minimize_bit_width", "step_generate_estimate_reports",
         "step_qapflow_own_rtl_layers", "step_set_fifo_depths"]


def ports(graph) -> dict:
    """The firmware's ports as the IntGraph numbers them: element k of FINN's input stream is
    the IntGraph's flat (channels-first) input element input_order[k]; likewise the output."""
    orders = stream_orders(graph)
    return {"n_in": int(len(orders[graph.input])), "n_out": int(len(orders[graph.output])),
            "input_order": orders[graph.input].tolist(), "output_order": orders[graph.output].tolist()}


def own_rtl_layers(model: ModelWrapper, codegen: Path) -> ModelWrapper:
    """Layers FINN has in HLS only and qapflow builds in its own RTL (hdl.OWN_LAYERS): FINN's FIFO
    step generates and synthesizes every HLS node's IP with Vitis, which is not here and not
    needed; each such node gets a code generation folder and IP path of its own (empty, under
    FINN's build folder), which FINN's PrepareIP and HLSSynthIP take as done. hdl.py writes the
    node's RTL."""
    from qonnx.custom_op.registry import getCustomOp

    from qapflow.backends.finn.hdl import OWN_LAYERS

    for node in model.graph.node:
        if node.op_type in OWN_LAYERS:
            folder = codegen / f"qapflow_own_rtl_{node.name}"
            folder.mkdir(parents=True, exist_ok=True)
            inst = getCustomOp(node)
            inst.set_nodeattr("code_gen_dir_ipgen", str(folder))
            inst.set_nodeattr("ipgen_path", str(folder))
    return model


def check_pool_folding(model: ModelWrapper, model_path) -> ModelWrapper:
    """A max pool and its sliding window take all channels a word (PE = SIMD = Channels). Folded,
    the depthwise window sends (C / SIMD, K, SIMD) words, which FINN's python execution of the
    Pool reads as (K, C), and a Pool PE other than the window's SIMD gets a width converter that
    mixes window positions in one word: neither is the max pool."""
    from qonnx.custom_op.registry import getCustomOp

    for node in model.get_nodes_by_op_type("Pool_hls"):
        inst, window = getCustomOp(node), model.find_producer(node.input[0])
        while window is not None and window.op_type.startswith(("StreamingFIFO", "StreamingDataWidthConverter")):
            window = model.find_producer(window.input[0])
        simd = getCustomOp(window).get_nodeattr("SIMD") if window is not None else None
        channels = inst.get_nodeattr("Channels")
        if not inst.get_nodeattr("PE") == simd == channels:
            raise QapflowError(f"{model_path}: {node.name} (Pool_hls): PE {inst.get_nodeattr('PE')}, its window "
                               f"{window.name if window is not None else None} SIMD {simd}, of {channels} channels; "
                               "qapflow's FINN path takes a max pool all its channels a word: fold it (and its "
                               "ConvolutionInputGenerator) with PE = SIMD = Channels")
    return model


def compile_finn_graph(front, model_path: Path, out: Path, opts) -> dict:
    from qapflow.backends.finn.build import _run_steps, _set_mem_mode, _specialized, _summary

    graph = front.im.graph
    check_graph(graph, model_path)
    plan = layer_plan(graph)
    with build_into(out) as build:
        comparison: list[dict] = []

        def int_graph_parameters(m, c):
            comparison.extend(compare_graph_parameters(m, plan))  # FINN's own numbers, before ours
            return m.transform(IntGraphParameters(graph, plan))

        ours = {
            "step_qapflow_graph_integer_input": lambda m, c: m.transform(GraphIntegerInput(graph)),
            "step_qapflow_global_average_pools": lambda m, c: m.transform(GlobalAveragePools()),
            "step_qapflow_1d_as_2d": lambda m, c: m.transform(OneDAsTwoD()),
            "step_qapflow_graph_partition": lambda m, c: m.transform(GraphPartition()),
            "step_qapflow_int_graph_parameters": int_graph_parameters,
            "step_qapflow_check_rtl": lambda m, c: _specialized(_set_mem_mode(m, opts.mem_mode), model_path),
            "step_qapflow_own_rtl_layers": lambda m, c: own_rtl_layers(check_pool_folding(m, model_path),
                                                                       build / "finn_codegen"),
        }
        model, rtl = _run_steps(build, front, STEPS, ours, comparison, opts, model_path, "integer graph")
        summary = _summary(front, comparison, rtl, opts,
                           finn_layers=[f"{n.name} ({n.op_type})" for n in model.graph.node], ports=ports(graph),
                           output_bias=[int(v) for v in plan[-1]["bias"]] if plan[-1]["requant"] is None else None)
        if plan[-1]["requant"] is None and graph.ops[-1] is not plan[-1]["op"]:
            raise QapflowError(f"{model_path}: the graph ends in {graph.ops[-1].name} ({graph.ops[-1].kind}) after "
                               "its last unrequantized layer")
        write_json(build / PROJECT_MANIFEST, summary)
    say(vendor_note())
    return summary
