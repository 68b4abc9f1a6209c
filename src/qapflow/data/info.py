"""Summaries of a jet data set: counts per class and per-feature statistics."""

from __future__ import annotations

import numpy as np

from qapflow.data.schema import CLASSES, FEATURE_NAMES, JetArrays


def summarize(arrays: JetArrays) -> dict:
    """Counts per class; per feature min, max, mean, std, and the median per class."""
    idx = arrays.class_index
    counts = {c: int((idx == i).sum()) for i, c in enumerate(CLASSES)}
    features = {}
    for j, name in enumerate(FEATURE_NAMES):
        column = arrays.features[:, j].astype(np.float64)
        features[name] = {
            "min": float(column.min()),
            "max": float(column.max()),
            "mean": float(column.mean()),
            "std": float(column.std()),
            "median_by_class": {
                c: (float(np.median(column[idx == i])) if counts[c] else None)
                for i, c in enumerate(CLASSES)
            },
        }
    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in arrays.attrs.items()}
    inputs = {name: (None if getattr(arrays, name) is None else list(getattr(arrays, name).shape))
              for name in ("constituents", "images")}
    return {"n_jets": len(arrays), "class_counts": counts, "features": features,
            "inputs": inputs, "attrs": {k: str(v) for k, v in attrs.items()}}


def format_summary(summary: dict, name: str = "") -> str:
    lines = [f"{name}: {summary['n_jets']} jets"]
    lines.append("  class counts: " + ", ".join(f"{c}={n}" for c, n in summary["class_counts"].items()))
    inputs = summary.get("inputs", {})
    lines.append("  per-jet inputs: " + ", ".join(
        f"{name} {shape if shape else '(none)'}" for name, shape in inputs.items()))
    header = f"  {'feature':<18}{'min':>10}{'mean':>10}{'std':>10}{'max':>10}   median g/q/w/z/t"
    lines.append(header)
    for feature, s in summary["features"].items():
        medians = "/".join("-" if v is None else f"{v:.3g}" for v in s["median_by_class"].values())
        lines.append(
            f"  {feature:<18}{s['min']:>10.4g}{s['mean']:>10.4g}{s['std']:>10.4g}{s['max']:>10.4g}   {medians}"
        )
    return "\n".join(lines)
