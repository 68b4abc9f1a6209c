"""`qapflow compare RUN_DIR`: export, compile, simulate and synthesize every chosen
iteration of a pruning run, and tabulate accuracy, BOPs (paper formula and qonnx),
non-zero weights, LUTs, FFs, DSPs and latency, with the correlation of BOPs with LUTs.

Each iteration's artifacts live in OUT/iter_NNN/; a stage is skipped when its output
exists for the same input (the export's source checkpoint digest), so a re-run redoes
only what changed and a killed run resumes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qapflow.common.atomic import atomic_path, write_json
from qapflow.common.errors import QapflowError
from qapflow.compare.backends import cycles_and_latency, write_table
from qapflow.common.hashing import file_digest
from qapflow.export.qonnx_export import export_checkpoint, read_manifest, resolve_checkpoint

COLUMNS = ("iteration", "sparsity", "accuracy", "bops", "bops_float_input", "qonnx_bops", "nonzero_weights",
           "LUT_estimate", "FF_estimate", "latency_estimate", "LUT", "FF", "CARRY", "DSP", "BRAM", "latency_cycles",
           "cycles_per_inference", "sim_samples", "sim_mismatches")


# FINN's python mode runs one sample at a time; the RTL simulation takes every sample
PYTHON_MODE_SAMPLES = 500
LUTS_SOURCE = {"rtl": "Yosys synth_xilinx technology mapping", "hls4ml": "vendor reports",
               "finn": "Yosys synth_xilinx per FINN layer (yosys-slang); layers it cannot read are listed in "
                       "each resources.json"}


def _fresh(path: Path, source_digest: str) -> bool:
    """True if `path` (a JSON file) records `source_digest` as its input."""
    if not path.exists():
        return False
    return json.loads(path.read_text()).get("input_digest") == source_digest


def _stamp(path: Path, digest: str) -> None:
    data = json.loads(path.read_text())
    data["input_digest"] = digest
    write_json(path, data)


def compare_iteration(it_dir: Path, out: Path, backend: str, data_file, n: int, family: str) -> dict:
    """All stages for one iteration folder; returns its table row."""
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = resolve_checkpoint(it_dir)
    digest = file_digest(checkpoint)
    model = out / "model.onnx"
    manifest_file = model.with_name("model.manifest.json")
    if not (model.exists() and _fresh(manifest_file, digest)):
        export_checkpoint(it_dir, model)
        _stamp(manifest_file, digest)
    manifest = read_manifest(model)
    prj = out / f"prj_{backend}"
    project_file = prj / "qapflow_project.json"
    if not _fresh(project_file, digest):
        if backend == "rtl":
            from qapflow.backends.rtl.backend import compile_rtl

            compile_rtl(model, prj)
        elif backend == "finn":
            from qapflow.backends.finn.build import FinnOptions, compile_finn

            compile_finn(model, prj, FinnOptions())
        else:
            from qapflow.backends.hls4ml.backend import compile_hls4ml

            compile_hls4ml(model, prj)
        _stamp(project_file, digest)
    project = json.loads(project_file.read_text())
    sim_file = prj / "csim_report.json"
    if not _fresh(sim_file, digest):
        if backend == "rtl":
            from qapflow.sim.verilator import run_verilator

            run_verilator(prj, data_file, n)
        elif backend == "finn":
            from qapflow.sim.finn_sim import run_finn_csim

            run_finn_csim(prj, data_file, n, python_samples=min(n, PYTHON_MODE_SAMPLES))
        else:
            from qapflow.sim.csim import run_csim

            run_csim(prj, data_file, n)
        _stamp(sim_file, digest)
    sim = json.loads(sim_file.read_text())
    resources = {}
    resources_file = prj / "resources.json"
    if backend == "rtl":
        if not _fresh(resources_file, digest):
            from qapflow.synth.yosys import run_yosys

            run_yosys(prj, family)
            _stamp(resources_file, digest)
        resources = json.loads(resources_file.read_text())
    elif backend == "finn":
        if not _fresh(resources_file, digest):
            from qapflow.synth.finn_resources import finn_resources

            finn_resources(prj, family)
            _stamp(resources_file, digest)
        resources = json.loads(resources_file.read_text())
    else:  # hls4ml: vendor reports where they exist (they cannot be made here)
        from qapflow.synth.vendor import parse_vendor_reports

        try:
            resources = parse_vendor_reports(prj)["resources"]
        except QapflowError:
            resources = {}
    metrics = json.loads((it_dir / "metrics.json").read_text())
    cycles, latency = cycles_and_latency(backend, sim, resources)
    estimate = _cost_estimate(prj, project)
    return {
        "iteration": metrics["iteration"],
        "sparsity": manifest["sparsity"]["overall"],
        "accuracy": metrics.get("folded", metrics)["accuracy"],
        "bops": manifest["bops"],
        "bops_float_input": manifest["bops_float_input"],
        "qonnx_bops": manifest["qonnx_inference_cost"]["bops"],
        "nonzero_weights": project["nonzero_weights"],
        "LUT_estimate": estimate["LUT"],
        "FF_estimate": estimate["FF"],
        "latency_estimate": estimate["latency_cycles"],
        "LUT": resources.get("LUT"),
        "FF": resources.get("FF"),
        "CARRY": resources.get("CARRY"),
        "DSP": resources.get("DSP"),
        "BRAM": resources.get("BRAM", resources.get("BRAM_18K")),
        "latency_cycles": latency,
        "cycles_per_inference": cycles,
        "sim_samples": sim.get("samples"),
        "sim_mismatches": (sim.get("mismatches_vs_int_model") or 0) + (sim.get("mismatches_vs_pytorch") or 0)
        + (sim.get("qonnx", {}).get("quantizer_mismatches") or 0),
    }


def _cost_estimate(prj: Path, project: dict) -> dict:
    """The cost model's figures for the RTL path of the project's IntModel (synth/cost_model.py).
    The model is calibrated on dense chains; an integer graph gets da4ml's own LUT estimate
    (an rtl project's, None elsewhere) and no FF or latency estimate."""
    if project.get("integer_graph"):
        return {"LUT": project.get("estimated_cost_luts"), "FF": None, "latency_cycles": None}
    from qapflow.intmodel.model import IntModel
    from qapflow.synth.cost_model import estimate

    return estimate(IntModel.load(prj / "int_model.json"))


def pearson(x, y) -> float | None:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def plot(rows: list[dict], out: Path, backend: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    have = [r for r in rows if r["LUT"] is not None]
    paths = []
    if not have:
        return paths
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    for ax, (key, label) in zip(axes, (("bops", "BOPs (paper formula)"), ("qonnx_bops", "BOPs (qonnx)"),
                                       ("nonzero_weights", "non-zero weights"),
                                       ("LUT_estimate", "cost-model LUTs (RTL path)"))):
        ax.plot([r[key] for r in have], [r["LUT"] for r in have], "o-")
        for r in have:
            ax.annotate(f"{r['sparsity']:.0%}", (r[key], r["LUT"]), fontsize=7)
        ax.set(xlabel=label, ylabel="LUTs", title=f"{backend}: LUTs vs {label}")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
    caveat = f"; {len(rows)} points only: r is not meaningful" if len(rows) < 3 else ""
    fig.suptitle("labels: measured fraction of zero weights" + caveat, fontsize=8)
    fig.tight_layout()
    for ext in ("png", "pdf"):
        path = out / f"luts_vs_bops.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=120)
        paths.append(path)
    plt.close(fig)
    return paths


def compare_run(run_dir, out, backend: str = "rtl", iterations: list[int] | None = None, data_file=None,
                n: int = 10_000, family: str = "xc7", progress: bool = True) -> dict:
    run_dir, out = Path(run_dir), Path(out)
    config_file = run_dir / "config.json"
    if not config_file.exists():
        raise QapflowError(f"{run_dir}: not a qapflow run folder (no config.json)")
    data_file = data_file or json.loads(config_file.read_text())["data"]
    it_dirs = sorted(p.parent for p in run_dir.glob("iter_*/metrics.json"))
    if iterations is not None:
        it_dirs = [d for d in it_dirs if int(d.name.split("_")[1]) in iterations]
    if not it_dirs:
        raise QapflowError(f"{run_dir}: no finished iteration to compare")
    rows = []
    for it_dir in tqdm(it_dirs, desc=f"compare ({backend})", unit="iteration", disable=not progress):
        rows.append(compare_iteration(it_dir, out / it_dir.name, backend, data_file, n, family))
    with_luts = [r for r in rows if r["LUT"] is not None]
    summary = {
        "run": str(run_dir.resolve()),
        "backend": backend,
        "rows": rows,
        "pearson_bops_luts": pearson([r["bops"] for r in with_luts], [r["LUT"] for r in with_luts]),
        "pearson_qonnx_bops_luts": pearson([r["qonnx_bops"] for r in with_luts], [r["LUT"] for r in with_luts]),
        "luts_source": LUTS_SOURCE[backend],
        "pearson_points": len(with_luts),
        "pearson_cost_model_luts": pearson([r["LUT_estimate"] for r in with_luts], [r["LUT"] for r in with_luts]),
    }
    if len(with_luts) < 3:
        summary["pearson_caveat"] = (f"from {len(with_luts)} points: any two distinct points give r = +-1; "
                                     "compare three or more iterations for a correlation")
    write_table(rows, out / "compare.csv", COLUMNS)
    write_json(out / "compare.json", summary)
    plot(rows, out, backend)
    return summary
