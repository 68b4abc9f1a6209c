"""`qapflow csim` of a FINN project: (a) FINN's python-mode execution of the hardware graph,
(b) Verilator simulation of FINN's generated RTL, the whole chain stream to stream; each
compared exactly with the integer model, and through it with qonnx and PyTorch.

Throughput (cycles per inference, the steady-state spacing of finished inferences) and the
first-output latency are measured in the RTL simulation. The Verilator binary is cached by
the digest of its sources; weight and threshold files are read at run time, so a damaged
file is found by the comparison, not hidden by the cache.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.backends.finn.hdl import OWN_LAYERS, RTL_DIR
from qapflow.backends.project import read_project
from qapflow.backends.templates import render
from qapflow.common.errors import QapflowError
from qapflow.common.tools import run_tool
from qapflow.intmodel.graph_model import GraphModel
from qapflow.sim import hls_ports as ports
from qapflow.sim.finn_stream import pack_words, unpack_words
from qapflow.sim.compare import mismatch_report
from qapflow.sim.report import finish_report, load_int_model
from qapflow.sim.vectors import simulation_inputs
from qapflow.sim.verilator import RUN_TIMEOUT_S, build_cached

SIM_DIR = "qapflow_verilator"
HARDWARE_MODEL = "finn/intermediate_models/hardware.onnx"
OWN_PARAMETERS_STEP = "step_qapflow_integer_partition"  # FINN's numbers, before the integer model's
VERILATOR_ARGS = ("--no-timing", "-Wno-MULTIDRIVEN", "-Wno-PINMISSING")


def _port_access(in_bits: int, out_bits: int) -> str:
    if in_bits > 64:
        setter = "for (int i = 0; i < IN_WORDS32; i++) top->in0_V_TDATA[i] = w[i];"
    else:
        setter = "uint64_t v = w[0]; if (IN_WORDS32 > 1) v |= (uint64_t)w[1] << 32; top->in0_V_TDATA = v;"
    if out_bits > 64:
        getter = ("std::string s; char buf[9]; for (int i = OUT_WORDS32 - 1; i >= 0; i--) { "
                  "snprintf(buf, sizeof buf, \"%08x\", (unsigned)top->out0_V_TDATA[i]); s += buf; } return s;")
    else:
        getter = ("char buf[17]; snprintf(buf, sizeof buf, \"%016llx\", "
                  "(unsigned long long)top->out0_V_TDATA); return std::string(buf);")
    return (f"template <class T> static void set_input(T *top, const std::vector<uint32_t> &w) {{ {setter} }}\n"
            f"template <class T> static std::string get_output(T *top) {{ {getter} }}")


def hardware_to_model(im, out: np.ndarray) -> np.ndarray:
    """FINN's MVAU adds no bias: the integer model's last accumulators are the hardware's plus it.
    (An integer graph's outputs come back from `from_ports` already in the IntGraph's terms.)"""
    if isinstance(im, GraphModel):
        return out
    last = im.layers[-1]
    return out + last.bias if last.thresholds is None else out


def to_ports(summary: dict, x_int: np.ndarray) -> np.ndarray:
    """An integer graph's input integers (flat, channels first) in the order FINN's input stream
    takes them: the manifest's `ports` (channels last), applied as for hls4ml (sim/hls_ports.py)."""
    return ports.to_ports(x_int, ports.port_orders(summary)[0])


def from_ports(summary: dict, out: np.ndarray) -> np.ndarray:
    """FINN's output stream back in the IntGraph's flat channels-first order, with the last
    layer's integer bias where no requantization took it (FINN's MVAU adds none)."""
    order = ports.port_orders(summary)[1]
    out = np.asarray(out, np.int64)
    if order is not None and summary.get("output_bias") is not None:  # per output channel, channels first
        bias = np.asarray(summary["output_bias"], np.int64)
        out = out + np.repeat(bias, len(order) // len(bias))[order]
    return ports.from_ports(out, order)


def python_mode(prj: Path, x_int: np.ndarray, model_file: str = HARDWARE_MODEL) -> np.ndarray:
    """FINN's own python execution of the hardware graph, one sample at a time (its batch is 1)."""
    from qapflow.backends.finn.runtime import import_finn

    import_finn()
    from finn.transformation.fpgadataflow.set_exec_mode import SetExecMode
    from qonnx.core.onnx_exec import execute_onnx

    if len(x_int) == 0:
        return np.zeros((0, 0), np.int64)
    summary = read_project(prj)
    model = ModelWrapper(str(prj / model_file)).transform(SetExecMode("cppsim"))
    for node in model.graph.node:  # layers FINN has in HLS only, qapflow's RTL in the project:
        if node.op_type in OWN_LAYERS:  # FINN's own python execution of the layer
            node.op_type, node.domain = node.op_type[: -len("_hls")], "finn.custom_op.fpgadataflow"
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    shape = model.get_tensor_shape(iname)
    out = np.stack([execute_onnx(model, {iname: row.reshape(shape).astype(np.float32)})[oname].reshape(-1)
                    for row in to_ports(summary, x_int)]).astype(np.int64)
    return from_ports(summary, out)


def finn_own_parameters(prj: Path, im, x_int: np.ndarray, reference: np.ndarray) -> dict:
    """What FINN's own weights and thresholds (before the integer model's replaced them) give on
    the same samples: for users of upstream FINN; it does not decide this report's pass."""
    own = next(iter(sorted((prj / "finn" / "intermediate_models").glob(f"*_{OWN_PARAMETERS_STEP}.onnx"))), None)
    if own is None or not len(x_int):
        return {"samples": 0}
    out = hardware_to_model(im, python_mode(prj, x_int, str(own.relative_to(prj))))
    return {"samples": len(x_int), "model": own.name,
            "samples_differing_from_int_model": int(np.count_nonzero((out != reference).any(axis=1))),
            "argmax_differing": int(np.count_nonzero(out.argmax(axis=1) != reference.argmax(axis=1)))}


def rtl_simulation(prj: Path, summary: dict, x_int: np.ndarray) -> tuple[np.ndarray, dict]:
    rtl = summary["rtl"]
    tb = render("finn_stream_tb.cpp.tmpl", top=rtl["top"], in_bits=rtl["input"]["width"],
                out_bits=rtl["output"]["width"], port_access=_port_access(rtl["input"]["width"],
                                                                          rtl["output"]["width"]))
    sources = [prj / s for s in rtl["sources"]]
    include = [f"-I../{RTL_DIR}/finn-rtllib/mvu"]  # relative to the build folder: part of the cache key
    binary, build_s, rebuilt = build_cached(prj / SIM_DIR, rtl["top"], tb, sources, prj,
                                            VERILATOR_ARGS + tuple(include))
    work = prj / SIM_DIR
    (work / "words_in.hex").write_text("\n".join(pack_words(to_ports(summary, x_int), rtl["input"]["folded_shape"],
                                                           rtl["input"]["elem_bits"])) + "\n")
    out_shape = rtl["output"]["folded_shape"]
    per_sample = int(np.prod(out_shape[:-1]))
    want = per_sample * len(x_int)
    # a bound, not a measure: four times what FINN's cycle estimates allow (fill plus n bottlenecks)
    estimates = json.loads((prj / "finn" / "report" / "estimate_layer_cycles.json").read_text())
    max_cycles = 10_000 + 4 * (sum(estimates.values()) + max(estimates.values()) * (len(x_int) + 1))
    (work / "run.log").unlink(missing_ok=True)  # the check below reads this run's warnings only
    start = time.time()
    run_tool([str(binary), str(work / "words_in.hex"), str(work / "words_out.txt"), str(want), str(max_cycles)],
             prj / RTL_DIR, work / "run.log", RUN_TIMEOUT_S)
    run_s = time.time() - start
    unread = [line for line in (work / "run.log").read_text().splitlines() if "$readmem" in line]
    if unread:
        raise QapflowError(f"the RTL simulation could not read its memory files: {unread[0]}")
    lines = (work / "words_out.txt").read_text().split("\n")
    first_in, cycles = (int(v) for v in lines[0].split())
    record = [line.split() for line in lines[1:] if line]
    arrival = np.array([int(c) for c, _ in record], np.int64)
    words = [int(w, 16) for _, w in record]
    signed = DataType[rtl["output"]["dtype"]].signed()
    out = from_ports(summary, unpack_words(words, out_shape, rtl["output"]["elem_bits"], signed))
    done = arrival[per_sample - 1 :: per_sample]
    steady = np.diff(done[len(done) // 2 :])
    timing = {
        "tool": "verilator", "rtl_top": rtl["top"],
        "cycles_per_inference_measured": int(np.median(steady)) if len(steady) else None,
        "first_output_latency_cycles": int(arrival[0] - first_in),
        "first_inference_latency_cycles": int(done[0] - first_in),
        "cycles_simulated": cycles, "build_seconds": build_s, "binary_reused": not rebuilt,
        "run_seconds": run_s, "sim_samples_per_second": len(x_int) / max(run_s, 1e-9),
    }
    return out, timing


def run_finn_csim(prj, data_file=None, n: int = 10_000, split: str = "test", inputs_file=None,
                  python_samples: int | None = None) -> dict:
    prj = Path(prj).resolve()
    summary = read_project(prj)
    if summary.get("backend") != "finn":
        raise QapflowError(f"{prj} is not a FINN project")
    im = load_int_model(prj)
    inputs = simulation_inputs(summary, n, data_file, inputs_file, split)
    x_int, rounded = im.input_integers(inputs.x)
    reference = im.forward_int(x_int)
    k = len(x_int) if python_samples is None else min(python_samples, len(x_int))
    start = time.time()
    py_out = hardware_to_model(im, python_mode(prj, x_int[:k])) if k else reference[:0]
    python = {"samples": k, "seconds": time.time() - start, **mismatch_report("int_model", py_out, reference[:k])}
    own = finn_own_parameters(prj, im, x_int[:k], reference[:k])
    rtl_out, timing = rtl_simulation(prj, summary, x_int)
    simulated = hardware_to_model(im, rtl_out)
    tool = {**timing, "finn_python_mode": python, "finn_own_parameters": own}
    return finish_report(prj, summary, im, inputs, x_int, rounded, simulated, tool,
                         tool_passed=python["mismatches_vs_int_model"] == 0)
