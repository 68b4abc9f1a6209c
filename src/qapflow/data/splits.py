"""The paper's train/validation/test split, k-fold splits, standardisation, label noise."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from qapflow.common.atomic import write_json
from qapflow.common.errors import DataFormatError
from qapflow.data.schema import CLASSES, FEATURE_NAMES, JetArrays

# Hawks et al. 2021, section 3.2: 472,500 train, 157,500 validation, 240,000 test jets.
PAPER_SPLIT = (472_500, 157_500, 240_000)


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def arrays(self, arrays: JetArrays) -> dict[str, JetArrays]:
        """Each part's jets; constituents and images stay aligned with features and labels."""
        return {name: arrays.subset(index) for name, index in self.as_dict().items()}


def paper_split(n: int, seed: int = 0, ratio=PAPER_SPLIT) -> Split:
    """Shuffle 0..n-1 with `seed` and cut it in the paper's ratio (exact for 870,000 jets)."""
    total = sum(ratio)
    n_train = n * ratio[0] // total
    n_val = n * ratio[1] // total
    order = np.random.default_rng(seed).permutation(n)
    return Split(order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])


def kfold(indices: np.ndarray, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train, validation) pairs over `indices` (the paper folds train+validation, k=4)."""
    if k < 2 or k > len(indices):
        raise ValueError(f"k-fold needs 2 <= k <= {len(indices)}, got {k}")
    shuffled = np.random.default_rng(seed).permutation(indices)
    folds = np.array_split(shuffled, k)
    return [(np.concatenate(folds[:i] + folds[i + 1 :]), folds[i]) for i in range(k)]


@dataclass
class Standardizer:
    """Per-feature (x - mean) / std, fitted on the training split only."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> "Standardizer":
        mean = features.mean(axis=0, dtype=np.float64)
        std = features.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0  # a constant feature stays finite (and becomes 0)
        return cls(mean, std)

    def transform(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": list(FEATURE_NAMES), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict, source="scaler") -> "Standardizer":
        if data.get("features") != list(FEATURE_NAMES):
            raise DataFormatError(source, "scaler was fitted on other features")
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["std"], dtype=np.float64))

    def save(self, path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path) -> "Standardizer":
        try:
            data = json.loads(open(path).read())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataFormatError(path, f"cannot read scaler: {exc}") from exc
        return cls.from_dict(data, path)


def randomize_labels(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Copy of one-hot `labels` with `fraction` of rows given a uniformly drawn class.

    As in section 5.3 of the paper, the drawn class may equal the true one.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label randomisation fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    out = labels.copy()
    rows = rng.choice(len(labels), size=int(round(fraction * len(labels))), replace=False)
    out[rows] = 0
    out[rows, rng.integers(0, len(CLASSES), size=len(rows))] = 1
    return out
