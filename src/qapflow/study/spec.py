"""The study file's schema and its expansion into trials.

A study (flows/paper.yaml) names its data, a base training configuration, sweeps (a grid of
dotted RunConfig keys, e.g. `model.bits: [32, 6]`) and baselines (Ax BO, PTQ). Every trial is
one RunConfig; its folder is named by the digest of its settings and of the data's bytes, so a
finished trial is reused whatever the order or the executor. `smoke:` is merged over the
file for `--smoke`.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qapflow.common.errors import QapflowError
from qapflow.common.hashing import settings_digest
from qapflow.common.mappings import merge
from qapflow.data.generate.processes import RECIPES


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StudyData(Strict):
    file: str | None = None  # an existing jets file, relative to the study file's folder
    jets: int = Field(100_000, ge=5)
    seed: int = Field(1, ge=0)
    workers: int = Field(2, ge=1)
    recipe: str = "hls4ml-lhc-jets"


class Verify(Strict):
    """Designs put through the open hardware path: export, RTL with Verilator and Yosys, hls4ml
    C simulation (study/hardware.py)."""

    samples: int = Field(10_000, ge=1)  # simulated test jets per design and backend
    family: Literal["xc7", "xcup", "xcu"] = "xc7"
    min_sparsity: float = Field(0.0, ge=0.0, lt=1.0)  # a sweep's iterations below it are not synthesized
    min_accuracy: float = Field(0.0, ge=0.0, le=1.0)  # designs below it (e.g. pruned to constants) are not


class Sweep(Strict):
    base: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    synthesize: Verify | None = None  # every iteration of every trial through the hardware path


class SearchParam(Strict):
    """A BO parameter: an integer or float range (min, max), or a list of choices."""

    min: float | None = None
    max: float | None = None
    type: Literal["int", "float"] = "int"
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self):
        if (self.choices is None) == (self.min is None or self.max is None):
            raise ValueError("give min and max, or choices")
        if self.choices is None and self.min >= self.max:
            raise ValueError(f"min {self.min} must be below max {self.max}")
        return self


class BayesOpt(Strict):
    objective: Literal["val_loss", "accuracy_bops", "accuracy_luts"] = "val_loss"
    # dotted RunConfig keys, list items by index (model.bits.0); empty: the hidden widths w1-w3
    space: dict[str, SearchParam] = {}
    # accuracy_luts: the Pareto front (estimated LUTs, every iteration of every trial) verified
    verify: Verify | None = None
    trials: int = Field(20, ge=1)
    initial_trials: int = Field(5, ge=1)  # Sobol points before the Gaussian-process model
    width_min: int = Field(1, ge=1)
    width_max: int = Field(64, ge=1)
    base: dict[str, Any] = {}
    seed: int = 0


class PostTraining(Strict):
    bits: list[int] = [16, 12, 10, 8, 6, 4]
    base: dict[str, Any] = {}  # the float model's training (FT pruning), merged over the study base


class StudyFile(Strict):
    study: str
    workdir: str | None = None
    executor: Literal["pool", "ray"] = "pool"
    workers: int | None = Field(None, ge=1)  # default: the machine's cores
    ray_address: str | None = None
    data: StudyData = StudyData()
    base: dict[str, Any] = {}
    sweeps: dict[str, Sweep] = {}
    bo: dict[str, BayesOpt] = {}
    ptq: PostTraining | None = None
    # after the trials: the paper's Figures 2-7 and Table 1 (report/paper.py) for a study with the
    # precision sweep, the hardware front (report/hardware.py) for one that verified designs
    report: bool = False
    smoke: dict[str, Any] | None = None


def set_dotted(config: dict, key: str, value) -> dict:
    """config with `a.b.c` set to value (a copy); `a.b.0` sets item 0 of the list a.b."""
    out = copy.deepcopy(config)
    *parents, last = key.split(".")
    if last.isdigit():  # a list item: the list must be in the base configuration
        *parents, name = parents
        holder = _node(out, parents, key)
        if not isinstance(holder.get(name), list) or int(last) >= len(holder[name]):
            raise QapflowError(f"{key}: set {'.'.join([*parents, name])} to a list of at least "
                               f"{int(last) + 1} items in the base")
        holder[name][int(last)] = value
    else:
        _node(out, parents, key)[last] = value
    return out


def _node(config: dict, parents: list[str], key: str) -> dict:
    node = config
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise QapflowError(f"{key}: {part} is not a mapping")
    return node


def load_study(path, smoke: bool = False) -> StudyFile:
    """The study file, validated (with its smoke settings merged when asked)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise QapflowError(f"{path}: cannot read the study: {exc}") from exc
    if not isinstance(raw, dict):
        raise QapflowError(f"{path}: a study is a mapping with a 'study' key")
    if smoke:
        raw = merge({k: v for k, v in raw.items() if k != "smoke"}, raw.get("smoke") or {})
        raw["workdir"] = (raw.get("workdir") or f"runs/{Path(path).stem}") + "_smoke"
    try:
        study = StudyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        what = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise QapflowError(f"{path}: {where}: {what}") from None
    if study.data.recipe not in RECIPES:
        raise QapflowError(f"{path}: data.recipe: unknown recipe {study.data.recipe!r} "
                           f"(known: {', '.join(RECIPES)})")
    return study


@dataclass(frozen=True)
class Trial:
    """One training: its group (sweep or baseline), a readable label, its RunConfig as data."""

    group: str
    label: str
    config: dict
    kind: str = "qap"  # "qap": run_qap; "ptq": post-training quantization of a float run
    extra: tuple = ()  # kind-specific settings as (key, value) pairs

    def digest(self, data_digest: str) -> str:
        return settings_digest({"config": self.config, "kind": self.kind, "extra": list(self.extra),
                                "data": data_digest})

    def folder(self, data_digest: str) -> str:
        slug = self.label.replace("/", "_").replace(" ", "") or "base"
        return f"trials/{self.group}/{slug}-{self.digest(data_digest)[:10]}"


def _label(assignments: dict) -> str:
    return ",".join(f"{k.split('.')[-1]}={v}" for k, v in assignments.items())


def check_config(config: dict, where: str) -> None:
    from qapflow.train.config import RunConfig

    try:
        RunConfig.from_dict({**config, "data": "data.h5"}, where)
    except QapflowError as exc:
        raise QapflowError(f"{where}: {exc}") from None


def grid_trials(study: StudyFile, source="study") -> list[Trial]:
    """Every trial of every sweep, in file order, each configuration checked."""
    trials = []
    for name, sweep in study.sweeps.items():
        base = merge(study.base, sweep.base)
        keys = list(sweep.grid)
        for values in itertools.product(*(sweep.grid[k] for k in keys)):
            assignments = dict(zip(keys, values))
            config = base
            for key, value in assignments.items():
                config = set_dotted(config, key, value)
            label = _label(assignments)
            check_config(config, f"{source}: sweeps.{name} [{label}]")
            trials.append(Trial(name, label, config))
    return trials
