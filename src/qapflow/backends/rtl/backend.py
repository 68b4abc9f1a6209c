"""QONNX model -> pipelined Verilog with da4ml, from the integer model.

da4ml (distributed arithmetic) turns each constant-matrix multiply into an adder graph:
pruned zeros cost nothing and no multipliers (DSPs) are needed. The network is traced
from the IntModel with da4ml's fixed-point operations: constant-matrix products, bias
adds, and the activation requantization. da4ml rounds only TRN or half-up, so the
quantizers' round-half-to-even is built from those: for a shift s from scale 2^q to 2^p,
floor((y + 2^(p-1) - 2^q + b * 2^q) / 2^p), b the bit of y at 2^p (the quotient's LSB),
which equals round-half-even exactly. (hls4ml 1.3's own da4ml strategy fails on ONNX
input and pins an older da4ml, so da4ml is driven directly.)
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np

from qapflow.backends.identifiers import sanitize
from qapflow.backends.project import PROJECT_MANIFEST, build_into
from qapflow.backends.templates import render
from qapflow.common.atomic import write_json
from qapflow.common.errors import QapflowError
from qapflow.backends.graph_frontend import GraphFrontend, prepare_chain_or_graph
from qapflow.common.values import check_clock, check_part
from qapflow.intmodel.model import IntLayer, IntModel

WIDE = 64  # integer bits wide enough for any intermediate of these networks


def _trunc(v, f: int):
    return v.quantize(k=0, i=WIDE, f=f, overflow_mode="WRAP", round_mode="TRN")


def _requantize(acc, layer: IntLayer):
    """ReLU, round half to even from 2^acc_exp to 2^act.exp, saturate to the unsigned grid."""
    act = layer.act
    y = acc.relu()
    p, q = act.exp, layer.acc_exp
    if p > q:
        lsb = _trunc(y, -p) - _trunc(y, -(p + 1))  # the bit of y at 2^p, times 2^p
        y = y + (2.0 ** (p - 1) - 2.0**q) + lsb * 2.0 ** (q - p)
    return y.quantize(k=0, i=act.bits + p, f=-p, overflow_mode="SAT", round_mode="TRN")


def _tree_sum(values: list):
    """Sum with a balanced adder tree (depth log2 n instead of a chain)."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _thresholds(acc, layer: IntLayer):
    """q_j = base_j + #{k : acc_j >= T_jk}: one comparator per threshold, an adder tree per
    channel; the result on the output grid 2**act.exp."""
    from da4ml.trace import FixedVariableArray
    from da4ml.trace.fixed_variable import FixedVariable

    t = layer.thresholds
    unit = 2.0**layer.acc_exp
    out = []
    for j in range(len(t.base)):
        a = acc[j]
        levels = [float(v) * unit for v in t.values[j, : t.count[j]]]
        # da4ml may know a narrower range than the IntModel's bounds (the inputs' own ranges):
        # thresholds outside it are constants here, not comparators (and not da4ml constant logic)
        always = sum(1 for v in levels if v <= a.low)
        # the comparator as a mux of constants on the sign of acc - T: da4ml's own `>=` carries a
        # lazily applied scale (2**-60 and below for wide accumulators) under which a later
        # constant add (the base) is lost; the mux gives a clean 1-bit value
        bits = [(a - v).msb_mux(0.0, 1.0) for v in levels if a.low < v <= a.high]
        base = float(t.base[j] + always)
        if bits:
            q = _tree_sum(bits) + base
        else:
            q = FixedVariable.from_const(base, hwconf=acc.hwconf, _factor=1)
        out.append(q * 2.0**layer.act.exp)
    return FixedVariableArray(np.array(out, dtype=object), acc.solver_options, hwconf=acc.hwconf)


def input_array(im: IntModel):
    """The IntModel's input as da4ml fixed-point variables (its grid's sign, integer and fraction bits)."""
    from da4ml.trace import FixedVariableArray

    n_in = im.layers[0].weight.shape[1]
    spec = im.input
    return FixedVariableArray.from_kif(np.full(n_in, int(spec.signed)),
                                       np.full(n_in, spec.bits - int(spec.signed) + spec.exp), np.full(n_in, -spec.exp))


def trace_layer(x, layer: IntLayer):
    """One dense layer on traced inputs: constant-matrix product, bias, activation."""
    weights = layer.weight.T.astype(np.float64) * 2.0**layer.weight_exp  # [in, out], exact
    acc = x @ weights + layer.bias.astype(np.float64) * 2.0**layer.acc_exp
    if layer.thresholds is not None:
        return _thresholds(acc, layer)
    return _requantize(acc, layer) if layer.act is not None else acc


def trace_int_model(im: IntModel):
    """The IntModel as a da4ml combinational logic (CombLogic)."""
    from da4ml.trace import comb_trace

    inp = input_array(im)
    x = inp
    for layer in im.layers:
        x = trace_layer(x, layer)
    return comb_trace(inp, x)


def io_layout(kifs) -> list[dict]:
    """Bit offset, width, sign and fraction bits of each packed port element."""
    out, offset = [], 0
    for k, i, f in zip(*kifs):
        width = int(k) + int(i) + int(f)
        out.append({"offset": offset, "width": width, "signed": bool(k), "frac": int(f)})
        offset += width
    return out


def compile_rtl(model_path, out, pipeline_stages: int = 0, clock_ns: float = 5.0,
                part: str = "xcu250-figd2104-2L-e", project_name: str = "qapflow_net",
                input_type: str | None = None, scaler_file=None, probe: int = 2000, activations: str = "auto",
                input_shape=None) -> dict:
    """Write Verilog, the integer model and the testbench sources into `out`."""
    from da4ml.codegen import RTLModel
    from da4ml.codegen.rtl.rtl_model import get_io_kifs

    model_path, out = Path(model_path), Path(out)
    check_part(part)
    check_clock(clock_ns)
    if not 0 <= int(pipeline_stages) <= 64:
        raise QapflowError(f"pipeline stages {pipeline_stages}: use 0 (da4ml's default) to 64")
    front = prepare_chain_or_graph(model_path, input_type, scaler_file, probe, activations, input_shape=input_shape)
    im = front.im
    core = sanitize(project_name, "qapflow_net")
    top = f"{core}_top"
    if isinstance(front, GraphFrontend):  # convolutions, pooling, branches: the integer graph, unrolled
        from qapflow.backends.rtl.graph_trace import comb_logic

        comb = comb_logic(im.graph)
    else:
        comb = trace_int_model(im)
    # latency_cutoff: the adder depth per pipeline stage; fewer, deeper stages for a larger value
    cutoff = max(1.0, comb.latency[1] / pipeline_stages) if pipeline_stages > 0 else 5.0
    with build_into(out) as build:
        rtl = RTLModel(comb, core, build, flavor="verilog", latency_cutoff=cutoff, clock_period=clock_ns,
                       part_name=part)
        rtl.write()
        stages = len(rtl._pipe.solutions) if rtl._pipe is not None else 0
        inp_kifs, out_kifs = get_io_kifs(rtl._pipe if rtl._pipe is not None else comb)
        in_layout, out_layout = io_layout(inp_kifs), io_layout(out_kifs)
        in_width = sum(e["width"] for e in in_layout)
        out_width = sum(e["width"] for e in out_layout)
        # registers on the data path: the input register plus one per stage (da4ml's layout)
        registers = stages + 1 if stages else 1
        (build / "src" / f"{top}.v").write_text(render(
            "rtl_top.v.tmpl", top=top, core=core, in_width=in_width, out_width=out_width,
            latency=max(registers, 2), input_exp=im.input.exp))
        front.write(build)
    summary = {
        "stage": "compile",
        "backend": "rtl",
        "da4ml_version": version("da4ml"),
        "project_name": core,
        "top": top,
        **front.summary_fields(),
        "pipeline_stages": stages,
        "pipeline_registers": registers,
        "estimated_cost_luts": float(comb.cost),
        "multiplications_in_code": 0,
        "io": {"inputs": in_layout, "outputs": out_layout},
        "options": {"pipeline_stages": pipeline_stages, "clock_ns": clock_ns, "part": part},
    }
    write_json(out / PROJECT_MANIFEST, summary)
    return summary


def verilog_sources(prj) -> list[Path]:
    src = Path(prj) / "src"
    return sorted(p for p in src.rglob("*.v"))
