"""The flow file's schema: every stage's keys, types and ranges, checked before anything runs.

pydantic models with unknown keys forbidden; a bad file gives one error naming the file, the
stage and the field. The stages' order and prerequisites are checked here too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qapflow.common.errors import QapflowError
from qapflow.common.values import DEFAULT_PART, check_clock, check_part, family_of
from qapflow.data.generate.processes import DEFAULT_RECIPE, RECIPES

STAGES = ("data", "train", "export", "compile", "csim", "synth", "compare", "report")
# each stage reads what these stages write
PREREQUISITES = {"train": ["data"], "export": ["train"], "compile": ["export"], "csim": ["compile", "data"],
                 "synth": ["compile"], "compare": ["train", "data"], "report": ["train"]}
class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataStage(Strict):
    jets: int = Field(100_000, ge=5)
    seed: int = Field(0, ge=0)
    workers: int = Field(1, ge=1, le=256)
    recipe: str = DEFAULT_RECIPE
    file: str | None = None

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, recipe: str) -> str:
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r} (known: {', '.join(RECIPES)})")
        return recipe


class TrainStage(BaseModel):
    """`config:` a training YAML; any other key overrides it. Checked by RunConfig itself."""

    model_config = ConfigDict(extra="allow")
    config: str | None = None


class ExportStage(Strict):
    iteration: Literal["last"] | int = "last"

    @field_validator("iteration")
    @classmethod
    def _non_negative(cls, value):
        if value != "last" and value < 0:
            raise ValueError("iteration must be 'last' or a number from 0")
        return value


class Hls4mlOptions(Strict):
    clock_ns: float = 5.0
    io: Literal["parallel", "stream"] = "parallel"
    strategy: Literal["latency", "resource"] = "latency"
    reuse: int = Field(1, ge=1)
    vendor: Literal["vitis", "vivado"] = "vitis"

    @field_validator("clock_ns")
    @classmethod
    def _clock(cls, value):
        return check_clock(value)


class FinnFlowOptions(Strict):
    target_fps: int | None = Field(None, ge=1)  # None: FINN's default folding (PE = SIMD = 1)
    folding: str | None = None  # a FINN folding configuration JSON, relative to the checkout


class CompileStage(Strict):
    backends: list[Literal["hls4ml", "rtl", "finn"]] = Field(default_factory=lambda: ["hls4ml"], min_length=1)
    hls4ml: Hls4mlOptions = Field(default_factory=Hls4mlOptions)
    finn: FinnFlowOptions = Field(default_factory=FinnFlowOptions)
    pipeline_stages: int = Field(0, ge=0, le=64)


class CsimStage(Strict):
    n: int = Field(10_000, ge=1)


class SynthStage(Strict):
    vendor: Literal["vitis", "vivado"] = "vitis"


class CompareStage(Strict):
    backend: Literal["rtl", "hls4ml", "finn"] = "rtl"
    iterations: list[int] | None = None
    n: int = Field(2000, ge=1)

    @field_validator("iterations")
    @classmethod
    def _non_negative(cls, value):
        if value is not None and any(v < 0 for v in value):
            raise ValueError("iterations are numbers from 0")
        return value


class ReportStage(Strict):
    pass


class Stages(Strict):
    data: DataStage | None = None
    train: TrainStage | None = None
    export: ExportStage | None = None
    compile: CompileStage | None = None
    csim: CsimStage | None = None
    synth: SynthStage | None = None
    compare: CompareStage | None = None
    report: ReportStage | None = None


class Flow(Strict):
    name: str = "flow"
    workdir: str | None = None
    part: str = DEFAULT_PART  # one target part for every backend and for Yosys
    stages: Stages
    smoke: dict | None = None

    @field_validator("part")
    @classmethod
    def _part(cls, value):
        return check_part(value)


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def validate_flow(data, path) -> Flow:
    """The flow, validated; one QapflowError naming the file, the stage and the field."""
    if not isinstance(data, dict):
        raise QapflowError(f"{path}: a flow is a mapping with a 'stages' key")
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _where(first["loc"])
        if first["type"] == "extra_forbidden":
            raise QapflowError(f"{path}: {field}: unknown key (known: "
                               f"{_known_keys(first['loc'])})") from None
        raise QapflowError(f"{path}: {field}: {first['msg']} (got {first.get('input')!r})") from None
    present = [s for s in STAGES if getattr(flow.stages, s) is not None]
    for stage in present:
        missing = [p for p in PREREQUISITES.get(stage, []) if p not in present]
        if missing:
            raise QapflowError(f"{path}: stages.{stage} needs the stage(s) {missing} before it, "
                               "which write what it reads")
    try:
        family_of(flow.part)
    except ValueError as exc:
        raise QapflowError(f"{path}: part: {exc}") from None
    return flow


def _known_keys(loc: tuple) -> str:
    model: type[BaseModel] = Flow
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            break
        annotation = field.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)
                      and issubclass(a, BaseModel)]
        if not candidates:
            break
        model = candidates[0]
    return ", ".join(model.model_fields)
