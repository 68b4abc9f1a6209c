"""What each `qapflow` command does: argparse namespaces in, the stages' functions called, their
results printed. The parser is in qapflow.cli."""

from __future__ import annotations

import json

from qapflow.common.errors import QapflowError
from qapflow.data.generate.processes import RECIPES


def data_download(args) -> None:
    from qapflow.data.download import download_to_h5

    out = download_to_h5(args.source, args.out, args.cache_dir, args.api, args.format,
                         progress=not args.quiet)
    print(f"wrote {out}")


def data_generate(args) -> None:
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


def data_info(args) -> None:
    from qapflow.data.info import format_summary, summarize
    from qapflow.data.sources import load_jets

    summary = summarize(load_jets(args.file))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary, args.file))


def train(args) -> None:
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


def report(args) -> None:
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


def export(args) -> None:
    from qapflow.export.qonnx_export import export_checkpoint

    manifest_path = export_checkpoint(args.source, args.out, fold=args.fold)
    manifest = json.loads(manifest_path.read_text())
    qonnx = manifest["qonnx_inference_cost"]
    print(f"wrote {args.out} (layers {manifest['layer_widths']}) and {manifest_path}")
    print(f"BOPs: paper formula {manifest['bops']:,.0f} (float-input convention "
          f"{manifest['bops_float_input']:,.0f}); qonnx inference_cost {qonnx['bops']:,.0f} "
          f"({qonnx['macs']:,.0f} MACs; no accumulation term)")
    if args.fold and (manifest.get("spec") or {}).get("arch", "mlp") != "mlp":
        print("cost model: calibrated on dense chains; `qapflow compile --backend rtl` gives da4ml's "
              "estimate for this convolutional model")
    elif args.fold:
        from qapflow.synth.cost_model import estimate_model_file

        est = estimate_model_file(args.out)
        err = est["error"]["LUT"]
        print(f"cost model (RTL path, Yosys {est['error']['family']}): about {est['LUT']:,} LUTs "
              f"(median error {err['median']:.0f}%, worst {err['worst']:.0f}%), {est['FF']:,} FFs, "
              f"{est['latency_cycles']} cycles, no DSPs")


def compile(args) -> None:
    from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml

    extra = {"input_type": args.input_type, "scaler_file": args.scaler, "activations": args.activations,
             "input_shape": args.input_shape}
    if args.backend == "rtl":
        from qapflow.backends.rtl.backend import compile_rtl

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


def csim(args) -> int:
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


def synth(args) -> None:
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


def compare(args) -> None:
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


def run(args) -> None:
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
    from qapflow.flow.answer import format_answer

    for stage, entry in report["stages"].items():
        print(f"{stage:<8} {entry['status']:<7} {entry.get('seconds', 0):8.1f} s")
    print()
    print(format_answer(report["answer"]))
