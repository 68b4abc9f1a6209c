"""The paper's views of one or more runs.

- loss_vs_epoch: training and validation loss with pruning iterations marked (Fig. 2)
- roc: per-class ROC curves of each run's unpruned model (Fig. 3)
- metrics_vs_bops: accuracy and background efficiency at 50% signal efficiency (Fig. 4)
- neural_efficiency_vs_bops (Fig. 7)
Every figure is written as PNG and PDF; runs.csv holds the numbers plotted.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from qapflow.common.atomic import atomic_path  # noqa: E402
from qapflow.common.errors import QapflowError  # noqa: E402
from qapflow.data.schema import CLASSES  # noqa: E402
from qapflow.train.summary import summarize_run  # noqa: E402


def _first_chain(run: Path) -> Path:
    folds = sorted(run.glob("fold_*"))
    return folds[0] if folds else run


def save_figure(fig, out: Path, name: str) -> list[Path]:
    for ax in fig.axes:  # log axes spanning less than a decade label minor ticks, which overlap
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    paths = []
    for ext in ("png", "pdf"):
        path = out / f"{name}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def errorbar(ax, rows, x, y, label):
    xs = [r[x] for r in rows]
    ys = [r[y] for r in rows]
    err = [r.get(f"{y}_sem", 0.0) for r in rows]
    ax.errorbar(xs, ys, yerr=err, marker="o", ms=3, capsize=2, label=label)


def loss_vs_epoch(run: Path, label: str, out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 4))
    draw_loss(ax, run, label)
    return save_figure(fig, out, f"loss_vs_epoch_{label}")


def draw_loss(ax, run: Path, label: str) -> None:
    """Training and validation loss of every iteration of `run` (its first fold), one after another."""
    chain = _first_chain(run)
    epoch = 0
    for it_dir in sorted(chain.glob("iter_*")):
        history = json.loads((it_dir / "history.json").read_text())
        n = len(history["val_loss"])
        xs = np.arange(epoch, epoch + n)
        ax.plot(xs, history["train_loss"], color="tab:blue", lw=1, label="train" if epoch == 0 else None)
        ax.plot(xs, history["val_loss"], color="tab:orange", lw=1, label="validation" if epoch == 0 else None)
        epoch += n
        ax.axvline(epoch - 0.5, color="red", ls=":", lw=1)
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title=f"{label}: loss, pruning iterations dotted")
    ax.legend()


def roc(runs: list[Path], labels: list[str], out: Path, name: str = "roc") -> list[Path]:
    fig, ax = plt.subplots(figsize=(6, 5))
    styles = ["-", "--", ":", "-."]
    for k, (run, label) in enumerate(zip(runs, labels)):
        curves = np.load(_first_chain(run) / "iter_000" / "roc.npz")
        for i, c in enumerate(CLASSES):
            ax.plot(curves[f"{c}_sig"], curves[f"{c}_bkg"], ls=styles[k % 4], color=f"C{i}",
                    label=f"{c} ({label})")
    ax.set(yscale="log", xlabel="signal efficiency", ylabel="background efficiency", ylim=(1e-4, 1),
           title="ROC per class: iteration 0 (unpruned) of each run")
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, out, name)


def metrics_vs_bops(summaries: dict[str, list[dict]], out: Path, name: str = "metrics_vs_bops") -> list[Path]:
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    panels = [("accuracy", "accuracy")] + [(f"bkg_eff_{c}", f"bkg. eff. at 50% sig. eff. ({c})") for c in CLASSES]
    for ax, (key, title) in zip(axes.flat, panels):
        for label, rows in summaries.items():
            errorbar(ax, rows, "bops", key, label)
        ax.set(xscale="log", xlabel="BOPs", ylabel="accuracy" if key == "accuracy" else "background efficiency")
        ax.set_title(title, fontsize=9)
        if key != "accuracy":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out, name)


def neural_efficiency_vs_bops(summaries: dict[str, list[dict]], out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rows in summaries.items():
        errorbar(ax, rows, "bops", "neural_efficiency", label)
    ax.set(xscale="log", xlabel="BOPs", ylabel="neural efficiency")
    ax.legend(fontsize=8)
    return save_figure(fig, out, "neural_efficiency_vs_bops")


def write_csv(summaries: dict[str, list[dict]], out: Path) -> Path:
    keys = sorted({k for rows in summaries.values() for r in rows for k in r})
    path = out / "runs.csv"
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["run", *keys])
            writer.writeheader()
            for label, rows in summaries.items():
                for r in rows:
                    writer.writerow({"run": label, **r})
    return path


def report_runs(runs, out, labels: list[str] | None = None) -> list[Path]:
    runs = [Path(r) for r in runs]
    labels = labels or [r.name for r in runs]
    if len(labels) != len(runs):
        raise QapflowError(f"{len(labels)} --label values for {len(runs)} runs")
    for run in runs:
        if not (run / "config.json").exists():
            raise QapflowError(f"{run}: not a qapflow run folder (no config.json)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = {label: summarize_run(run)["iterations"] for run, label in zip(runs, labels)}
    empty = [label for label, rows in summaries.items() if not rows]
    if empty:
        raise QapflowError(f"runs with no finished iteration: {empty}")
    paths = [write_csv(summaries, out)]
    for run, label in zip(runs, labels):
        paths += loss_vs_epoch(run, label, out)
    paths += roc(runs, labels, out)
    paths += metrics_vs_bops(summaries, out)
    paths += neural_efficiency_vs_bops(summaries, out)
    return paths
