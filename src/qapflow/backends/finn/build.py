"""`qapflow compile --backend finn`: FINN's builder steps over one model, with qapflow's own.

The steps are named functions over the model, as in FINN's builder: qapflow's (integer input,
integer partition, the integer model's parameters, RTL collection) around FINN's (QONNX to
FINN, tidy-up, streamlining, HW layers, specialization, folding, bit-width minimisation,
estimates, FIFOs and width converters, HDL generation). Each step's model is kept in
finn/intermediate_models/, its time in finn/build_steps.json.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from qapflow.backends.finn.hdl import collect_rtl
from qapflow.backends.finn.runtime import FINN_VERSION, finn_session, vendor_note
from qapflow.backends.finn.transforms.int_model_parameters import IntModelParameters, compare_parameters
from qapflow.backends.finn.transforms.integer_input import IntegerInput
from qapflow.backends.finn.transforms.integer_partition import IntegerPartition
from qapflow.backends.finn.transforms.multithreshold_counts import MultiThresholdCounts
from qapflow.backends.finn.transforms.relu_into_multithreshold import AbsorbReluIntoMultiThreshold
from qapflow.backends.frontend import prepare
from qapflow.backends.graph_frontend import prepare_graph
from qapflow.backends.project import PROJECT_MANIFEST, build_into
from qapflow.common.atomic import write_json
from qapflow.common.console import say
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.common.values import check_clock, check_part
from qapflow.intmodel.chain import UnsupportedGraph

FINN_DIR = "finn"
MEM_MODES = ("internal_decoupled",)
# what needs Vivado, continuing from finn/intermediate_models/hardware.onnx: the HDL is generated
# again in FINN's own build folder (the project's rtl/ is qapflow's copy for Verilator and Yosys)
VENDOR_STEPS = ["step_hw_codegen", "step_hw_ipgen", "step_create_stitched_ip", "step_measure_rtlsim_performance",
                "step_out_of_context_synthesis"]
VENDOR_OUTPUTS = ["stitched_ip", "rtlsim_performance", "out_of_context_synth"]


# FINN's builder steps (finn.builder.build_dataflow_steps) and qapflow's, in order
STEPS = ["step_qapflow_integer_input", "step_qapflow_multithreshold_counts", "step_qonnx_to_finn", "step_tidy_up", "step_streamline",
         "step_convert_to_hw", "step_qapflow_integer_partition", "step_qapflow_int_model_parameters",
         "step_specialize_layers", "step_qapflow_check_rtl", "step_target_fps_parallelization",
         "step_apply_folding_config", "step_minimize_bit_width", "step_generate_estimate_reports",
         "step_set_fifo_depths"]


@dataclass
class FinnOptions:
    target_fps: int | None = None
    folding_file: Path | None = None
    mem_mode: str = "internal_decoupled"
    clock_ns: float = 5.0
    part: str = "xc7z020clg400-1"
    input_type: str | None = None
    scaler_file: Path | None = None
    probe: int = 2000
    input_shape: list[int] | None = None  # --input-shape: the graph input's shape, batch first


def _finn_config(opts: FinnOptions, out_dir: Path):
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    return DataflowBuildConfig(
        output_dir=str(out_dir), synth_clk_period_ns=opts.clock_ns, fpga_part=opts.part,
        generate_outputs=["estimate_reports"], standalone_thresholds=True, target_fps=opts.target_fps,
        folding_config_file=str(opts.folding_file) if opts.folding_file else None,
        auto_fifo_strategy="force_minimal_fifos", verify_steps=[],
        # IntModelParameters already sets every type from the integer model's reachable ranges;
        # FINN's value-based minimization can narrow an accumulator below the full product
        # width its own RTL MVU requires (mvu.sv stops), so it is left out
        minimize_bit_width=False)


def _specialized(model: ModelWrapper, model_path) -> ModelWrapper:
    from qapflow.backends.finn.hdl import OWN_LAYERS  # built by qapflow's own RTL

    hls = [f"{n.name} ({n.op_type})" for n in model.graph.node if n.op_type.endswith("_hls")
           and n.op_type not in OWN_LAYERS]
    if hls:
        raise QapflowError(f"{model_path}: FINN chose HLS for {', '.join(hls)}; its C++ needs finn-hlslib and "
                           "Vitis, which qapflow cannot simulate here. FINN's RTL MVU takes layer inputs of 4 to 8 bits "
                           "(wider on UltraScale parts' DSPs) and accumulators within the DSP's width: use "
                           "activations of 4-8 bits, or the hls4ml or rtl backend")
    return model


def _set_mem_mode(model: ModelWrapper, mem_mode: str) -> ModelWrapper:
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        if node.op_type.startswith("MVAU"):
            getCustomOp(node).set_nodeattr("mem_mode", mem_mode)
    return model


def compile_finn(model_path, out, opts: FinnOptions) -> dict:
    model_path, out = Path(model_path), Path(out)
    check_part(opts.part)
    check_clock(opts.clock_ns)
    if opts.mem_mode not in MEM_MODES:
        raise QapflowError(f"--mem-mode {opts.mem_mode!r}: use one of {MEM_MODES}")
    if opts.target_fps is not None and opts.folding_file is not None:
        raise QapflowError("give --target-fps or --folding, not both")
    if opts.folding_file is not None and not Path(opts.folding_file).is_file():
        raise QapflowError(f"--folding {opts.folding_file}: no such file")
    # FINN keeps every pruned zero (its sparsity request, FINN #792, is open): dead neurons go first
    try:
        front = prepare(model_path, opts.input_type, opts.scaler_file, opts.probe, activations="thresholds",
                        fold_dead=True, input_shape=opts.input_shape)
    except DataFormatError as chain_exc:  # a convolution, a pooling, a branch: the integer graph's path
        if not isinstance(chain_exc.__cause__, UnsupportedGraph):
            raise
        if opts.input_type is not None or opts.scaler_file is not None:
            raise DataFormatError(model_path, f"{chain_exc.problem} (--input-type and --scaler apply to dense "
                                              "chains; integer graphs take neither yet)") from chain_exc
        from qapflow.backends.finn.graph_build import compile_finn_graph

        front = prepare_graph(model_path, min(opts.probe, 1000) if opts.probe else 0, opts.input_shape)
        return compile_finn_graph(front, model_path, out, opts)
    im = front.im
    with build_into(out) as build:
        comparison: list[dict] = []

        def int_model_parameters(m, c):
            comparison.extend(compare_parameters(m, im))  # FINN's own numbers, before ours
            return m.transform(IntModelParameters(im))

        ours = {
            "step_qapflow_integer_input": lambda m, c: m.transform(IntegerInput(im.input)),
            "step_qapflow_multithreshold_counts": lambda m, c: m.transform(AbsorbReluIntoMultiThreshold()).transform(
                MultiThresholdCounts()),
            "step_qapflow_integer_partition": lambda m, c: m.transform(IntegerPartition()),
            "step_qapflow_int_model_parameters": int_model_parameters,
            "step_qapflow_check_rtl": lambda m, c: _specialized(_set_mem_mode(m, opts.mem_mode), model_path),
        }
        model, rtl = _run_steps(build, front, STEPS, ours, comparison, opts, model_path, "model")
        summary = _summary(front, comparison, rtl, opts)
        write_json(build / PROJECT_MANIFEST, summary)
    say(vendor_note())
    return summary


def _run_steps(build: Path, front, steps: list[str], ours: dict, comparison: list[dict], opts: FinnOptions,
               model_path, what: str) -> tuple[ModelWrapper, list]:
    """FINN's builder steps and qapflow's (`ours`, by name) over the front end's model, for dense
    chains and integer graphs alike: each step's model kept, its time and the vendor config
    written; FINN's own failures named as not building this `what`. The final model and its RTL."""
    finn_dir = build / FINN_DIR
    models = finn_dir / "intermediate_models"
    models.mkdir(parents=True)
    with finn_session(build / "finn_codegen") as S:
        cfg = _finn_config(opts, finn_dir)
        model, seconds = ModelWrapper(front.model.model), {}
        for i, name in enumerate(steps):
            start = time.perf_counter()
            try:
                model = (ours.get(name) or getattr(S, name))(model, cfg)
            except QapflowError:
                raise
            except Exception as exc:  # FINN's own refusals are plain assertions and FINNUserErrors
                raise QapflowError(f"{model_path}: FINN's {name} cannot build this {what}: "
                                   f"{type(exc).__name__}: {exc}") from exc
            seconds[name] = round(time.perf_counter() - start, 3)
            model.save(str(models / f"{i:02d}_{name}.onnx"))
        model.save(str(models / "hardware.onnx"))
        rtl = collect_rtl(model, build)
    shutil.rmtree(build / "finn_codegen")  # copied into rtl/; its absolute paths die with the move
    front.write(build)
    write_json(finn_dir / "build_steps.json", {"steps": seconds, "vendor": vendor_note()})
    write_json(finn_dir / "parameters_vs_int_model.json", comparison)
    write_json(finn_dir / "build_config.json", _vendor_config(opts))
    return model, rtl


def _summary(front, comparison: list[dict], rtl, opts: FinnOptions, **extra) -> dict:
    """The project manifest of a FINN compile; `extra` (an integer graph's layers and ports) goes
    after the parameter comparison, where the manifest has always had it."""
    return {
        "stage": "compile",
        "backend": "finn",
        "finn_version": FINN_VERSION,
        **front.summary_fields(),
        "finn_parameters_vs_int_model": comparison,
        **extra,
        "rtl": rtl,
        "vendor_steps": vendor_note(),
        "options": {"target_fps": opts.target_fps, "folding": str(opts.folding_file) if opts.folding_file else None,
                    "mem_mode": opts.mem_mode, "clock_ns": opts.clock_ns, "part": opts.part},
    }


def _vendor_config(opts: FinnOptions) -> dict:
    """A FINN DataflowBuildConfig continuing from finn/intermediate_models/hardware.onnx with the
    steps that need Vivado: `finn build finn/build_config.json finn/intermediate_models/hardware.onnx`
    or `qapflow synth PRJ --tool vivado` runs it unchanged."""
    return {"output_dir": "vendor_build", "synth_clk_period_ns": opts.clock_ns, "fpga_part": opts.part,
            "steps": VENDOR_STEPS, "generate_outputs": VENDOR_OUTPUTS, "standalone_thresholds": True,
            "auto_fifo_depths": False, "save_intermediate_models": True}
