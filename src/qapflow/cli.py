"""The `qapflow` command: a thin argparse layer over the Python API."""
# the parser and its value checks; what each command does is in qapflow.cli_commands

from __future__ import annotations

import argparse
import sys

from qapflow.cli_commands import (compare, compile, csim, data_download, data_generate, data_info, export,
                                  report, run, synth, train)
from qapflow.common.errors import QapflowError
from qapflow.data.generate.processes import DEFAULT_RECIPE, RECIPES


def _bits(text: str):
    values = [int(v) for v in text.split(",")]
    return values[0] if len(values) == 1 else values


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
    p.set_defaults(func=data_download)

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
    p.set_defaults(func=data_generate)

    p = data_commands.add_parser("info", help="counts per class and per-feature summaries")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=data_info)

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
    p.set_defaults(func=train)

    p = commands.add_parser("export", help="export a checkpoint to QONNX (with a manifest)")
    p.add_argument("source", help="iteration folder (RUN_DIR/iter_NNN) or checkpoint file")
    p.add_argument("--out", required=True, help="MODEL.onnx")
    p.add_argument("--fold", action=argparse.BooleanOptionalAction, default=True,
                   help="fold pruned zeros: remove dead neurons (default on)")
    p.set_defaults(func=export)

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
    p.set_defaults(func=compile)

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
    p.set_defaults(func=csim)

    p = commands.add_parser("synth", help="synthesis and resources.json")
    p.add_argument("project")
    p.add_argument("--tool", choices=["vivado", "vitis", "yosys"], default="vitis")
    p.add_argument("--family", choices=["xc7", "xcup", "xcu"], default="xc7", help="Yosys Xilinx family")
    p.add_argument("--vivado-synth", action="store_true", help="also run Vivado logic synthesis")
    p.set_defaults(func=synth)

    p = commands.add_parser("run", help="run a YAML flow (data to report) or a study (many trainings)")
    p.add_argument("flow", help="FLOW.yaml, e.g. flows/jet_tagging.yaml, or a study, e.g. flows/paper.yaml")
    p.add_argument("--executor", choices=["pool", "ray"], help="a study's executor (default: the file's)")
    p.add_argument("--ray-address", help="run a study's trials on the Ray cluster at ADDR (e.g. 127.0.0.1:6379)")
    p.add_argument("--smoke", action="store_true", help="the flow's small sizes, for a quick look")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true",
                   help="show third-party output on the console (else it goes to WORKDIR/logs/STAGE.log)")
    p.set_defaults(func=run)

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
    p.set_defaults(func=compare)

    p = commands.add_parser("report", help="plots and tables of one or more runs")
    p.add_argument("runs", nargs="+", help="run folders, or one study's workdir (Figures 2-7, Table 1)")
    p.add_argument("--out", help="folder for PNG, PDF and CSV files (a study's: WORKDIR/report)")
    p.add_argument("--label", action="append", help="legend label per run (in order)")
    p.set_defaults(func=report)
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
