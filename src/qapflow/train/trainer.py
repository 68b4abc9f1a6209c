"""Adam + cross-entropy (+ L1), early stopping on validation loss, best-epoch restore.

The data stay as whole tensors; a batch is one index into them, so an epoch has no
per-sample Python work.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn
from tqdm import tqdm

from qapflow.common.errors import QapflowError
from qapflow.train.hardware_cost import hardware_l1_penalty
from qapflow.train.masks import PruneMasks


CALIBRATION_SAMPLES = 8192  # training samples the activation-pruning thresholds are set on


@dataclass
class TrainConfig:
    max_epochs: int = 250
    patience: int = 10
    batch_size: int = 1024
    lr: float = 1e-3
    l1: float = 0.0
    # uniform: lambda * sum |w|; hardware: each |w| weighted by its adder-graph cost
    # (train/hardware_cost.py: signed digits x input bits)
    l1_weighting: str = "uniform"
    seed: int = 0

    def __post_init__(self):
        if self.l1_weighting not in ("uniform", "hardware"):
            raise QapflowError(f"l1_weighting: unknown {self.l1_weighting!r}; use uniform or hardware")

    def to_dict(self) -> dict:
        return asdict(self)


def l1_penalty(model: nn.Module, weighting: str = "uniform") -> torch.Tensor:
    if weighting == "hardware":
        return hardware_l1_penalty(model)
    return sum(lin.weight.abs().sum() for lin in model.prunable)


def evaluate_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 65536) -> float:
    model.eval()
    loss = nn.functional.cross_entropy
    with torch.no_grad():
        total = sum(loss(model(x[i : i + batch]), y[i : i + batch], reduction="sum").item()
                    for i in range(0, len(x), batch))
    return total / len(x)


def train(model: nn.Module, masks: PruneMasks, data: dict[str, torch.Tensor], cfg: TrainConfig,
          progress: bool = True, desc: str = "training", on_epoch=None, track_from: int = 0) -> dict:
    """Train in place; return the history {train_loss, val_loss, best_epoch, epochs}.

    `data` holds x_train, y_train, x_val, y_val. Pruned weights stay exactly zero: their
    gradients are masked and the weights re-masked after every step. `on_epoch(epoch)` runs
    before each epoch (the joint schedule prunes there, updating `masks` in place); epochs
    before `track_from` neither count as best nor stop the training early.
    """
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = data["x_train"], data["y_train"]
    masks.apply(model)
    history = {"train_loss": [], "val_loss": [], "best_epoch": -1}
    best_loss, best_state, stale = float("inf"), None, 0
    bar = tqdm(range(cfg.max_epochs), desc=desc, unit="epoch", disable=not progress, leave=False)
    # activation-pruning thresholds follow the weights: recalibrated every epoch (drawn only for
    # such models, so every other model's random stream is as before)
    prunes_activations = getattr(model, "act_prunes", None) is not None
    calibration = x[torch.randperm(len(x), generator=generator)[:CALIBRATION_SAMPLES]] if prunes_activations else None
    for epoch in bar:
        if on_epoch is not None:
            on_epoch(epoch)
        if prunes_activations:
            model.calibrate_activation_pruning(calibration)
        model.train()
        running, batches = 0.0, 0
        for idx in torch.randperm(len(x), generator=generator).split(cfg.batch_size):
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            running += loss.item()
            batches += 1
            if cfg.l1:
                loss = loss + cfg.l1 * l1_penalty(model, cfg.l1_weighting)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            masks.mask_grads(model)
            optimizer.step()
            masks.apply(model)
        val_loss = evaluate_loss(model, data["x_val"], data["y_val"])
        history["train_loss"].append(running / max(batches, 1))
        history["val_loss"].append(val_loss)
        bar.set_postfix(val_loss=f"{val_loss:.4f}")
        if epoch < track_from:
            continue
        if val_loss < best_loss:
            best_loss, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
            history["best_epoch"] = epoch
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history["epochs"] = len(history["val_loss"])
    return history
