"""What every simulator shares: its inputs, the references, the comparison and the report.

A simulator (g++ csim, Verilator) only turns input integers into output integers; this module
compares them exactly with the IntModel, checks the IntModel against qonnx's execution of the
project's source graph on the same inputs, compares with PyTorch where the model came from a
qapflow checkpoint, and writes outputs_int.npy, outputs.npy and csim_report.json.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from qapflow.backends.frontend import SOURCE_COPY
from qapflow.common.atomic import atomic_path, write_json
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph_model import GRAPH_FILE, GraphModel
from qapflow.intmodel.model import IntModel
from qapflow.intmodel.reference import compare_with_qonnx
from qapflow.sim.compare import accuracy, mismatch_report
from qapflow.sim.vectors import SimInputs


def load_int_model(prj: Path) -> IntModel | GraphModel:
    """The project's integer model: the dense chain's IntModel, or the integer graph's view."""
    prj = Path(prj)
    if (prj / GRAPH_FILE).exists():
        return GraphModel.load(prj)
    path = prj / "int_model.json"
    if not path.exists():
        raise QapflowError(f"{prj}: no int_model.json; recompile the project with `qapflow compile`")
    return IntModel.load(path)


def pytorch_comparison(summary: dict, x: np.ndarray, simulated: np.ndarray,
                       im=None) -> tuple[dict, np.ndarray | None]:
    """Against the PyTorch checkpoint behind a qapflow export, where there is one."""
    from qapflow.sim.pytorch_ref import PyTorchUnavailable, graph_pytorch_reference, pytorch_reference

    try:
        exact, torch_int, rate = (graph_pytorch_reference(summary, x, im.graph) if isinstance(im, GraphModel)
                                  else pytorch_reference(summary, x))
    except PyTorchUnavailable as why:
        return {"mismatches_vs_pytorch": None, "pytorch": f"not compared: {why}"}, None
    return {**mismatch_report("pytorch", simulated, torch_int), "pytorch_samples_per_second": rate}, exact


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def finish_report(prj: Path, summary: dict, im: IntModel, inputs: SimInputs, x_int: np.ndarray,
                  rounded: int, simulated: np.ndarray, tool: dict, tool_passed: bool = True) -> dict:
    """tool_passed: the simulator's own checks (e.g. the measured latency) held."""
    reference = im.forward_int(x_int)
    if simulated.shape != reference.shape:
        raise QapflowError(f"the simulation gave outputs of shape {list(simulated.shape)}, expected "
                           f"{list(reference.shape)}")
    outputs = im.outputs(simulated)
    _save_npy(prj / "outputs_int.npy", simulated)
    _save_npy(prj / "outputs.npy", outputs)
    start = time.perf_counter()
    source = ModelWrapper(str(prj / SOURCE_COPY))
    qonnx, _, graph_out = (im.compare_with_qonnx(source, inputs.x) if isinstance(im, GraphModel)
                           else compare_with_qonnx(im, source, inputs.x))
    qonnx["seconds"] = time.perf_counter() - start
    firmware_vs_graph = (outputs.reshape(graph_out.shape) == graph_out).reshape(len(x_int), -1).all(axis=1)
    report = {
        "samples": int(len(x_int)),
        "inputs": inputs.source,
        "input_values_rounded_to_grid": rounded,
        "input_type_assumed": (summary.get("software") or {}).get("input_type_assumed"),
        **mismatch_report("int_model", simulated, reference),
        "qonnx": {**qonnx, "firmware_outputs_equal_graph_outputs": int(np.count_nonzero(firmware_vs_graph))},
        "software": summary.get("software", {}),
        **tool,
    }
    torch_fields, torch_exact = pytorch_comparison(summary, inputs.x, simulated, im)
    report.update(torch_fields)
    if inputs.labels is not None:
        report["accuracy"] = {"firmware": accuracy(outputs.reshape(len(x_int), -1), inputs.labels),
                              "qonnx_graph": accuracy(graph_out.reshape(len(x_int), -1), inputs.labels)}
        if torch_exact is not None:
            report["accuracy"]["pytorch"] = accuracy(torch_exact, inputs.labels)
    report["passed"] = (tool_passed and report["mismatches_vs_int_model"] == 0 and qonnx["quantizer_mismatches"] == 0
                        and qonnx["output_mismatching_samples"] == 0
                        and int(np.count_nonzero(firmware_vs_graph)) == len(x_int)
                        and not report.get("mismatches_vs_pytorch"))
    write_json(prj / "csim_report.json", report)
    return report
