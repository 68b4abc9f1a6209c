"""`qapflow run FLOW.yaml`: data -> train -> export -> compile -> csim -> synth -> compare -> report.

A flow is plain YAML (see flows/jet_tagging.yaml), checked against its schema (flow.schema)
before anything runs. Every stage writes its outputs under the flow's workdir and a record
WORKDIR/.stages/<stage>.json with the digest of its inputs: its settings and the contents of
the files it reads, named relative to the workdir, so a moved or copied checkout reuses its
results. A stage whose record matches is skipped; a killed run resumes (the generator and the
trainer also resume inside their stages). A finished result made from other inputs is moved
aside, never deleted. flow_report.json is written after every stage, with the failure if one
fails. Third-party output goes to WORKDIR/logs/<stage>.log; the console gets a line a stage.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from qapflow.common.atomic import write_json
from qapflow.compare.backends import backends_table, write_table
from qapflow.common.console import captured, say
from qapflow.common.errors import QapflowError
from qapflow.common.mappings import merge
from qapflow.common.hashing import file_digest, settings_digest
from qapflow.common.tools import ToolNotFound
from qapflow.common.values import family_of
from qapflow.flow.answer import flow_answer
from qapflow.flow.schema import STAGES, validate_flow


def load_flow(path, smoke: bool = False) -> dict:
    """The flow as plain data with every default filled in, validated (smoke sizes merged)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise QapflowError(f"{path}: cannot read the flow: {exc}") from exc
    if isinstance(raw, dict) and smoke:
        raw["stages"] = merge(raw.get("stages") or {}, raw.get("smoke") or {})
    flow = validate_flow(raw, path).model_dump(exclude_none=True)
    flow["workdir"] = str(flow.get("workdir") or f"runs/{Path(path).stem}") + ("_smoke" if smoke else "")
    if "train" in flow["stages"]:
        _check_train(flow["stages"]["train"], path)
    return flow


def _train_config(settings: dict, base_dir: Path, data: str):
    from qapflow.train.config import RunConfig
    from qapflow.train.trainer import TrainConfig

    s = dict(settings)
    base = RunConfig.from_yaml(base_dir / s.pop("config")).to_dict() if s.get("config") else {}
    s.pop("config", None)
    # trainer settings may be given flat (max_epochs: 20) as well as under train:
    flat = {k: s.pop(k) for k in list(s) if k in TrainConfig.__dataclass_fields__}
    s["train"] = {**s.get("train", {}), **flat}
    return RunConfig.from_dict(merge(base, {**s, "data": data}), "flow train stage")


def _check_train(settings: dict, path) -> None:
    try:
        _train_config(settings, Path.cwd(), "placeholder.h5")
    except QapflowError as exc:
        raise QapflowError(f"{path}: stages.train: {exc}") from None


class FlowRunner:
    def __init__(self, flow: dict, base_dir: Path, progress: bool = True, verbose: bool = False):
        self.flow = flow
        self.base_dir = base_dir
        self.work = (base_dir / flow["workdir"]).resolve()
        self.progress = progress
        self.verbose = verbose
        self.timings: dict[str, dict] = {}

    # -- caching ------------------------------------------------------------------------------
    def _record_path(self, stage: str) -> Path:
        return self.work / ".stages" / f"{stage}.json"

    def _name(self, path: Path) -> str:
        """A file's name in the digest: relative to the workdir (or the flow's folder)."""
        for root in (self.work, self.base_dir.resolve()):
            try:
                return str(Path(path).resolve().relative_to(root))
            except ValueError:
                continue
        return str(path)

    def _digest(self, stage: str, inputs: list[Path]) -> str:
        files = {self._name(p): file_digest(p) for p in inputs}
        return settings_digest({"settings": self.flow["stages"].get(stage), "part": self.flow.get("part"),
                                "files": files})

    def _outputs(self, stage: str) -> list[Path]:
        return {"data": [self.data_file], "train": [self.train_dir], "export": [self.model_file],
                "compile": [self.project(b) for b in self.backends()], "compare": [self.work / "compare"],
                "report": [self.work / "report"]}.get(stage, [])

    def _move_aside(self, stage: str) -> None:
        """Results a previous run finished from other inputs: kept under a stale name."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for path in self._outputs(stage):
            if path.exists():
                aside = path.with_name(f"{path.name}.stale-{stamp}")
                os.replace(path, aside)
                say(f"[{stage}] inputs changed: the previous {path.name} is kept as {aside.name}")

    def _run_stage(self, stage: str, inputs: list[Path], action) -> None:
        digest = self._digest(stage, inputs)
        record = self._record_path(stage)
        cached = json.loads(record.read_text()) if record.exists() else {}
        if cached.get("digest") == digest:
            self.timings[stage] = {"status": "cached", **cached}
            say(f"[{stage}] cached")
            return
        if cached:  # finished before from other inputs (no record: a killed run, which resumes)
            self._move_aside(stage)
            record.unlink()
        say(f"[{stage}] running (log: {self._name(self.log(stage))})")
        start = time.time()
        try:
            with captured(self.log(stage), self.verbose):
                result = action() or {}
        except Exception as exc:
            self.timings[stage] = {"status": "failed", "seconds": time.time() - start,
                                   "error": f"{type(exc).__name__}: {exc}", "log": str(self.log(stage))}
            self._write_report()
            raise
        seconds = time.time() - start
        entry = {"digest": digest, "seconds": seconds, **result}
        write_json(record, entry)
        self.timings[stage] = {"status": "ran", **entry}
        self._write_report()
        say(f"[{stage}] done in {seconds:.1f} s")

    def log(self, stage: str) -> Path:
        return self.work / "logs" / f"{stage}.log"

    def _write_report(self) -> None:
        write_json(self.work / "flow_report.json", {"workdir": str(self.work), "stages": self.timings})

    # -- stages -------------------------------------------------------------------------------
    @property
    def data_file(self) -> Path:
        return self.work / "data" / "jets.h5"

    @property
    def train_dir(self) -> Path:
        return self.work / "train"

    @property
    def model_file(self) -> Path:
        return self.work / "export" / "model.onnx"

    def project(self, backend: str) -> Path:
        return self.work / f"prj_{backend}"

    def backends(self) -> list[str]:
        return list(self.flow["stages"].get("compile", {}).get("backends", ["hls4ml"]))

    def data(self) -> dict:
        from qapflow.data.generate.processes import DEFAULT_RECIPE, RECIPES
        from qapflow.data.generate.runner import generate_dataset

        s = self.flow["stages"]["data"]
        if s.get("file"):  # a given file instead of generating one
            self.data_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.base_dir / s["file"], self.data_file)
        else:
            generate_dataset(self.data_file, s["jets"], s.get("seed", 0), s.get("workers", 1),
                             RECIPES[s.get("recipe", DEFAULT_RECIPE)], progress=self.progress)
        return {"file": str(self.data_file)}

    def train(self) -> dict:
        from qapflow.train.run import run_qap, started_with

        # the data file by its path relative to the flow's folder: a moved checkout is the same run
        cfg = _train_config(self.flow["stages"]["train"], self.base_dir, os.path.relpath(self.data_file, self.base_dir))
        # its inputs changed (or it was killed): resume if the config is the same, else keep it aside
        if (self.train_dir / "config.json").exists() and not started_with(self.train_dir, cfg):
            self._move_aside("train")
        summary = run_qap(cfg, self.train_dir, resume=True, progress=self.progress)
        return {"iterations": len(summary["iterations"])}

    def last_iteration(self) -> Path:
        iters = sorted(p.parent for p in self.train_dir.glob("iter_*/metrics.json"))
        if not iters:
            raise QapflowError(f"{self.train_dir}: no finished iteration")
        return iters[-1]

    def export(self) -> dict:
        from qapflow.export.qonnx_export import export_checkpoint

        it = self.flow["stages"]["export"].get("iteration", "last")
        source = self.last_iteration() if it == "last" else self.train_dir / f"iter_{int(it):03d}"
        export_checkpoint(source, self.model_file)
        return {"source": str(source)}

    def compile(self) -> dict:
        out = {}
        s = self.flow["stages"]["compile"]
        for backend in self.backends():
            if backend == "rtl":
                from qapflow.backends.rtl.backend import compile_rtl

                summary = compile_rtl(self.model_file, self.project("rtl"), s["pipeline_stages"],
                                      s["hls4ml"]["clock_ns"], part=self.flow["part"])
            elif backend == "finn":
                from qapflow.backends.finn.build import FinnOptions, compile_finn

                finn = s.get("finn", {})
                folding = self.base_dir / finn["folding"] if finn.get("folding") else None
                summary = compile_finn(self.model_file, self.project("finn"), FinnOptions(
                    target_fps=finn.get("target_fps"), folding_file=folding, clock_ns=s["hls4ml"]["clock_ns"],
                    part=self.flow["part"]))
            else:
                from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml

                summary = compile_hls4ml(self.model_file, self.project("hls4ml"),
                                         CompileOptions(part=self.flow["part"], **s["hls4ml"]))
            out[backend] = {"bit_exact": summary["bit_exact"], "nonzero_weights": summary["nonzero_weights"]}
        return out

    def csim(self) -> dict:
        n = self.flow["stages"]["csim"].get("n", 10_000)
        out = {}
        for backend in self.backends():
            if backend == "rtl":
                from qapflow.sim.verilator import run_verilator

                report = run_verilator(self.project("rtl"), self.data_file, n)
            elif backend == "finn":
                from qapflow.sim.finn_sim import run_finn_csim

                report = run_finn_csim(self.project("finn"), self.data_file, n, python_samples=min(n, 2000))
            else:
                from qapflow.sim.csim import run_csim

                report = run_csim(self.project("hls4ml"), self.data_file, n)
            if not report["passed"]:
                raise QapflowError(f"{backend} simulation does not match: see {self.project(backend)}/csim_report.json")
            out[backend] = {k: report.get(k) for k in ("samples", "mismatches_vs_int_model", "mismatches_vs_pytorch",
                                                        "latency_cycles_measured", "cycles_per_inference_measured",
                                                        "first_inference_latency_cycles", "run_seconds",
                                                        "build_seconds", "compile_seconds")}
        return out

    def synth(self) -> dict:
        s = self.flow["stages"]["synth"]
        out = {}
        for backend in self.backends():
            if backend == "rtl":
                from qapflow.synth.yosys import run_yosys

                r = run_yosys(self.project("rtl"), family_of(self.flow["part"]))
                out["rtl"] = {k: r[k] for k in ("LUT", "FF", "CARRY", "DSP", "seconds")}
            elif backend == "finn":
                from qapflow.synth.finn_resources import finn_resources

                r = finn_resources(self.project("finn"), family_of(self.flow["part"]))
                out["finn"] = {k: r[k] for k in ("LUT", "FF", "CARRY", "DSP", "BRAM", "complete")}
            else:
                from qapflow.synth.vendor import run_vendor_synth

                try:
                    out["hls4ml"] = run_vendor_synth(self.project("hls4ml"), s.get("vendor", "vitis"))
                except ToolNotFound as exc:
                    say(f"[synth] hls4ml project NOT synthesized: {exc}")
                    out["hls4ml"] = {"skipped": str(exc)}
        table = backends_table({b: self.project(b) for b in self.backends()})
        write_table(table, self.work / "backends.csv")
        write_json(self.work / "backends.json", table)
        return out

    def compare(self) -> dict:
        from qapflow.compare.compare import compare_run

        s = self.flow["stages"]["compare"]
        summary = compare_run(self.train_dir, self.work / "compare", s["backend"], s.get("iterations"),
                              self.data_file, s["n"], family_of(self.flow["part"]), self.progress)
        return {"pearson_bops_luts": summary["pearson_bops_luts"]}

    def report(self) -> dict:
        from qapflow.report.plots import report_runs

        paths = report_runs([self.train_dir], self.work / "report", labels=[self.flow.get("name", "run")])
        return {"files": len(paths)}

    # -- the flow -----------------------------------------------------------------------------
    def run(self) -> dict:
        inputs = {
            "data": lambda: [],
            "train": lambda: [self.data_file] + ([self.base_dir / self.flow["stages"]["train"]["config"]]
                                                 if self.flow["stages"]["train"].get("config") else []),
            "export": lambda: [self.last_iteration() / "metrics.json"],
            "compile": lambda: [self.model_file] + ([self.base_dir / finn_folding] if (finn_folding := self.flow[
                "stages"].get("compile", {}).get("finn", {}).get("folding")) else []),
            "csim": lambda: [self.project(b) / "qapflow_project.json" for b in self.backends()] + [self.data_file],
            "synth": lambda: [self.project(b) / "qapflow_project.json" for b in self.backends()],
            "compare": lambda: [p for p in sorted(self.train_dir.glob("iter_*/metrics.json"))],
            "report": lambda: [self.train_dir / "summary.json"],
        }
        for stage in STAGES:
            if stage in self.flow["stages"]:
                self._run_stage(stage, inputs[stage](), getattr(self, stage))
        self._write_report()
        answer = flow_answer(self.work, self.backends() if "compile" in self.flow["stages"] else [],
                             self.flow["stages"].get("compile", {}).get("hls4ml", {}).get("clock_ns"))
        write_json(self.work / "flow_answer.json", answer)
        return {"workdir": str(self.work), "stages": self.timings, "answer": answer}


def run_flow(path, smoke: bool = False, progress: bool = True, verbose: bool = False) -> dict:
    path = Path(path)
    flow = load_flow(path, smoke)
    return FlowRunner(flow, Path.cwd(), progress, verbose).run()
