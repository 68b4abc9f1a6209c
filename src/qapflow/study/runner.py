"""`qapflow run STUDY.yaml`: every trial of a study, on a process pool or on Ray.

Phases in order, each a batch of independent trials: the data (generated once, resumable),
the sweeps' grid, the float run PTQ starts from, the PTQ trials, the BO rounds. A trial's
folder is its cache (result.json); a killed study resumes without redoing finished trials;
a failing trial is reported (its error.json and the summary) and the others go on.
WORKDIR/study.json lists every trial with its result; summary.csv/md hold one row a trial.
"""

from __future__ import annotations

import os
from pathlib import Path

from tqdm import tqdm

from qapflow.common.atomic import write_json
from qapflow.common.console import say
from qapflow.common.errors import QapflowError
from qapflow.common.hashing import file_digest
from qapflow.study.executors import default_workers, run_trials
from qapflow.common.mappings import merge
from qapflow.study.spec import StudyFile, Trial, grid_trials, load_study
from qapflow.study.summary import write_summary
from qapflow.study.trial import execute_trial, finished_result


class StudyRunner:
    def __init__(self, study: StudyFile, base_dir: Path, executor: str | None = None,
                 ray_address: str | None = None, progress: bool = True):
        self.study = study
        self.base_dir = Path(base_dir)
        self.work = (self.base_dir / (study.workdir or f"runs/{study.study}")).resolve()
        self.executor = executor or ("ray" if ray_address else study.executor)
        self.ray_address = ray_address or study.ray_address
        self.workers = study.workers or default_workers()
        self.progress = progress
        self.results: dict[str, dict] = {}
        self.failures: dict[str, str] = {}

    # -- data -----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        d = self.study.data
        if d.file:
            source = (self.base_dir / d.file).resolve()
            if not source.exists():
                raise QapflowError(f"data.file: {source} not found")
            self.data_path = os.path.relpath(source, self.work)
        else:
            from qapflow.data.generate.processes import RECIPES
            from qapflow.data.generate.runner import generate_dataset

            target = self.work / "data" / "jets.h5"
            if not target.exists():
                say(f"[data] generating {d.jets} jets ({d.recipe}) into {target}")
                generate_dataset(target, d.jets, d.seed, d.workers, progress=self.progress,
                                 settings=RECIPES[d.recipe])
            self.data_path = "data/jets.h5"
        self.data_digest = file_digest(self.work / self.data_path)

    # -- trials ---------------------------------------------------------------------------------
    def payload(self, trial: Trial) -> dict:
        return {"workdir": str(self.work), "folder": trial.folder(self.data_digest), "data": self.data_path,
                "kind": trial.kind, "config": trial.config, "extra": dict(trial.extra),
                "group": trial.group, "label": trial.label}

    def run_batch(self, trials: list[Trial], desc: str) -> list[dict | None]:
        """Run the trials not finished yet; return every trial's result (None if it failed)."""
        payloads = [self.payload(t) for t in trials]
        found = {p["folder"]: finished_result(self.work / p["folder"]) for p in payloads}
        todo = [p for p in payloads if found[p["folder"]] is None]
        bar = tqdm(total=len(payloads), initial=len(payloads) - len(todo), desc=desc, unit="trial",
                   disable=not self.progress)
        for payload, result, error in run_trials(execute_trial, todo, self.executor, self.workers,
                                                 self.ray_address):
            if error:
                self.failures[payload["folder"]] = error
                say(f"[{payload['group']}] trial {payload['label']} failed: {error}")
            found[payload["folder"]] = result  # what the worker wrote to result.json
            bar.update(1)
        bar.close()
        self.results.update({folder: r for folder, r in found.items() if r is not None})
        return [found[p["folder"]] for p in payloads]

    def ptq_trials(self) -> list[Trial]:
        spec = self.study.ptq
        float_cfg = merge(self.study.base, {"model": {"bits": 32}, "prune": "ft"})
        float_cfg = merge(float_cfg, spec.base)
        float_trial = Trial("ptq_float", "float_ft", float_cfg)
        (result,) = self.run_batch([float_trial], "PTQ's float run")
        if result is None:
            return []
        return [Trial("ptq", f"bits={b}", float_cfg, kind="ptq",
                      extra=(("bits", b), ("source", result["folder"]))) for b in spec.bits]

    def run(self) -> dict:
        self.work.mkdir(parents=True, exist_ok=True)
        self.prepare_data()
        say(f"[study] executor: {self.executor}"
            + (f" at {self.ray_address}" if self.executor == "ray" and self.ray_address else
               f" ({self.workers} workers)" if self.executor == "pool" else " (local instance)"))
        grid = grid_trials(self.study)
        results = self.run_batch(grid, "sweeps")
        for name, sweep in self.study.sweeps.items():
            if sweep.synthesize is not None:
                from qapflow.study.hardware import synthesize_sweep

                synthesize_sweep(self, name, sweep, [r for t, r in zip(grid, results) if t.group == name])
        if self.study.ptq is not None:
            self.run_batch(self.ptq_trials(), "PTQ")
        if self.study.bo:
            from qapflow.study.bo import run_bo

            for name, spec in self.study.bo.items():
                run_bo(self, name, spec)
        return self.finish()

    def finish(self) -> dict:
        record = {"study": self.study.study, "workdir": str(self.work), "executor": self.executor,
                  "data": self.data_path, "trials": list(self.results.values()),
                  "failures": self.failures}
        write_json(self.work / "study.json", record)
        write_summary(self.work, record["trials"])
        if self.study.report:
            from qapflow.report.study import write_study_report

            record["report"] = [str(p) for p in write_study_report(self.work)]
        return record


def run_study(path, smoke: bool = False, executor: str | None = None, ray_address: str | None = None,
              progress: bool = True) -> dict:
    """Run the study file at `path`; its paths (workdir, data.file) are relative to the current
    folder, as a flow's are."""
    study = load_study(path, smoke)
    return StudyRunner(study, Path.cwd(), executor, ray_address, progress).run()
