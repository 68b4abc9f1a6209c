"""The paper's Figures 2-7 and Table 1 from a study's results (WORKDIR/study.json).

fig2 loss vs epoch of the 6-bit FT and LT runs; fig3 ROC of the unpruned 32-bit and 6-bit
models; fig4 accuracy and background efficiency vs BOPs for every precision, FT and LT, with the
k-fold standard errors; fig5 BN + L1 against no BN and against no L1; fig6 the FT curves against
every BO trial (dots) with the best (lowest validation loss) starred; fig7 accuracy, background
efficiency and neural efficiency of the 6-bit QAP variants with the BO stars. Each as PNG and PDF,
the numbers plotted in paper_report.json.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from qapflow.common.atomic import write_json  # noqa: E402
from qapflow.common.errors import QapflowError  # noqa: E402
from qapflow.report.plots import errorbar, save_figure, draw_loss, metrics_vs_bops, roc  # noqa: E402
from qapflow.report.ordering import write_ordering_report  # noqa: E402
from qapflow.report.table1 import table1_rows, write_table1  # noqa: E402
from qapflow.study.summary import read_study_trials  # noqa: E402

BITS = (32, 12, 6, 4)


def _rows(result: dict) -> list[dict]:
    return result["summary"]["iterations"]


def _group(results: list[dict], group: str) -> list[dict]:
    return [r for r in results if r["group"] == group]


def _label(result: dict) -> str:
    bits = result["config"].get("model", {}).get("bits")
    return f"{bits}-bit {result['config'].get('prune', 'none').upper()}"


def fig2(results, work: Path, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for ax, prune in zip(axes, ("ft", "lt")):
        trial = next(r for r in _group(results, "precision") if r["label"] == f"bits=6,prune={prune}")
        draw_loss(ax, work / trial["folder"], f"6-bit {prune.upper()}")
    return save_figure(fig, out, "fig2")


def fig4(results, out: Path) -> list[Path]:
    precision = sorted(_group(results, "precision"), key=lambda r: (-r["config"]["model"]["bits"], r["label"]))
    return metrics_vs_bops({_label(r): _rows(r) for r in precision}, out, "fig4")


def fig5(results, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    with_both = [r for r in _group(results, "precision") if r["config"].get("prune") == "ft"]
    for ax, (group, title) in zip(axes, (("no_bn", "without BN (dashed)"), ("no_l1", "without L1 (dashed)"))):
        for i, r in enumerate(sorted(with_both, key=lambda r: -r["config"]["model"]["bits"])):
            errorbar(ax, _rows(r), "bops", "accuracy", f"{_label(r)} BN + L1")
            bits = r["config"]["model"]["bits"]
            other = next((o for o in _group(results, group) if o["config"]["model"]["bits"] == bits), None)
            if other:
                rows = _rows(other)
                ax.plot([x["bops"] for x in rows], [x["accuracy"] for x in rows], ls="--", marker="x",
                        color=ax.lines[-1].get_color() if ax.lines else None, label=f"{bits}-bit FT {group}")
        ax.set(xscale="log", xlabel="BOPs", ylabel="accuracy", title=f"BN + L1 against {title}")
        ax.legend(fontsize=7)
    return save_figure(fig, out, "fig5")


def _bo_points(results):
    points = [r for g in ("bo_val_loss", "bo_pareto") for r in _group(results, g)]
    scored = [r for r in points if r.get("val_loss") is not None]
    best = min(scored, key=lambda r: r["val_loss"]) if scored else None
    return points, best


def fig6(results, out: Path) -> list[Path]:
    points, best = _bo_points(results)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    ft = [r for r in _group(results, "precision") if r["config"].get("prune") == "ft"]
    for ax, key, name in ((axes[0], "accuracy", "accuracy"), (axes[1], "bkg_eff_t", "bkg. eff. (t) at 50% sig. eff.")):
        for r in sorted(ft, key=lambda r: -r["config"]["model"]["bits"]):
            errorbar(ax, _rows(r), "bops", key, _label(r))
        ax.scatter([_rows(p)[-1]["bops"] for p in points], [_rows(p)[-1][key] for p in points], alpha=0.3,
                   color="k", s=12, label="BO trials (6-bit, unpruned)")
        if best:
            ax.scatter([_rows(best)[-1]["bops"]], [_rows(best)[-1][key]], marker="*", s=220,
                       facecolors="none", edgecolors="red", label=f"BO best ({best['label']})")
        ax.set(xscale="log", xlabel="BOPs", ylabel=name)
        if key != "accuracy":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    return save_figure(fig, out, "fig6")


def fig7(results, out: Path) -> list[Path]:
    _, best = _bo_points(results)
    variants = [("BN + L1", next((r for r in _group(results, "precision") if r["label"] == "bits=6,prune=ft"), None)),
                ("no BN", next((r for r in _group(results, "no_bn") if r["config"]["model"]["bits"] == 6), None)),
                ("no L1", next((r for r in _group(results, "no_l1") if r["config"]["model"]["bits"] == 6), None))]
    fig, axes = plt.subplots(3, 3, figsize=(13, 10), sharex=True)
    for row, (name, trial) in zip(axes, variants):
        for ax, key in zip(row, ("accuracy", "bkg_eff_t", "neural_efficiency")):
            if trial:
                errorbar(ax, _rows(trial), "bops", key, f"6-bit QAP, {name}")
            if best:
                ax.scatter([_rows(best)[-1]["bops"]], [_rows(best)[-1][key]], marker="*", s=200, color="red",
                           label="BO best")
            ax.set(xscale="log", ylabel=key)
            ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("BOPs")
    return save_figure(fig, out, "fig7")


def write_paper_report(work) -> list[Path]:
    work = Path(work)
    results = read_study_trials(work)
    out = work / "report"
    out.mkdir(parents=True, exist_ok=True)
    try:
        unpruned = [next(r for r in _group(results, "precision") if r["label"] == f"bits={b},prune=ft") for b in (32, 6)]
    except StopIteration:
        raise QapflowError(f"{work / 'study.json'}: the paper's figures need the precision sweep's 32- and 6-bit FT "
                           "trials (flows/paper.yaml)") from None
    paths = fig2(results, work, out)
    paths += roc([work / r["folder"] for r in unpruned], ["32-bit", "6-bit"], out, "fig3")
    paths += fig4(results, out) + fig5(results, out) + fig6(results, out) + fig7(results, out)
    rows = table1_rows(results)
    paths += write_table1(rows, out)
    paths += write_ordering_report(results, out)
    write_json(out / "paper_report.json", {"table1": rows, "figures": [p.name for p in paths],
                                           "trials": [{k: r[k] for k in ("group", "label", "folder")} | {
                                               "iterations": _rows(r)} for r in results]})
    return paths
