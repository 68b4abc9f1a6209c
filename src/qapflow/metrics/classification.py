"""Accuracy, one-vs-rest ROC curves and AUC per class, background efficiency at 50% signal."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import auc, roc_curve

from qapflow.data.schema import CLASSES


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == y).mean())


def roc_curves(scores: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per class: (signal efficiency, background efficiency), the class against the other four."""
    out = {}
    for i, c in enumerate(CLASSES):
        fpr, tpr, _ = roc_curve(y == i, scores[:, i])
        out[c] = (tpr, fpr)
    return out


def bkg_eff_at_sig_eff(sig: np.ndarray, bkg: np.ndarray, target: float = 0.5) -> float:
    """Background efficiency where the signal efficiency reaches `target` (interpolated)."""
    return float(np.interp(target, sig, bkg))


def classification_metrics(logits: np.ndarray, y: np.ndarray) -> dict:
    """accuracy, per-class auc and bkg_eff_at_sig_eff_0p5 (the keys of metrics.json)."""
    scores = softmax(logits)
    rocs = roc_curves(scores, y)
    return {
        "accuracy": accuracy(logits, y),
        "auc": {c: float(auc(bkg, sig)) for c, (sig, bkg) in rocs.items()},
        "bkg_eff_at_sig_eff_0p5": {c: bkg_eff_at_sig_eff(sig, bkg) for c, (sig, bkg) in rocs.items()},
    }
