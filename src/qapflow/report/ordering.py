"""The ordering study (Zhang et al. 2021's question on this task): prune then quantize, quantize
then prune, or both jointly; weights only or weights and activations; at each precision.

Curves of accuracy against BOPs per schedule; the conclusion compares the schedules at the
largest target weight sparsity every curve of a precision reached (each curve's point pruned to
that target), written to ordering.md with the table behind it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qapflow.common.atomic import atomic_path  # noqa: E402
from qapflow.report.plots import save_figure  # noqa: E402

GROUPS = ("ordering", "ordering_joint")


def _key(result: dict) -> tuple[int, str, float]:
    model = result["config"].get("model", {})
    return (int(model.get("bits", 6)), result["config"].get("schedule", "quantize-then-prune"),
            float(model.get("activation_sparsity", 0.0)))


def ordering_curves(results: list[dict]) -> dict[tuple, list[dict]]:
    """(bits, schedule, activation sparsity) -> points sorted by sparsity: every iteration of an
    iterative schedule, the final point of each joint training."""
    curves: dict[tuple, list[dict]] = {}
    for r in results:
        if r["group"] not in GROUPS:
            continue
        rows = r["summary"]["iterations"]
        points = rows[-1:] if r["config"].get("schedule") == "joint" else rows
        curves.setdefault(_key(r), []).extend(points)
    return {k: sorted(v, key=lambda p: p["target_sparsity"]) for k, v in curves.items()}


def compare_at_common_sparsity(curves: dict[tuple, list[dict]]) -> list[dict]:
    rows = []
    for bits in sorted({k[0] for k in curves}, reverse=True):
        mine = {k: v for k, v in curves.items() if k[0] == bits}
        # by the target each point was pruned to (measured sparsity lands a hair above it)
        common = min(max(p["target_sparsity"] for p in v) for v in mine.values())
        for (b, schedule, act), points in sorted(mine.items()):
            below = [p for p in points if p["target_sparsity"] <= common + 1e-9]
            if not below:  # e.g. joint trainings only at targets above every iterative curve's end
                continue
            point = max(below, key=lambda p: p["target_sparsity"])
            rows.append({"bits": b, "schedule": schedule, "activation_sparsity": act, "common_sparsity": common,
                         "sparsity": point["sparsity"], "accuracy": point["accuracy"], "bops": point["bops"]})
    return rows


def conclusion(rows: list[dict]) -> list[str]:
    lines = []
    for bits in sorted({r["bits"] for r in rows}, reverse=True):
        for act in sorted({r["activation_sparsity"] for r in rows if r["bits"] == bits}):
            group = sorted((r for r in rows if r["bits"] == bits and r["activation_sparsity"] == act),
                           key=lambda r: -r["accuracy"])
            if len(group) < 2:
                continue
            best, rest = group[0], group[1:]
            others = ", ".join(f"{r['schedule']} {100 * r['accuracy']:.1f}%" for r in rest)
            what = "weights only" if act == 0 else f"weights and {100 * act:.0f}% of activations"
            lines.append(f"{bits}-bit, {what}, near {100 * best['common_sparsity']:.0f}% weight sparsity: "
                         f"{best['schedule']} is best at {100 * best['accuracy']:.1f}% ({others}).")
    return lines


def write_ordering_report(results: list[dict], out: Path) -> list[Path]:
    curves = ordering_curves(results)
    if not curves:
        return []
    bits_values = sorted({k[0] for k in curves}, reverse=True)
    fig, axes = plt.subplots(1, len(bits_values), figsize=(6 * len(bits_values), 4), squeeze=False)
    colors = {"quantize-then-prune": "C0", "prune-then-quantize": "C1", "joint": "C2"}
    for ax, bits in zip(axes[0], bits_values):
        for (b, schedule, act), points in sorted(curves.items()):
            if b != bits:
                continue
            ax.plot([p["bops"] for p in points], [p["accuracy"] for p in points], marker="o", ms=3,
                    ls="-" if act == 0 else "--", color=colors.get(schedule),
                    label=f"{schedule}" + ("" if act == 0 else f", {100 * act:.0f}% act. pruned"))
        ax.set(xscale="log", xlabel="BOPs", ylabel="accuracy", title=f"{bits}-bit: order of pruning and quantization")
        ax.legend(fontsize=7)
    paths = save_figure(fig, out, "ordering")
    rows = compare_at_common_sparsity(curves)
    lines = ["# Ordering study", "", *[f"- {c}" for c in conclusion(rows)], "",
             "| bits | schedule | activation sparsity | weight sparsity | accuracy | BOPs |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['bits']} | {r['schedule']} | {r['activation_sparsity']:.2f} | {r['sparsity']:.3f} | "
              f"{r['accuracy']:.4f} | {r['bops']:.4g} |" for r in rows]
    path = out / "ordering.md"
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return [*paths, path]
