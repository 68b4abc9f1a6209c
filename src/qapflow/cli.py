"""The `qapflow` command: a thin argparse layer over the Python API."""

from __future__ import annotations

import argparse
import json
import sys

from qapflow.common.errors import QapflowError


def _data_download(args) -> None:
    from qapflow.data.download import download_to_h5

    out = download_to_h5(args.source, args.out, args.cache_dir, args.api, args.format,
                         progress=not args.quiet)
    print(f"wrote {out}")


def _data_generate(args) -> None:
    from qapflow.data.generate.processes import GeneratorSettings
    from qapflow.data.generate.runner import generate_dataset

    settings = GeneratorSettings(
        pthat_min_gev=args.pthat_min, pthat_max_gev=args.pthat_max, chunk_jets=args.chunk_jets
    )
    out = generate_dataset(args.out, args.jets, args.seed, args.workers, settings,
                           progress=not args.quiet)
    print(f"wrote {out}")


def _data_info(args) -> None:
    from qapflow.data.info import format_summary, summarize
    from qapflow.data.sources import load_jets

    summary = summarize(load_jets(args.file))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary, args.file))


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
    p.add_argument("--pthat-min", type=float, default=950.0)
    p.add_argument("--pthat-max", type=float, default=1050.0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_data_generate)

    p = data_commands.add_parser("info", help="counts per class and per-feature summaries")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_data_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except QapflowError as exc:
        print(f"qapflow: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
