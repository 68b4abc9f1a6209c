"""The project's RTL: FINN's generated layers and finn-rtllib sources, in one folder, with a
top level that chains the layers' AXI streams, for Verilator and Yosys.

Without Vivado there is no IP stitching, so qapflow writes the stitching itself: each node's
out0_V stream drives the next node's in0_V (FINN has inserted the FIFOs and width converters),
each MVAU's weights come from its own memstream, every other input is tied to zero.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from qapflow.backends.finn.runtime import rtllib_dir
from qapflow.common.errors import QapflowError

RTL_DIR = "rtl"
TOP = "qapflow_finn_top"
# finn-rtllib sources the weight streamer needs (FINN's IP stitching adds them; we do it here)
MEMSTREAM_SOURCES = ["axi/hdl/axilite.sv", "memstream/hdl/memstream.sv", "memstream/hdl/memstream_axi.sv"]
PACKAGES = ("mvu_pkg.sv",)
_INPUT_PORT = re.compile(r"^\s*input\s+(?:wire\s+|logic\s+)?(?:\[[^\]]*\]\s*)?(\w+)\s*,?\s*(?://.*)?$", re.M)


def fix_add_multi(text: str) -> str:
    """Verilator rejects add_multi.sv's constant function declared inside a generate block
    (IEEE 1800-2023 13.4.3 allows constant functions only where a localparam could call them
    at elaboration; Verilator 5.48 does not look into generate scopes). Moving the typedef and
    the function to module scope keeps the logic exactly as it is."""
    start = text.find("\t\t// Compute the count of decendents")
    end_marker = "endfunction : init_leaf_loads\n"
    end = text.find(end_marker, start)
    anchor = "\tuwire [SUM_WIDTH-1:0]  sum0;\n"
    if start < 0 or end < 0 or anchor not in text:
        raise QapflowError("finn-rtllib mvu/add_multi.sv is not the version qapflow knows how to fix for "
                           "Verilator (finn-plus 1.6.1)")
    block = text[start : end + len(end_marker)]
    moved = "\n".join(line[1:] if line.startswith("\t") else line for line in block.splitlines()) + "\n"
    text = text[:start] + text[end + len(end_marker):]
    return text.replace(anchor, moved + anchor, 1)


def fix_fifo(text: str) -> str:
    """fifo.sv sizes its memory with a constant function returning an unpacked struct, which
    Verilator 5.48 cannot evaluate at elaboration; the same two fields packed are evaluated,
    and every use (ABITS.lo, ABITS.hi) reads the same values."""
    old = "\ttypedef struct {\n"
    if old not in text or "abits_t" not in text:
        raise QapflowError("finn-rtllib fifo/hdl/fifo.sv is not the version qapflow knows how to fix for "
                           "Verilator (finn-plus 1.6.1)")
    return text.replace(old, "\ttypedef struct packed {\n", 1)


# project-owned copies of finn-rtllib files that Verilator cannot read as FINN ships them
VERILATOR_FIXES = {"mvu/add_multi.sv": fix_add_multi, "fifo/hdl/fifo.sv": fix_fifo}


def _copy_rtllib(rel: str, rtl: Path) -> Path:
    dst = rtl / "finn-rtllib" / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        text = (rtllib_dir() / rel).read_text()
        dst.write_text(VERILATOR_FIXES[rel](text) if rel in VERILATOR_FIXES else text)
    return dst


OWN_RTL = Path(__file__).parent / "rtl"


def _acc_pool_parameters(node, inst) -> dict:
    folded = inst.get_folded_input_shape(0)
    return {"PIXELS": int(np.prod(inst.get_normal_input_shape(0)[1:-1])), "FOLDS": int(folded[-2]),
            "PE": int(folded[-1]), "IN_BITS": inst.get_input_datatype(0).bitwidth(),
            "OUT_BITS": inst.get_output_datatype(0).bitwidth(), "SIGNED": int(inst.get_input_datatype(0).signed())}


def _max_pool_parameters(node, inst) -> dict:
    """FINN's Pool after a depthwise sliding window: words (C / PE, K, PE) per output pixel."""
    if inst.get_nodeattr("Function") != "MaxPool":
        raise QapflowError(f"{node.name} ({node.op_type}): Function {inst.get_nodeattr('Function')}; qapflow's RTL "
                           "pool (rtl/qapflow_max_pool.v) takes MaxPool only")
    return {"KERNEL": int(np.prod(inst.get_nodeattr("KernelSize"))), "PE": int(inst.get_nodeattr("PE")),
            "BITS": inst.get_input_datatype(0).bitwidth(), "SIGNED": int(inst.get_input_datatype(0).signed())}


# FINN layers that exist only in HLS, built here by qapflow's own RTL (backends/finn/rtl/): the
# module and its parameters from the node
OWN_LAYERS = {"GlobalAccPool_hls": ("qapflow_global_acc_pool", _acc_pool_parameters),
              "Pool_hls": ("qapflow_max_pool", _max_pool_parameters)}


def _own_layer(node, inst, rtl: Path) -> list[Path]:
    """A wrapper named as FINN names the node, around qapflow's module for the layer, with the
    node's own shapes and types as parameters."""
    module, parameters = OWN_LAYERS[node.op_type]
    lib = rtl / f"{module}.v"
    if not lib.exists():
        shutil.copy2(OWN_RTL / f"{module}.v", lib)
    params = {**parameters(node, inst), "IN_W": inst.get_instream_width_padded(0),
              "OUT_W": inst.get_outstream_width_padded(0)}
    p = params
    wrapper = rtl / f"{node.name}.v"
    wrapper.write_text(
        f"// qapflow: {node.name} ({node.op_type}) as qapflow's {module} (FINN has it in HLS only)\n"
        f"module {node.name} (\n  input wire ap_clk,\n  input wire ap_rst_n,\n"
        f"  input wire [{p['IN_W'] - 1}:0] in0_V_TDATA,\n  input wire in0_V_TVALID,\n  output wire in0_V_TREADY,\n"
        f"  output wire [{p['OUT_W'] - 1}:0] out0_V_TDATA,\n  output wire out0_V_TVALID,\n  input wire out0_V_TREADY\n);\n"
        f"  {module} #({', '.join(f'.{k}({v})' for k, v in params.items())}) impl (\n"
        "    .ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .in0_V_TDATA(in0_V_TDATA), .in0_V_TVALID(in0_V_TVALID),\n"
        "    .in0_V_TREADY(in0_V_TREADY), .out0_V_TDATA(out0_V_TDATA), .out0_V_TVALID(out0_V_TVALID),\n"
        "    .out0_V_TREADY(out0_V_TREADY));\nendmodule\n")
    return [lib, wrapper]


def _node_files(node, inst, rtl: Path) -> list[Path]:
    """Copy a node's generated and library sources; absolute data paths become relative to rtl/."""
    if node.op_type in OWN_LAYERS:
        return _own_layer(node, inst, rtl)
    files = []
    gen_dir = Path(inst.get_nodeattr("code_gen_dir_ipgen"))
    lib = rtllib_dir().resolve()
    sources = [Path(p) for p in inst.get_rtl_file_list(abspath=True)]
    if node.op_type.startswith("MVAU"):
        sources.append(gen_dir / f"{node.name}_memstream_wrapper.v")
        sources += [lib / rel for rel in MEMSTREAM_SOURCES]
    for src in sources:
        src = src.resolve()
        if lib in src.parents:
            files.append(_copy_rtllib(str(src.relative_to(lib)), rtl))
            continue
        text = (src.read_text().replace(f"{gen_dir}/memblock.dat", f"{node.name}_memblock.dat")
                .replace(f"{gen_dir}/", "./"))
        (rtl / src.name).write_text(text)
        files.append(rtl / src.name)
    for data in gen_dir.glob("*.dat"):
        name = f"{node.name}_memblock.dat" if data.name == "memblock.dat" else data.name
        shutil.copy2(data, rtl / name)
    return files


def _inputs_of(module_file: Path, module: str) -> list[str]:
    text = module_file.read_text()
    start = text.find(f"module {module}")
    header = text[start : text.find(");", start)]
    return _INPUT_PORT.findall(header)


def _instance(module: str, name: str, ports: dict[str, str], all_inputs: list[str]) -> str:
    conns = dict(ports)
    for port in all_inputs:
        conns.setdefault(port, "'0")
    body = ",\n".join(f"    .{p}({s})" for p, s in conns.items())
    return f"  {module} {name} (\n{body}\n  );\n"


def _stream(prefix: str, wire: str) -> dict[str, str]:
    return {f"{prefix}_TDATA": f"{wire}_tdata", f"{prefix}_TVALID": f"{wire}_tvalid", f"{prefix}_TREADY": f"{wire}_tready"}


def collect_rtl(model: ModelWrapper, prj: Path) -> dict:
    rtl = prj / RTL_DIR
    rtl.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    decl, body, layers = [], [], []
    nodes = list(model.graph.node)
    clocks = {"ap_clk": "ap_clk", "ap_rst_n": "ap_rst_n"}
    for i, node in enumerate(nodes):
        inst = getCustomOp(node)
        node_files = _node_files(node, inst, rtl)
        files += [f for f in node_files if f not in files]
        module = node.name if node.op_type in OWN_LAYERS else inst.get_nodeattr("gen_top_module") or node.name
        wrapper = next(f for f in node_files if f.name.startswith(node.name) and "memstream" not in f.name)
        win, wout = f"s{i}", f"s{i + 1}"
        ports = {**clocks, **_stream("in0_V", win), **_stream("out0_V", wout)}
        inputs = _inputs_of(wrapper, module)
        if "ap_clk2x" in inputs:
            ports["ap_clk2x"] = "ap_clk"
        if node.op_type.startswith("MVAU"):
            ports.update(_stream("in1_V", f"w{i}"))
            width = inst.get_instream_width_padded(1)
            decl.append(f"  wire [{width - 1}:0] w{i}_tdata;\n  wire w{i}_tvalid, w{i}_tready;\n")
            mem_file = rtl / f"{node.name}_memstream_wrapper.v"
            mem_ports = {"ap_clk": "ap_clk", "ap_clk2x": "ap_clk", "ap_rst_n": "ap_rst_n",
                         "m_axis_0_tready": f"w{i}_tready", "m_axis_0_tvalid": f"w{i}_tvalid",
                         "m_axis_0_tdata": f"w{i}_tdata"}
            body.append(_instance(f"{node.name}_memstream_wrapper", f"weights_{i}", mem_ports,
                                  _inputs_of(mem_file, f"{node.name}_memstream_wrapper")))
        body.append(_instance(module, f"layer_{i}", ports, inputs))
        width_in, width_out = inst.get_instream_width_padded(0), inst.get_outstream_width_padded(0)
        if i == 0:
            decl.append(f"  wire [{width_in - 1}:0] s0_tdata;\n  wire s0_tvalid, s0_tready;\n")
        decl.append(f"  wire [{width_out - 1}:0] {wout}_tdata;\n  wire {wout}_tvalid, {wout}_tready;\n")
        layers.append({"name": node.name, "op_type": node.op_type, "in_width": width_in, "out_width": width_out})
    n = len(nodes)
    top = ("// qapflow: FINN's layers chained stream to stream (what Vivado's IP stitching does)\n"
           f"module {TOP} (\n  input ap_clk,\n  input ap_rst_n,\n"
           f"  input [{layers[0]['in_width'] - 1}:0] in0_V_TDATA,\n  input in0_V_TVALID,\n  output in0_V_TREADY,\n"
           f"  output [{layers[-1]['out_width'] - 1}:0] out0_V_TDATA,\n  output out0_V_TVALID,\n  input out0_V_TREADY\n);\n"
           + "".join(decl)
           + "  assign s0_tdata = in0_V_TDATA;\n  assign s0_tvalid = in0_V_TVALID;\n  assign in0_V_TREADY = s0_tready;\n"
           + f"  assign out0_V_TDATA = s{n}_tdata;\n  assign out0_V_TVALID = s{n}_tvalid;\n  assign s{n}_tready = out0_V_TREADY;\n"
           + "".join(body) + "endmodule\n")
    (rtl / f"{TOP}.v").write_text(top)
    packages = [f for f in files if f.name in PACKAGES]
    ordered = packages + [f for f in files if f not in packages] + [rtl / f"{TOP}.v"]
    first, last = getCustomOp(nodes[0]), getCustomOp(nodes[-1])
    return {"top": TOP, "sources": [str(f.relative_to(prj)) for f in ordered], "layers": layers,
            "input": {"dtype": first.get_input_datatype(0).name, "folded_shape": list(first.get_folded_input_shape(0)),
                      "elem_bits": first.get_input_datatype(0).bitwidth(), "width": layers[0]["in_width"]},
            "output": {"dtype": last.get_output_datatype(0).name, "folded_shape": list(last.get_folded_output_shape(0)),
                       "elem_bits": last.get_output_datatype(0).bitwidth(), "width": layers[-1]["out_width"]}}
