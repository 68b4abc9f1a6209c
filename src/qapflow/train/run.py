"""A QAP run: train, then prune iteratively (FT or LT), saving every iteration.

RUN_DIR/config.json, [fold_K/]scaler.json, [fold_K/]init.pt, [fold_K/]iter_NNN/{checkpoint.pt,
folded.pt, roc.npz, history.json, metrics.json} and RUN_DIR/summary.json. An iteration is
finished when its metrics.json exists (written last, atomically); `resume` continues after
the last finished iteration and never rewrites one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from qapflow.common.atomic import atomic_path, write_json
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.data.sources import load_jets
from qapflow.data.splits import kfold, paper_split, randomize_labels
from qapflow.metrics.evaluate import evaluate
from qapflow.nn.model import build_model
from qapflow.nn.spec import FLOAT_BITS
from qapflow.train.bn_fold import fold_batch_norm
from qapflow.train.checkpoint import load_checkpoint, save_checkpoint
from qapflow.train.config import RunConfig
from qapflow.train.hardware_cost import pruning_scores
from qapflow.train.inputs import fit_scaler, model_inputs
from qapflow.train.masks import PruneMasks
from qapflow.train.schedule import prune_count, target_sparsities
from qapflow.train.summary import summarize_run
from qapflow.train.trainer import train


def iteration_targets(cfg: RunConfig) -> list[float]:
    if cfg.prune == "none":
        return [0.0]
    if cfg.schedule == "joint":  # one training prunes to the target as it quantizes
        return [cfg.target_sparsity]
    return [0.0, *target_sparsities(cfg.iterations, cfg.target_sparsity)]


def trained_spec(cfg: RunConfig):
    """The network the pruning iterations train: float first for prune-then-quantize."""
    if cfg.schedule == "prune-then-quantize":
        return dataclasses.replace(cfg.model, bits=FLOAT_BITS)
    return cfg.model


def joint_pruning(model, masks: PruneMasks, target: float, ramp_epochs: int, criterion: str = "magnitude"):
    """Before each epoch, prune (globally, by `criterion`) to target x (epoch + 1) / ramp_epochs."""
    def on_epoch(epoch: int) -> None:
        sparsity = target * min(1.0, (epoch + 1) / ramp_epochs)
        masks.masks = masks.prune_smallest(model, prune_count(masks.total, masks.pruned, sparsity),
                                            pruning_scores(model, criterion)).masks
        masks.apply(model)
    return on_epoch


def quantize_pruned(float_model, masks: PruneMasks, cfg: RunConfig, data: dict, train_cfg, progress: bool):
    """prune-then-quantize: the pruned float model's weights into the quantized network, then
    QAT for cfg.quantize_epochs with the same masks (its quantizer ranges learned there)."""
    quantized = build_model(cfg.model)
    quantized.load_state_dict(float_model.state_dict(), strict=False)  # quantizer parameters: their own
    masks.apply(quantized)
    qat = dataclasses.replace(train_cfg, max_epochs=cfg.quantize_epochs, patience=cfg.quantize_epochs)
    history = train(quantized, masks, data, qat, progress, desc="quantize after pruning")
    return quantized, history


def started_with(out: Path, cfg: RunConfig) -> bool:
    """True if the run in `out` was started with exactly this configuration."""
    config_path = Path(out) / "config.json"
    return config_path.exists() and json.loads(config_path.read_text()) == json.loads(json.dumps(cfg.to_dict()))


def _open_run_dir(out: Path, cfg: RunConfig, resume: bool) -> None:
    config_path = out / "config.json"
    if config_path.exists():
        if not resume:
            raise QapflowError(f"{out} already holds a run; use --resume to continue it, or another --out")
        if not started_with(out, cfg):
            raise QapflowError(f"{config_path}: the run was started with another configuration")
    else:
        write_json(config_path, cfg.to_dict())


def _save_roc(path: Path, roc: dict) -> None:
    arrays = {f"{c}_{k}": v for c, (sig, bkg) in roc.items() for k, v in (("sig", sig), ("bkg", bkg))}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def _tensors(spec, arrays, labels, index, scaler) -> tuple[torch.Tensor, torch.Tensor]:
    """The scaled input of the model's architecture (train/inputs.py) and the class indices."""
    return (torch.from_numpy(model_inputs(spec, arrays, index, scaler)),
            torch.from_numpy(labels[index].argmax(axis=1)).long())


def _deployable(cfg: RunConfig) -> bool:
    spec = cfg.model
    return cfg.fold_bn and spec.batch_norm and spec.scheme == "fixed-point" and not spec.is_float


def run_chain(out: Path, cfg: RunConfig, arrays, train_idx, val_idx, test_idx, seed: int,
              progress: bool = True) -> None:
    """Train and prune one model through every iteration into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    scaler = fit_scaler(cfg.model, arrays, train_idx, cfg.data)
    scaler.save(out / "scaler.json")
    labels = arrays.labels.copy()
    if cfg.randomize_labels:
        labels[train_idx] = randomize_labels(labels[train_idx], cfg.randomize_labels, seed)
    x_train, y_train = _tensors(cfg.model, arrays, labels, train_idx, scaler)
    x_val, y_val = _tensors(cfg.model, arrays, arrays.labels, val_idx, scaler)
    x_test, y_test = _tensors(cfg.model, arrays, arrays.labels, test_idx, scaler)
    data = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}

    torch.manual_seed(seed)
    model = build_model(trained_spec(cfg))
    init_path = out / "init.pt"
    if init_path.exists():
        try:
            model.load_state_dict(torch.load(init_path, weights_only=True))
        except Exception as exc:  # torch raises several types for a damaged file
            raise DataFormatError(init_path, "the run's initial weights cannot be read (damaged file?); "
                                             "move it aside to start the run again") from exc
    else:
        with atomic_path(init_path) as tmp:
            torch.save(model.state_dict(), tmp)
    init_state = copy.deepcopy(model.state_dict())
    masks = PruneMasks.ones_like(model)

    for it, target in enumerate(iteration_targets(cfg)):
        it_dir = out / f"iter_{it:03d}"
        float_state = cfg.schedule == "prune-then-quantize"
        if (it_dir / "metrics.json").exists():  # finished: pick up its state and go on
            model, masks, _, _ = load_checkpoint(it_dir / ("float.pt" if float_state else "checkpoint.pt"))
            continue
        it_dir.mkdir(exist_ok=True)
        start = time.time()
        if it > 0:
            masks = masks.prune_smallest(model, prune_count(masks.total, masks.pruned, target),
                                         pruning_scores(model, cfg.prune_criterion))
            if cfg.prune == "lt":  # rewind every parameter to its initial value
                model.load_state_dict(init_state)
        masks.apply(model)
        train_cfg = dataclasses.replace(cfg.train, seed=seed + it)
        if cfg.schedule == "joint":
            history = train(model, masks, data, train_cfg, progress, desc=f"{out.name}/joint",
                            on_epoch=joint_pruning(model, masks, target, cfg.joint_ramp_epochs, cfg.prune_criterion),
                            track_from=cfg.joint_ramp_epochs - 1)
        else:
            history = train(model, masks, data, train_cfg, progress, desc=f"{out.name}/iter {it}")
        deployed = model
        if float_state:
            save_checkpoint(it_dir / "float.pt", model, masks, scaler, {"iteration": it, "float": True})
            deployed, history["quantize"] = quantize_pruned(model, masks, cfg, data, train_cfg, progress)
        metrics, roc = evaluate(deployed, x_test, y_test)
        metrics.update(iteration=it, target_sparsity=target, pruned_fraction=masks.pruned / masks.total,
                       epochs=history["epochs"], best_epoch=history["best_epoch"])
        save_checkpoint(it_dir / "checkpoint.pt", deployed, masks, scaler, {"iteration": it})
        metrics["deploy_checkpoint"] = "checkpoint.pt"
        if _deployable(cfg):
            folded = fold_batch_norm(deployed)
            fine_tune = dataclasses.replace(train_cfg, max_epochs=cfg.fold_epochs, patience=cfg.fold_epochs)
            history["folded"] = train(folded, masks, data, fine_tune, progress, desc="fold BN + fine-tune")
            metrics["folded"], _ = evaluate(folded, x_test, y_test)
            save_checkpoint(it_dir / "folded.pt", folded, masks, scaler, {"iteration": it, "folded": True})
            metrics["deploy_checkpoint"] = "folded.pt"
        metrics["train_seconds"] = time.time() - start
        _save_roc(it_dir / "roc.npz", roc)
        write_json(it_dir / "history.json", history)
        write_json(it_dir / "metrics.json", metrics)


def run_qap(cfg: RunConfig, out, resume: bool = False, progress: bool = True) -> dict:
    """Run the configured training and pruning into `out`; return the summary."""
    out = Path(out)
    _open_run_dir(out, cfg, resume)
    arrays = load_jets(cfg.data)
    if cfg.max_jets:
        arrays = arrays.subset(slice(0, cfg.max_jets))
    split = paper_split(len(arrays), cfg.split_seed)
    seed = cfg.train.seed
    if cfg.folds:
        pool = np.concatenate([split.train, split.val])
        for k, (train_idx, val_idx) in enumerate(kfold(pool, cfg.folds, cfg.split_seed)):
            run_chain(out / f"fold_{k}", cfg, arrays, train_idx, val_idx, split.test, seed + 1000 * k,
                      progress)
    else:
        run_chain(out, cfg, arrays, split.train, split.val, split.test, seed, progress)
    summary = summarize_run(out)
    write_json(out / "summary.json", summary)
    return summary
