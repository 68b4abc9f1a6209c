"""A hardware study's report: accuracy against Yosys LUTs and measured latency.

Reads what the study verified (sweeps/NAME/verified.json: every iteration of a synthesized
sweep, the paper-style QAP curve; bo/NAME/verified.json: the BO front, each design exact in
RTL and hls4ml simulation and synthesized with Yosys) and the float model's accuracy (the
study's unpruned 32-bit trial). Draws hardware_front.png/pdf (accuracy vs LUTs and vs latency;
the BO trials' cost-model estimates in grey), and writes hardware.md / hardware_report.json:
the smallest verified design within `margin` of the float accuracy against the reference QAP
design (the synthesized sweep's iteration nearest `reference_sparsity`), with ratios.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qapflow.common.atomic import write_json, write_text  # noqa: E402
from qapflow.common.errors import QapflowError  # noqa: E402
from qapflow.report.plots import save_figure  # noqa: E402
from qapflow.study.summary import read_study_trials  # noqa: E402

MARGIN = 0.01  # "within 1 point of the float model's accuracy"
REFERENCE_SPARSITY = 0.8


def _verified(work: Path, kind: str) -> dict[str, list[dict]]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((work / kind).glob("*/verified.json"))}


def float_accuracy(results: list[dict]) -> float | None:
    """The unpruned float model's test accuracy (mean over such trials)."""
    accs = [r["summary"]["iterations"][0]["accuracy"] for r in results
            if "summary" in r and r["kind"] == "qap" and r["config"].get("model", {}).get("bits") == 32]
    return sum(accs) / len(accs) if accs else None


def _reference(sweeps: dict[str, list[dict]], sparsity: float) -> dict | None:
    rows = [r for rows in sweeps.values() for r in rows]
    return min(rows, key=lambda r: abs(r["sparsity"] - sparsity)) if rows else None


def _curves(rows: list[dict]) -> dict[str, list[dict]]:
    """Verified rows by their source trial, by rising sparsity."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["label"].rsplit("/iter", 1)[0], []).append(r)
    return {k: sorted(v, key=lambda r: r["sparsity"]) for k, v in out.items()}


def draw(sweeps, fronts, estimates, float_acc, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, key, label in ((axes[0], "LUT", "LUTs (Yosys synth_xilinx, xc7)"),
                           (axes[1], "latency_cycles", "latency (cycles, Verilator)")):
        if key == "LUT" and estimates:
            ax.scatter([e["LUT"] for e in estimates], [e["accuracy"] for e in estimates], s=10, color="0.75",
                       label="BO trials, every iteration (cost-model LUTs)")
        for name, rows in sweeps.items():
            for trial, curve in _curves(rows).items():
                ax.plot([r[key] for r in curve], [r["accuracy"] for r in curve], "o-",
                        label=f"QAP {trial}" if key == "LUT" else None)
                if key == "LUT":
                    for r in curve:
                        ax.annotate(f"{r['sparsity']:.0%}", (r[key], r["accuracy"]), fontsize=7)
        for name, rows in fronts.items():
            rows = sorted(rows, key=lambda r: r[key])
            ax.plot([r[key] for r in rows], [r["accuracy"] for r in rows], "s--" if key == "LUT" else "s",
                    label=f"BO {name}: verified front" if key == "LUT" else None)
        if float_acc is not None:
            ax.axhline(float_acc, color="k", lw=0.8, label="float model" if key == "LUT" else None)
            ax.axhline(float_acc - MARGIN, color="k", lw=0.8, ls=":",
                       label="float - 1 point" if key == "LUT" else None)
        if key == "LUT":
            ax.set_xscale("log")
        if float_acc is not None:  # the region the comparison is about; lower points are in the JSON
            ax.set_ylim(float_acc - 0.08, float_acc + 0.01)
        ax.set(xlabel=label, ylabel="test accuracy")
    axes[0].legend(fontsize=7)
    fig.suptitle("every marked design exact in RTL (Verilator) and hls4ml (C simulation) against the IntModel",
                 fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out, "hardware_front")


def summarize(sweeps, fronts, float_acc) -> dict:
    reference = _reference(sweeps, REFERENCE_SPARSITY)
    verified = [r for rows in [*sweeps.values(), *fronts.values()] for r in rows]
    good = [r for r in verified if float_acc is not None and r["accuracy"] >= float_acc - MARGIN]
    smallest = min(good, key=lambda r: r["LUT"]) if good else None
    out = {"float_accuracy": float_acc, "margin": MARGIN, "reference": reference, "smallest_within_margin": smallest,
           "verified_designs": len(verified), "all_exact": all(
               r["mismatches_rtl"] == 0 and r["mismatches_hls4ml"] == 0 for r in verified)}
    if smallest and reference:
        out["ratios"] = {"LUT": reference["LUT"] / smallest["LUT"], "FF": reference["FF"] / max(smallest["FF"], 1),
                         "latency": reference["latency_cycles"] / max(smallest["latency_cycles"], 1)}
    return out


def _markdown(summary: dict) -> str:
    lines = ["| design | sparsity | accuracy | LUT (Yosys) | LUT (cost model) | FF | DSP | latency (cycles) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("reference", "smallest_within_margin"):
        r = summary.get(name)
        if r:
            lines.append(f"| {name}: {r['label']} | {r['sparsity']:.1%} | {r['accuracy']:.2%} | {r['LUT']:,} | "
                         f"{r['LUT_estimate']:,} | {r['FF']:,} | {r['DSP']} | {r['latency_cycles']} |")
    if summary.get("float_accuracy") is not None:
        lines.append(f"\nfloat model: {summary['float_accuracy']:.2%}; within 1 point: accuracy >= "
                     f"{summary['float_accuracy'] - MARGIN:.2%}")
    if "ratios" in summary:
        ratios = summary["ratios"]
        lines.append(f"reference / smallest: LUT {ratios['LUT']:.1f}x, FF {ratios['FF']:.1f}x, "
                     f"latency {ratios['latency']:.2f}x")
    return "\n".join(lines) + "\n"


def write_hardware_report(work) -> list[Path]:
    work = Path(work)
    results = read_study_trials(work)
    sweeps, fronts = _verified(work, "sweeps"), _verified(work, "bo")
    # a network pruned until its outputs are constants has no logic (0 LUTs): no design to compare
    sweeps, fronts = ({k: [r for r in rows if r["LUT"] > 0] for k, rows in d.items()} for d in (sweeps, fronts))
    if not sweeps and not fronts:
        raise QapflowError(f"{work}: no verified designs (sweeps with `synthesize:` or BO with `verify:`)")
    estimates = [row for r in results if r["group"].startswith("bo_") for row in r.get("hardware", [])]
    float_acc = float_accuracy(results)
    out = work / "report"
    out.mkdir(parents=True, exist_ok=True)
    paths = draw(sweeps, fronts, estimates, float_acc, out)
    summary = summarize(sweeps, fronts, float_acc)
    write_json(out / "hardware_report.json", {**summary, "sweeps": sweeps, "fronts": fronts})
    write_text(out / "hardware.md", _markdown(summary))
    return [*paths, out / "hardware_report.json", out / "hardware.md"]
