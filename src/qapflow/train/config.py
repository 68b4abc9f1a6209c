"""The run configuration: plain data, read from YAML and overridden by CLI flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from qapflow.common.errors import QapflowError
from qapflow.nn.spec import ModelSpec
from qapflow.train.trainer import TrainConfig

PRUNE_METHODS = ("none", "ft", "lt")
PRUNE_CRITERIA = ("magnitude", "hardware")
# in which order to prune and quantize (Zhang et al. 2021): QAT then iterative pruning (the
# paper's QAP), iterative pruning in float then QAT of each pruned model, or both in one training
SCHEDULES = ("quantize-then-prune", "prune-then-quantize", "joint")


@dataclass
class RunConfig:
    data: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: str = "none"
    # what pruning removes first: the smallest |w| (the paper's), or the lowest |w| per unit of
    # adder-graph cost (train/hardware_cost.py)
    prune_criterion: str = "magnitude"
    iterations: int | None = None
    target_sparsity: float | None = None
    fold_bn: bool = True  # fixed-point models with BN: fold it and fine-tune for deployment
    fold_epochs: int = 10
    folds: int | None = None
    randomize_labels: float = 0.0
    split_seed: int = 0
    max_jets: int | None = None
    schedule: str = "quantize-then-prune"
    quantize_epochs: int = 20  # prune-then-quantize: QAT epochs after each float pruning step
    joint_ramp_epochs: int = 10  # joint: epochs over which sparsity rises linearly to the target

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise QapflowError(f"schedule: unknown {self.schedule!r}; use one of {SCHEDULES}")
        if self.schedule != "quantize-then-prune" and self.model.is_float:
            raise QapflowError(f"schedule {self.schedule}: needs quantized layers (bits below 32)")
        if self.schedule == "joint" and (self.prune != "ft" or self.target_sparsity is None):
            raise QapflowError("schedule joint: give prune: ft and target_sparsity (one training reaches it)")
        if self.prune_criterion not in PRUNE_CRITERIA:
            raise QapflowError(f"prune_criterion: unknown {self.prune_criterion!r}; use one of {PRUNE_CRITERIA}")
        if self.prune not in PRUNE_METHODS:
            raise QapflowError(f"prune: unknown method {self.prune!r}; use one of {PRUNE_METHODS}")
        if self.prune != "none" and self.iterations is None and self.target_sparsity is None:
            raise QapflowError("prune: give iterations, target_sparsity, or both")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["model"], out["train"] = self.model.to_dict(), self.train.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict, source="config") -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise QapflowError(f"{source}: unknown keys {unknown}; known: {sorted(known)}")
        data = dict(data)
        try:
            data["model"] = ModelSpec(**data.get("model", {}))
            data["train"] = TrainConfig(**data.get("train", {}))
        except TypeError as exc:
            raise QapflowError(f"{source}: {exc}") from exc
        return cls(**data)

    @classmethod
    def from_yaml(cls, path) -> "RunConfig":
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise QapflowError(f"{path}: cannot read the config: {exc}") from exc
        if not isinstance(data, dict):
            raise QapflowError(f"{path}: a config is a mapping of keys to values")
        return cls.from_dict(data, path)
