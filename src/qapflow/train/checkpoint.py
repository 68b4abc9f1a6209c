"""Checkpoints: weights, pruning masks, scaler and spec in one file.

Only tensors and plain data, so `torch.load(path, weights_only=True)` reads them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from qapflow.common.atomic import atomic_path
from qapflow.common.errors import DataFormatError
from qapflow.nn.model import JetTagger, build_model
from qapflow.nn.spec import ModelSpec
from qapflow.train.inputs import scaler_from_dict
from qapflow.train.masks import PruneMasks

FORMAT = "qapflow-checkpoint-v1"


def save_checkpoint(path, model: JetTagger, masks: PruneMasks, scaler,
                    meta: dict | None = None) -> None:
    payload = {
        "format": FORMAT,
        "spec": model.spec.to_dict(),
        "state_dict": model.state_dict(),
        "masks": masks.state(),
        "scaler": scaler.to_dict(),
        "meta": meta or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path) -> tuple[JetTagger, PruneMasks, object, dict]:
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint not found")
    try:
        payload = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(path, f"cannot be read as a checkpoint (damaged, or not a qapflow "
                                    f"checkpoint): {first}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataFormatError(path, "not a qapflow checkpoint")
    model = build_model(ModelSpec.from_dict(payload["spec"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()  # BN must use its running statistics after loading
    masks = PruneMasks(payload["masks"])
    return model, masks, scaler_from_dict(payload["scaler"], path), payload["meta"]
