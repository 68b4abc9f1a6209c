"""Where a jet file's separability is lost: a gradient-boosted tree ensemble (no network, no
scaling) on the 16 features, its confusion matrix, and the same ensemble once the W and Z jets
whose mMDT-groomed mass fell below --mass-cut GeV are left out (the jets grooming left with one
prong). If the ensemble matches the float MLP (float_mlp_baseline.py), the features are the limit.

Usage: python benchmarks/separability_limits.py DATA.h5 [--mass-cut 50]
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import confusion_matrix, roc_auc_score

from qapflow.data.schema import CLASSES, FEATURE_NAMES
from qapflow.data.sources import load_jets


def one_prong_bosons(class_index: np.ndarray, mass: np.ndarray, mass_cut: float) -> np.ndarray:
    """Mask of the W and Z jets whose groomed mass is below `mass_cut`: those mMDT left one prong."""
    boson = np.isin(class_index, [CLASSES.index("w"), CLASSES.index("z")])
    return boson & (mass < mass_cut)


def fit_and_score(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """Accuracy, per-class AUCs and the row-normalised confusion matrix on the last 20%."""
    cut = int(0.8 * len(x))
    model = HistGradientBoostingClassifier(max_iter=300, early_stopping=True, random_state=seed)
    model.fit(x[:cut], y[:cut])
    scores = model.predict_proba(x[cut:])
    truth = y[cut:]
    aucs = {c: float(roc_auc_score(truth == i, scores[:, i])) for i, c in enumerate(CLASSES)}
    return float((scores.argmax(1) == truth).mean()), aucs, confusion_matrix(truth, scores.argmax(1), normalize="true")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--mass-cut", type=float, default=50.0)
    args = parser.parse_args()
    jets = load_jets(args.data)
    x, y = np.asarray(jets.features, np.float64), jets.class_index
    mass = x[:, FEATURE_NAMES.index("j_mass_mmdt")]
    accuracy, aucs, matrix = fit_and_score(x, y)
    print(f"all {len(x)} jets: accuracy {accuracy:.4f}; AUC " + " ".join(f"{c} {a:.3f}" for c, a in aucs.items()))
    print("confusion (rows true " + "/".join(CLASSES) + "):\n" + np.array2string(matrix, precision=2))
    for c in ("w", "z"):
        share = float((mass[y == CLASSES.index(c)] < args.mass_cut).mean())
        print(f"{c} jets with groomed mass below {args.mass_cut:g} GeV: {share:.1%}")
    keep = ~one_prong_bosons(y, mass, args.mass_cut)
    accuracy_kept, _, _ = fit_and_score(x[keep], y[keep])
    print(f"without those W/Z jets ({1 - keep.mean():.1%} of all): accuracy {accuracy_kept:.4f} "
          f"(ratio to all: {accuracy_kept / accuracy:.3f})")


if __name__ == "__main__":
    main()
