"""Mutation benchmark: broken QONNX files through every backend's compile, each classified.

    python benchmarks/bench_bad_models.py --cases 500 [--finn-sample K | --no-finn] [--out benchmarks/results/bad_models.json]

Four valid seed models of different shapes and origins (qapflow/testing/bad_models.py: a
Brevitas export of a float-scale MLP with batch norm, an onnx-helper MatMul+Add MLP with float
per-channel scales and a Softmax, a power-of-two Gemm MLP, a bipolar MLP) are mutated
(testing/model_mutations.py: scales, zero points, bit widths, attributes, values, shapes,
types, connectivity, opsets, truncated and foreign bytes). Every file is compiled for hls4ml
and RTL, and goes through FINN's frontend (prepare with FINN's arguments); FINN's whole compile runs on
every accepted file (or a sample, --finn-sample: it takes seconds for these small models, tens
of seconds for larger ones) and on ten refused ones (to show the same refusal). Verdicts: clean error (a QapflowError naming the file), correct acceptance
(a valid file compiled, its integer model equal to qonnx's execution of it), traceback,
silent acceptance (an invalid file compiled), unnamed error, integer-model mismatch (qapflow's
own compile-time check failing on a valid file), backends disagreeing. Exits 1 on any
traceback or silent acceptance. The JSON holds every case with each backend's outcome.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from qapflow.common.atomic import write_json
from qapflow.testing.bad_models import mutated_files, write_seed_models
from qapflow.testing.model_mutations import MUTATIONS
from qapflow.testing.mutation_check import check_case, compile_on, verdict

BAD = ("traceback", "silent_acceptance")
FRONTEND_NOTE = ("compile_hls4ml, compile_rtl and compile_finn each check only their own options before "
                 "backends.frontend.prepare, whose first step is export.ingest, whose first step (after "
                 "onnx.load) is export.validate.validate_model: a file refused there is refused by all three "
                 "backends with the same message. hls4ml and RTL call prepare with the same arguments; FINN "
                 "calls it with activations='thresholds' and fold_dead=True, so FINN's prepare ran on every file.")


def spread(rows: list[dict], k: int | None, accepted: bool) -> list[dict]:
    """Cases accepted (or refused) by every frontend: all of them for k None, else up to k,
    one per mutation and seed model in turn."""
    pool = [r for r in rows if all((b["outcome"] == "accepted") == accepted for b in r["backends"].values())]
    if k is None:
        return pool
    chosen, mutations, seeds = [], set(), []
    for r in sorted(pool, key=lambda r: (r["case"] % 4, r["case"])):  # the seed models in turn
        if len(chosen) < k and r["mutation"] not in mutations and seeds[-1:] != [r["seed_model"]]:
            chosen.append(r)
            mutations.add(r["mutation"])
            seeds.append(r["seed_model"])
    return chosen


def finn_sample(rows, files: dict[int, Path], work: Path, k: int | None, probe: int) -> list[dict]:
    """FINN's whole compile of the accepted files (all, or k) and of k refused ones (10 for k None)."""
    out = []
    chosen = [*[(r, True) for r in spread(rows, k, True)], *[(r, False) for r in spread(rows, k or 10, False)]]
    for row, accepted in tqdm(chosen, desc="FINN compiles", unit="file"):
        result = compile_on("finn", files[row["case"]], work / f"{row['case']:05d}_finn", probe)
        frontend = row["backends"]["finn-frontend"]
        same = (result["outcome"] == frontend["outcome"] if accepted
                else result.get("error") == frontend.get("error"))
        out.append({"case": row["case"], "mutation": row["mutation"], "seed_model": row["seed_model"],
                    "finn": result, "same_as_finn_frontend": same})
        row["backends"]["finn"] = result  # its verdict now counts FINN's whole compile too
        row["verdict"] = verdict(row["expect"], row["backends"])
    return out


def validation_seconds(seeds: dict[str, Path], repeats: int = 5) -> float:
    """Mean seconds of validate_model on a seed model (onnx.load included): the baseline of
    what validation adds to a compile."""
    import onnx

    from qapflow.export.validate import validate_model

    start = time.perf_counter()
    for _ in range(repeats):
        for path in seeds.values():
            validate_model(onnx.load(str(path)), path)
    return (time.perf_counter() - start) / (repeats * len(seeds))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--first", type=int, default=0, help="first case index (mutation index mod the catalogue)")
    ap.add_argument("--probe", type=int, default=2000, help="probe inputs of the compile-time check (compile's own)")
    ap.add_argument("--finn-sample", type=int, default=None,
                    help="FINN's whole compile on this many accepted and this many refused files (default: "
                         "every accepted file and 10 refused ones)")
    ap.add_argument("--no-finn", action="store_true", help="FINN's frontend only, no whole FINN compile")
    ap.add_argument("--out", default="benchmarks/results/bad_models.json")
    ap.add_argument("--work", help="folder for the files and projects (default: a temporary one)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bad_models_") as tmp:
        work = Path(args.work or tmp)
        seeds = write_seed_models(work / "seeds")
        seed_rows = {name: compile_on(b, p, work / f"seed_{name}_{b}", args.probe)
                     for name, p in seeds.items() for b in ("hls4ml", "rtl")}
        broken_seeds = [n for n, r in seed_rows.items() if r["outcome"] != "accepted"]
        validation_s = validation_seconds(seeds)
        if broken_seeds:
            print(f"seed models not compiled exactly: {broken_seeds}: {seed_rows}", file=sys.stderr)
            return 2
        cases = mutated_files(seeds, range(args.first, args.first + args.cases), work / "files")
        rows = []
        for case in tqdm(cases, desc="mutated files", unit="file"):
            rows.append(check_case(case, work / "projects", args.probe))
        files = {c.index: c.path for c in cases}
        finn_start = time.perf_counter()
        finn = [] if args.no_finn else finn_sample(rows, files, work / "projects", args.finn_sample, args.probe)
        finn_s = time.perf_counter() - finn_start
    seconds = time.perf_counter() - start
    counts = collections.Counter(r["verdict"] for r in rows)
    rows_by_case = {r["case"]: r for r in rows}
    by_family = collections.defaultdict(collections.Counter)
    by_expect = collections.defaultdict(collections.Counter)
    for r in rows:
        by_family[r["family"]][r["verdict"]] += 1
        by_expect[r["expect"]][r["verdict"]] += 1
    result = {
        "cases": len(rows), "seed_models": list(seeds), "mutations": len(MUTATIONS), "seconds": round(seconds, 1),
        "finn_seconds": round(finn_s, 1), "probe": args.probe, "counts": dict(counts),
        "validation_seconds_per_seed": validation_s, "seed_compile_seconds": {k: r["seconds"] for k, r in
                                                                              seed_rows.items()},
        "by_family": {k: dict(v) for k, v in by_family.items()}, "by_expectation": {k: dict(v) for k, v in by_expect.items()},
        "frontend_note": FRONTEND_NOTE, "finn_sample": finn, "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)

    print(f"{len(rows)} mutated files ({len(MUTATIONS)} mutations x {len(seeds)} seed models), "
          f"{seconds:.0f} s ({seconds / max(len(rows), 1):.2f} s a file; FINN sample {finn_s:.0f} s)")
    compile_s = sum(r["seconds"] for r in seed_rows.values()) / len(seed_rows)
    print(f"validation of a valid seed model: {validation_s * 1e3:.1f} ms, {validation_s / compile_s:.1%} of its "
          f"compile ({compile_s:.2f} s, hls4ml and RTL mean)")
    for verdict in ("clean_error", "correct_acceptance", "traceback", "silent_acceptance", "unnamed_error",
                    "int_model_mismatch", "backends_disagree"):
        print(f"  {verdict:20s} {counts.get(verdict, 0)}")
    print("by what the mutation should give: " + "; ".join(
        f"{k}: " + ", ".join(f"{v} {n}" for v, n in sorted(c.items())) for k, c in sorted(by_expect.items())))
    took = [f for f in finn if f["same_as_finn_frontend"] is not None and rows_by_case[f["case"]]["backends"]
            ["finn-frontend"]["outcome"] == "accepted"]
    refused = [f for f in finn if f not in took]
    print(f"hls4ml and RTL compiled every file and FINN's frontend (prepare with FINN's arguments) read every file; "
          f"FINN's whole compile ran on {len(finn)}: of {len(took)} files every frontend accepted, "
          f"{sum(f['finn']['outcome'] == 'accepted' for f in took)} compiled exactly and the rest were refused by "
          f"FINN's own steps (below); of {len(refused)} refused files, {sum(f['same_as_finn_frontend'] for f in refused)} "
          "were refused by compile_finn with its frontend's message")
    for f in finn:
        if f["finn"]["outcome"] != "accepted" and f["same_as_finn_frontend"] is False:
            print(f"  FINN refused case {f['case']} ({f['seed_model']}, {f['mutation']}) that its frontend took: "
                  f"{f['finn'].get('error', '')[-200:]}")
    print(FRONTEND_NOTE)
    for r in rows:
        if r["verdict"] not in ("clean_error", "correct_acceptance"):
            worst = next((b for b in r["backends"].values() if b["outcome"] != "accepted"), {})
            print(f"  case {r['case']} {r['seed_model']} {r['mutation']}: {r['verdict']}: {worst.get('error', '')[:200]}")
    print(f"wrote {out}")
    return 1 if any(counts.get(b) for b in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
