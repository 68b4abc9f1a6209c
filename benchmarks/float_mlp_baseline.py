"""Separability of a jet file: a plain float 16-64-32-32-5 MLP against the majority class.

Usage: python benchmarks/float_mlp_baseline.py DATA.h5 [--jets 50000] [--epochs 60]

Paper split of the first --jets jets, standardisation fitted on train, Adam, cross-entropy,
early stopping on validation loss (patience 10). Prints test accuracy, the majority-class
accuracy, and their ratio. A check of the data, not the project's trainer.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from qapflow.data.sources import load_jets
from qapflow.data.splits import Standardizer, paper_split


def mlp() -> torch.nn.Sequential:
    widths = [16, 64, 32, 32]
    layers: list[torch.nn.Module] = []
    for a, b in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(32, 5))


def train_float_mlp(data, epochs: int = 60, seed: int = 0) -> dict:
    """The float MLP on the paper split of `data`: test accuracy, majority-class accuracy,
    per-class one-vs-rest AUCs, epochs run."""
    from sklearn.metrics import roc_auc_score

    from qapflow.data.schema import CLASSES

    torch.manual_seed(seed)
    split = paper_split(len(data), seed=seed)
    scaler = Standardizer.fit(data.features[split.train])
    x = {k: torch.from_numpy(scaler.transform(data.features[v])) for k, v in split.as_dict().items()}
    y = {k: torch.from_numpy(data.class_index[v]) for k, v in split.as_dict().items()}
    model, loss_fn = mlp(), torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    best, best_state, stale = float("inf"), None, 0
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(x["train"])).split(512):
            opt.zero_grad()
            loss_fn(model(x["train"][idx]), y["train"][idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = loss_fn(model(x["val"]), y["val"]).item()
        if val < best:
            best, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= 10:
                break
    model.load_state_dict(best_state)
    with torch.no_grad():
        scores = torch.softmax(model(x["test"]), dim=1).numpy()
    labels = y["test"].numpy()
    return {"accuracy": float((scores.argmax(1) == labels).mean()),
            "majority": float(np.bincount(labels).max() / len(labels)),
            "auc": {c: float(roc_auc_score(labels == i, scores[:, i])) for i, c in enumerate(CLASSES)},
            "epochs": epoch + 1, "sizes": [len(split.train), len(split.val), len(split.test)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--jets", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_jets(args.data).subset(slice(0, args.jets))
    r = train_float_mlp(data, args.epochs, args.seed)
    train, val, test = r["sizes"]
    print(f"jets {len(data)} (train {train}, val {val}, test {test}), epochs {r['epochs']}")
    print(f"float MLP test accuracy {r['accuracy']:.4f}, majority class {r['majority']:.4f}, "
          f"ratio {r['accuracy'] / r['majority']:.2f}")
    print("one-vs-rest AUC: " + ", ".join(f"{c} {v:.4f}" for c, v in r["auc"].items()))


if __name__ == "__main__":
    main()
