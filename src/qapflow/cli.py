"""The `qapflow` command: a thin argparse layer over the Python API."""

from __future__ import annotations

import argparse
import json
import sys

from qapflow.common.errors import QapflowError
from qapflow.data.generate.processes import DEFAULT_RECIPE, RECIPES


def _data_download(args) -> None:
    from qapflow.data.download import download_to_h5

    out = download_to_h5(args.source, args.out, args.cache_dir, args.api, args.format,
                         progress=not args.quiet)
    print(f"wrote {out}")


def _data_generate(args) -> None:
    import dataclasses

    from qapflow.data.generate.runner import generate_dataset

    recipe = RECIPES[args.recipe]
    settings = dataclasses.replace(
        recipe, chunk_jets=args.chunk_jets,
        pthat_min_gev=recipe.pthat_min_gev if args.pthat_min is None else args.pthat_min,
        pthat_max_gev=recipe.pthat_max_gev if args.pthat_max is None else args.pthat_max)
    out = generate_dataset(args.out, args.jets, args.seed, args.workers, settings,
                           progress=not args.quiet)
    print(f"wrote {out}")


def _data_info(args) -> None:
    from qapflow.data.info import format_summary, summarize
    from qapflow.data.sources import load_jets

    summary = summarize(load_jets(args.file))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary, args.file))


def _bits(text: str):
    values = [int(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else values


def _train(args) -> None:
    from qapflow.train.config import RunConfig
    from qapflow.train.run import run_qap

    data = RunConfig.from_yaml(args.config).to_dict() if args.config else RunConfig().to_dict()
    for key in ("data", "prune", "prune_criterion", "iterations", "target_sparsity", "folds", "randomize_labels",
                "max_jets", "fold_epochs", "split_seed"):
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    for key, flag in (("bits", "bits"), ("input_bits", "input_bits"), ("input_int", "input_int"),
                      ("act_bits", "act_bits"), ("bias_bits", "bias_bits"), ("scheme", "scheme"),
                      ("batch_norm", "bn"), ("widths", "widths")):
        if getattr(args, flag) is not None:
            data["model"][key] = getattr(args, flag)
    if args.fold_bn is not None:
        data["fold_bn"] = args.fold_bn
    if args.input_bits == 0:
        data["model"]["input_bits"] = None
    for key in ("max_epochs", "patience", "batch_size", "lr", "l1", "l1_weighting", "seed"):
        if getattr(args, key) is not None:
            data["train"][key] = getattr(args, key)
    cfg = RunConfig.from_dict(data, args.config or "flags")
    if not cfg.data:
        raise QapflowError("no data: give --data FILE or `data:` in the config")
    summary = run_qap(cfg, args.out, resume=args.resume, progress=not args.quiet)
    from qapflow.train.report_table import format_rows

    print(format_rows(summary["iterations"]))
    print(f"wrote {args.out}/summary.json")


def _report(args) -> None:
    from pathlib import Path

    from qapflow.report.plots import report_runs

    if len(args.runs) == 1 and (Path(args.runs[0]) / "study.json").exists():  # a study's workdir
        from qapflow.report.study import write_study_report

        for path in write_study_report(args.runs[0]):
            print(f"wrote {path}")
        return
    if args.out is None:
        raise QapflowError("--out FOLDER is needed for run folders")
    for path in report_runs(args.runs, args.out, labels=args.label):
        print(f"wrote {path}")


def _export(args) -> None:
    from qapflow.export.qonnx_export import export_checkpoint

    manifest_path = export_checkpoint(args.source, args.out, fold=args.fold)
    manifest = json.loads(manifest_path.read_text())
    qonnx = manifest["qonnx_inference_cost"]
    print(f"wrote {args.out} (layers {manifest['layer_widths']}) and {manifest_path}")
    print(f"BOPs: paper formula {manifest['bops']:,.0f} (float-input convention "
          f"{manifest['bops_float_input']:,.0f}); qonnx inference_cost {qonnx['bops']:,.0f} "
          f"({qonnx['macs']:,.0f} MACs; no accumulation term)")
    if args.fold:
        from qapflow.synth.cost_model import estimate_model_file

        est = estimate_model_file(args.out)
        err = est["error"]["LUT"]
        print(f"cost model (RTL path, Yosys {est['error']['family']}): about {est['LUT']:,} LUTs "
              f"(median error {err['median']:.0f}%, worst {err['worst']:.0f}%), {est['FF']:,} FFs, "
              f"{est['latency_cycles']} cycles, no DSPs")


def _compile(args) -> None:
    from qapflow.backends.hls4ml_backend import CompileOptions, compile_hls4ml

    extra = {"input_type": args.input_type, "scaler_file": args.scaler, "activations": args.activations,
             "input_shape": args.input_shape}
    if args.backend == "rtl":
        from qapflow.backends.rtl_backend import compile_rtl

        summary = compile_rtl(args.model, args.out, args.pipeline_stages, args.clock_ns, part=args.part, **extra)
        print(f"bit-exact Verilog (da4ml): {summary['nonzero_weights']} non-zero weights as adder graphs, "
              f"{summary['threshold_comparators']} threshold comparators, {summary['pipeline_stages']} "
              f"pipeline stages, estimated {summary['estimated_cost_luts']:.0f} LUTs")
    elif args.backend == "finn":
        from qapflow.backends.finn.build import FinnOptions, compile_finn

        opts = FinnOptions(target_fps=args.target_fps, folding_file=args.folding, mem_mode=args.mem_mode,
                           clock_ns=args.clock_ns, part=args.part, input_type=args.input_type,
                           scaler_file=args.scaler, input_shape=args.input_shape)
        summary = compile_finn(args.model, args.out, opts)
        differing = sum(e.get("thresholds_differing", 0) for e in summary["finn_parameters_vs_int_model"])
        print(f"FINN dataflow project: {len(summary['rtl']['layers'])} RTL layers "
              f"({', '.join(sorted({l['op_type'] for l in summary['rtl']['layers']}))}); weights and thresholds "
              f"from the integer model ({differing} of FINN's own thresholds differ from them)")
    else:
        opts = CompileOptions(part=args.part, clock_ns=args.clock_ns, io=args.io, strategy=args.strategy,
                              reuse=args.reuse, vendor=args.vendor)
        summary = compile_hls4ml(args.model, args.out, opts, **extra)
        print(f"bit-exact project: {summary['nonzero_weights']} non-zero weights, "
              f"{summary['multiplications_in_code']} multiplications in the generated code, "
              f"{summary['threshold_comparators']} threshold comparators")
    _print_software(summary)
    print(f"wrote {args.out}")


def _print_software(summary: dict) -> None:
    """Say what runs outside the firmware, and under which assumption."""
    software = summary.get("software") or {}
    check = summary.get("int_model_vs_qonnx") or {}
    print(f"layers: {', '.join(summary['activations'])}; integer model == qonnx execution on "
          f"{check.get('samples', 0)} probe inputs")
    if software.get("software_before_firmware"):
        print(f"in software before the firmware: {', '.join(software['software_before_firmware'])}")
    if software.get("input_type_assumed"):
        print(f"the model's input is not quantized: the firmware takes {software['input_type_assumed']} "
              "(--input-type); exact for inputs on that grid")
    print(f"in software after the firmware: {', '.join(software.get('software_after_firmware', []))}")


def _csim(args) -> int:
    from qapflow.backends.project import read_project
    from qapflow.sim.csim import run_csim

    source = {"data_file": args.data, "inputs_file": args.inputs}
    backend = read_project(args.project).get("backend")
    if backend == "finn":
        from qapflow.sim.finn_sim import run_finn_csim

        report = run_finn_csim(args.project, n=args.n, split=args.split, python_samples=args.python_samples,
                               **source)
        python = report["finn_python_mode"]
        own = report["finn_own_parameters"]
        print(f"FINN python mode: {python['mismatches_vs_int_model']} mismatches in {python['samples']} samples; "
              f"RTL (Verilator): {report['cycles_per_inference_measured']} cycles per inference, first output "
              f"after {report['first_output_latency_cycles']} cycles")
        if own.get("samples"):
            print(f"(FINN's own thresholds, before qapflow's: {own['samples_differing_from_int_model']} of "
                  f"{own['samples']} samples differ from the model, {own['argmax_differing']} in their argmax)")
    elif backend == "rtl":
        from qapflow.sim.verilator import run_verilator

        report = run_verilator(args.project, n=args.n, split=args.split, **source)
        print(f"latency {report['latency_cycles_measured']} cycles measured in simulation "
              f"(out_valid after {report['latency_cycles_out_valid']}), II 1")
    else:
        report = run_csim(args.project, n=args.n, vendor=args.vendor_csim, split=args.split, **source)
    if "samples" in report:
        qonnx = report["qonnx"]
        print(f"{report['samples']} samples ({report['inputs']['split']}): {report['mismatches_vs_int_model']} "
              f"mismatches vs the integer model, {qonnx['quantizer_mismatches'] + qonnx['output_mismatching_samples']}"
              f" vs qonnx, {report['mismatches_vs_pytorch']} vs PyTorch; "
              f"{report['input_values_rounded_to_grid']} input values rounded to the input grid")
    print(f"wrote {args.project}/csim_report.json, outputs_int.npy, outputs.npy")
    return 0 if report["passed"] else 1


def _synth(args) -> None:
    from qapflow.backends.project import read_project

    backend = read_project(args.project).get("backend")
    if backend == "finn":
        if args.tool == "yosys":
            from qapflow.synth.finn_resources import finn_resources

            resources = finn_resources(args.project, args.family)
        else:
            from qapflow.backends.finn.vendor import run_vendor_steps

            resources = run_vendor_steps(args.project)
            if not resources["ran"]:
                print(resources["reason"])
                return
        print(json.dumps({k: v for k, v in resources.items() if k not in ("yosys", "finn_estimates")}, indent=2))
        return
    if backend == "rtl" and args.tool != "yosys":
        raise QapflowError(f"{args.project} is an RTL project: synthesize it with --tool yosys "
                           f"({args.tool} takes hls4ml projects)")
    if args.tool == "yosys":
        from qapflow.synth.yosys import run_yosys

        resources = run_yosys(args.project, args.family)
    else:
        from qapflow.synth.vendor import run_vendor_synth

        resources = run_vendor_synth(args.project, args.tool, args.vivado_synth)
    print(json.dumps(resources, indent=2))


def _compare(args) -> None:
    from qapflow.compare.compare import COLUMNS, compare_run

    summary = compare_run(args.run, args.out, args.backend, args.iterations, args.data, args.n, args.family,
                          progress=not args.quiet)
    print("  ".join(COLUMNS))
    for row in summary["rows"]:
        print("  ".join("-" if row[c] is None else (f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]))
                        for c in COLUMNS))
    print(f"Pearson r(BOPs, LUTs) = {summary['pearson_bops_luts']}, "
          f"r(qonnx BOPs, LUTs) = {summary['pearson_qonnx_bops_luts']}, "
          f"r(cost-model LUTs, LUTs) = {summary['pearson_cost_model_luts']}"
          + (f" ({summary['pearson_caveat']})" if summary.get("pearson_caveat") else ""))
    print(f"wrote {args.out}/compare.csv, compare.json")


def _is_study(path: str) -> bool:
    import yaml

    try:
        return isinstance(data := yaml.safe_load(open(path)), dict) and "study" in data
    except (OSError, yaml.YAMLError):
        return False  # the flow loader names the problem


def _run(args) -> None:
    from qapflow.flow.runner import run_flow

    if _is_study(args.flow):
        from qapflow.study.runner import run_study

        record = run_study(args.flow, smoke=args.smoke, executor=args.executor, ray_address=args.ray_address,
                           progress=not args.quiet)
        print(f"{len(record['trials'])} trials finished, {len(record['failures'])} failed")
        print(f"wrote {record['workdir']}/study.json, summary.csv, summary.md")
        return
    if args.executor or args.ray_address:
        raise QapflowError(f"{args.flow}: --executor and --ray-address are for studies (a file with 'study:')")
    report = run_flow(args.flow, smoke=args.smoke, progress=not args.quiet, verbose=args.verbose)
    for stage, entry in report["stages"].items():
        print(f"{stage:<8} {entry['status']:<7} {entry.get('seconds', 0):8.1f} s")
    print(f"wrote {report['workdir']}/flow_report.json")


def _checked(check, what: str):
    """An argparse type from a check that raises ValueError: one clear message per bad value."""
    def parse(text: str):
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{what}: {exc}") from None
    return parse


def _int_in(lo: int, hi: int | None = None):
    def check(text: str) -> int:
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            raise ValueError(f"{value} is outside {lo}..{hi if hi is not None else 'any'}")
        return value
    return check


def _part(text: str) -> str:
    from qapflow.common.values import check_part

    return check_part(text)


def _clock(text: str) -> float:
    from qapflow.common.values import check_clock

    return check_clock(float(text))


def _shape(text: str) -> list[int]:
    """`1,16`: a tensor shape, batch first, every size at least 1."""
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{text!r} is not a shape; give sizes separated by commas, e.g. 1,16") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"{text!r}: every size must be at least 1, e.g. 1,16")
    return sizes


def _iterations(text: str) -> list[int]:
    return [_int_in(0)(v) for v in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qapflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="get, make and inspect the jet data set")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    p = data_commands.add_parser("download", help="download the public data set and convert it")
    p.add_argument("--source", choices=["openml", "zenodo"], required=True)
    p.add_argument("--out", required=True, help="folder for the converted jets_<source>.h5")
    p.add_argument("--cache-dir", default=None, help="download cache (default ~/.cache/qapflow)")
    p.add_argument("--api", default=None, help="API base URL of a mirror")
    p.add_argument("--format", choices=["arff", "parquet"], default="arff", help="OpenML file format")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_data_download)

    p = data_commands.add_parser("generate", help="generate jets with Pythia 8 and FastJet")
    p.add_argument("--jets", type=int, required=True, help="number of jets (balanced classes)")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--chunk-jets", type=int, default=500, help="jets per resumable chunk")
    p.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                   help="hls4ml-lhc-jets: the original production recipe (R = 0.4, the leading jet, a simple "
                        "detector, longitudinal W/Z); hls4ml-lhc-jets-isotropic: the same with W/Z decayed "
                        "isotropically; particle-level: visible particles, R = 0.8, matched jets")
    p.add_argument("--pthat-min", type=float, default=None, help="default: the recipe's")
    p.add_argument("--pthat-max", type=float, default=None, help="default: the recipe's")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_data_generate)

    p = data_commands.add_parser("info", help="counts per class and per-feature summaries")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_data_info)

    p = commands.add_parser("train", help="QAT training with iterative pruning (FT or LT)")
    p.add_argument("--config", help="YAML run configuration; flags override it")
    p.add_argument("--out", required=True, help="run folder (iter_NNN/ per pruning iteration)")
    p.add_argument("--data", help="jet data file")
    p.add_argument("--bits", type=_bits, help="bit width of weights and activations (32: float); "
                   "one per layer with commas, e.g. 8,6,6,6")
    p.add_argument("--widths", type=int, nargs="+", help="hidden layer widths (default 64 32 32)")
    p.add_argument("--input-bits", type=int, help="input quantizer bits (0: float input)")
    p.add_argument("--input-int", type=int, help="integer bits of the input, sign included: the input is "
                   "ap_fixed<INPUT_BITS, INPUT_INT> (default: range +-32, INPUT_INT 6)")
    p.add_argument("--act-bits", type=_bits, help="hidden activation bits, one or one per hidden layer "
                   "(comma-separated; default: the layer's --bits)")
    p.add_argument("--bias-bits", type=_bits, help="bias bits, one or one per layer (comma-separated)")
    p.add_argument("--scheme", choices=["fixed-point", "scaled-int"])
    p.add_argument("--prune", choices=["none", "ft", "lt"])
    p.add_argument("--prune-criterion", choices=["magnitude", "hardware"],
                   help="what goes first: smallest |w|, or lowest |w| per adder-graph cost (signed digits x input bits)")
    p.add_argument("--iterations", type=_checked(_int_in(0, 1000), "--iterations"),
                   help="pruning iterations after the first training")
    p.add_argument("--target-sparsity", type=float)
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--bn", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--l1", type=float, help="L1 penalty lambda on the weights")
    p.add_argument("--l1-weighting", choices=["uniform", "hardware"], help="hardware: each |w| weighted by its cost")
    p.add_argument("--seed", type=int)
    p.add_argument("--split-seed", type=int)
    p.add_argument("--folds", type=int, help="k-fold cross-validation over train+validation")
    p.add_argument("--randomize-labels", type=float, help="fraction of training labels redrawn")
    p.add_argument("--max-jets", type=int, help="use only the first N jets of the file")
    p.add_argument("--fold-epochs", type=int, help="fine-tuning epochs after folding BN")
    p.add_argument("--fold-bn", action=argparse.BooleanOptionalAction, default=None,
                   help="fold BN and fine-tune for deployment (fixed-point models)")
    p.add_argument("--resume", action="store_true", help="continue after the last finished iteration")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)

    p = commands.add_parser("export", help="export a checkpoint to QONNX (with a manifest)")
    p.add_argument("source", help="iteration folder (RUN_DIR/iter_NNN) or checkpoint file")
    p.add_argument("--out", required=True, help="MODEL.onnx")
    p.add_argument("--fold", action=argparse.BooleanOptionalAction, default=True,
                   help="fold pruned zeros: remove dead neurons (default on)")
    p.set_defaults(func=_export)

    p = commands.add_parser("compile", help="QONNX model -> firmware project")
    p.add_argument("model", help="any QONNX MLP (qapflow export, Brevitas, QKeras via qonnx, FINN)")
    p.add_argument("--backend", default="hls4ml", choices=["hls4ml", "rtl", "finn"])
    p.add_argument("--input-type", help="for models whose input is not quantized: the firmware's input "
                                        "type, fixed<W,I> (default fixed<16,6>)")
    p.add_argument("--scaler", help="Standardizer JSON for jet inputs (a qapflow manifest brings its own)")
    p.add_argument("--input-shape", type=_checked(_shape, "--input-shape"),
                   help="the graph input's shape, batch first (e.g. 1,16), where the file leaves it symbolic "
                        "or out")
    p.add_argument("--activations", choices=["auto", "thresholds"], default="auto",
                   help="auto: shift-and-clip where exact, thresholds elsewhere; thresholds: everywhere")
    p.add_argument("--out", required=True, help="project folder")
    p.add_argument("--part", default="xcu250-figd2104-2L-e", type=_checked(_part, "--part"))
    p.add_argument("--clock-ns", type=_checked(_clock, "--clock-ns"), default=5.0)
    p.add_argument("--io", choices=["parallel", "stream"], default="parallel")
    p.add_argument("--strategy", choices=["latency", "resource"], default="latency")
    p.add_argument("--reuse", type=_checked(_int_in(1, 4096), "--reuse"), default=1)
    p.add_argument("--vendor", choices=["vivado", "vitis"], default="vitis")
    p.add_argument("--pipeline-stages", type=_checked(_int_in(0, 64), "--pipeline-stages"), default=0,
                   help="rtl: number of pipeline stages (0: da4ml's default adder depth per stage)")
    p.add_argument("--target-fps", type=_checked(_int_in(1), "--target-fps"),
                   help="finn: inferences per second to fold for (FINN's SetFolding); default fully folded")
    p.add_argument("--folding", help="finn: a FINN folding configuration JSON (PE, SIMD, ... per layer)")
    p.add_argument("--mem-mode", choices=["internal_decoupled"], default="internal_decoupled",
                   help="finn: MVAU weight storage (the RTL MVU streams its weights from a memstream)")
    p.set_defaults(func=_compile)

    p = commands.add_parser("csim", help="C simulation, compared bit for bit with PyTorch")
    p.add_argument("project")
    p.add_argument("--data", help="jet data file (the model's test split when it is its training file)")
    p.add_argument("--inputs", help=".npy, .npz or .h5 of float32 inputs in the model's input shape, "
                                    "already preprocessed")
    p.add_argument("--n", type=_checked(_int_in(1), "--n"), default=10_000, help="number of samples")
    p.add_argument("--split", choices=["test", "all"], default="test",
                   help="test: the training run's test split when --data is its data file")
    p.add_argument("--vendor-csim", action="store_true", help="run vitis_hls/vivado_hls csim instead")
    p.add_argument("--python-samples", type=_checked(_int_in(0), "--python-samples"), default=2000,
                   help="finn: samples also run in FINN's python mode (one at a time; about 6 ms each)")
    p.set_defaults(func=_csim)

    p = commands.add_parser("synth", help="synthesis and resources.json")
    p.add_argument("project")
    p.add_argument("--tool", choices=["vivado", "vitis", "yosys"], default="vitis")
    p.add_argument("--family", choices=["xc7", "xcup", "xcu"], default="xc7", help="Yosys Xilinx family")
    p.add_argument("--vivado-synth", action="store_true", help="also run Vivado logic synthesis")
    p.set_defaults(func=_synth)

    p = commands.add_parser("run", help="run a YAML flow (data to report) or a study (many trainings)")
    p.add_argument("flow", help="FLOW.yaml, e.g. flows/jet_tagging.yaml, or a study, e.g. flows/paper.yaml")
    p.add_argument("--executor", choices=["pool", "ray"], help="a study's executor (default: the file's)")
    p.add_argument("--ray-address", help="run a study's trials on the Ray cluster at ADDR (e.g. 127.0.0.1:6379)")
    p.add_argument("--smoke", action="store_true", help="the flow's small sizes, for a quick look")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true",
                   help="show third-party output on the console (else it goes to WORKDIR/logs/STAGE.log)")
    p.set_defaults(func=_run)

    p = commands.add_parser("compare", help="BOPs vs synthesized resources over a pruning run")
    p.add_argument("run", help="RUN_DIR of `qapflow train`")
    p.add_argument("--backend", choices=["rtl", "hls4ml", "finn"], default="rtl")
    p.add_argument("--out", required=True)
    p.add_argument("--iterations", type=_checked(_iterations, "--iterations"),
                   help="comma-separated iterations (default: all)")
    p.add_argument("--data", help="data file for the simulations (default: the run's)")
    p.add_argument("--n", type=_checked(_int_in(1), "--n"), default=10_000)
    p.add_argument("--family", choices=["xc7", "xcup", "xcu"], default="xc7")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_compare)

    p = commands.add_parser("report", help="plots and tables of one or more runs")
    p.add_argument("runs", nargs="+", help="run folders, or one study's workdir (Figures 2-7, Table 1)")
    p.add_argument("--out", help="folder for PNG, PDF and CSV files (a study's: WORKDIR/report)")
    p.add_argument("--label", action="append", help="legend label per run (in order)")
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except QapflowError as exc:
        print(f"qapflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
