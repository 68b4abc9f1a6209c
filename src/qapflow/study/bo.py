"""Bayesian optimisation with Ax (its Client API), through the study's executor: over the hidden
widths (the paper's), or over any RunConfig keys (`space:`: bits per layer, input bits, sparsity,
the pruning criterion, ...).

`val_loss`: the paper's single objective (section 3.3.2), the best validation loss, minimised.
`accuracy_bops`: test accuracy against BOPs, a Pareto front. `accuracy_luts`: test accuracy
against the cost model's LUTs of a trial's smallest pruning iteration within a point of its best
accuracy (study/hardware.py); with `verify:` the front over every iteration of every trial is then
put through the hardware path. Ax 1.3's modular BoTorch step picks
the acquisition by the problem (ax/generators/torch/botorch_modular/utils.py): qLogNEHVI for two
objectives, qLogNEI (the log form of the paper's expected improvement) for one. Every trial is a full training (a study trial, cached by its settings), evaluated on
the test split like every other. Rounds of `workers` trials run in parallel. The trial record
(bo/NAME/trials.json: parameters, status, outcome) is written before and after each round, so a
killed study rebuilds the Ax client from it and reruns only unfinished trials.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from qapflow.common.atomic import write_json
from qapflow.common.mappings import merge
from qapflow.common.tables import write_csv
from qapflow.study.spec import BayesOpt, Trial, check_config, set_dotted

WIDTHS = ("w1", "w2", "w3")


def _quiet_ax() -> None:
    """Ax logs every trial at INFO and BoTorch warns about its own internals: keep the console
    to the progress bars (the trial record holds everything)."""
    from ax.utils.common.logger import set_ax_logger_levels

    set_ax_logger_levels(logging.WARNING)  # Ax's module loggers carry their own INFO level
    for module in ("ax", "botorch", "linear_operator", "gpytorch"):
        warnings.filterwarnings("ignore", module=module)


TRIAL_MARGIN = 0.01
OBJECTIVES = {"val_loss": "-val_loss", "accuracy_bops": "accuracy, -bops", "accuracy_luts": "accuracy, -luts"}


def parameter_keys(spec: BayesOpt) -> dict[str, str]:
    """Ax parameter name -> dotted RunConfig key."""
    if not spec.space:
        return {w: f"model.widths.{i}" for i, w in enumerate(WIDTHS)}
    return {key.replace(".", "_"): key for key in spec.space}


def _parameters(spec: BayesOpt) -> list:
    from ax import ChoiceParameterConfig, RangeParameterConfig

    if not spec.space:
        return [RangeParameterConfig(name=w, bounds=(spec.width_min, spec.width_max), parameter_type="int")
                for w in WIDTHS]
    out = []
    for name, key in parameter_keys(spec).items():
        p = spec.space[key]
        if p.choices is not None:
            kind = {bool: "bool", int: "int", float: "float"}.get(type(p.choices[0]), "str")
            out.append(ChoiceParameterConfig(name=name, values=list(p.choices), parameter_type=kind,
                                             is_ordered=kind in ("int", "float")))
        else:
            out.append(RangeParameterConfig(name=name, bounds=(p.min, p.max), parameter_type=p.type))
    return out


def _client(spec: BayesOpt):
    from ax import Client

    _quiet_ax()
    client = Client(random_seed=spec.seed)
    client.configure_experiment(parameters=_parameters(spec))
    client.configure_optimization(objective=OBJECTIVES[spec.objective])
    client.configure_generation_strategy(initialization_budget=spec.initial_trials,
                                         initialization_random_seed=spec.seed)
    return client


def _outcome(spec: BayesOpt, result: dict) -> dict:
    last = result["summary"]["iterations"][-1]
    if spec.objective == "val_loss":
        return {"val_loss": result["val_loss"]}
    if spec.objective == "accuracy_luts":
        # a trial's design: its smallest pruning iteration within a point of its own best accuracy
        # (the last iteration is often one pruned too far, collapsed to constant outputs); the
        # deployed model's accuracy (BN folded where it was), as exported
        rows = result["hardware"]
        best = max(r["accuracy"] for r in rows)
        chosen = min((r for r in rows if r["accuracy"] >= best - TRIAL_MARGIN), key=lambda r: r["LUT"])
        return {"accuracy": chosen["accuracy"], "luts": float(chosen["LUT"])}
    return {"accuracy": last["accuracy"], "bops": last["bops"]}


def _plain_parameter(value):
    """Ax's numpy scalars as plain JSON values."""
    return value.item() if hasattr(value, "item") else value


def _trial(runner, name: str, spec: BayesOpt, params: dict) -> Trial:
    config = merge(runner.study.base, spec.base)
    if not spec.space:
        config = merge(config, {"model": {"widths": [int(params[w]) for w in WIDTHS]}})
        label = "x".join(str(int(params[w])) for w in WIDTHS)
    else:
        for pname, key in parameter_keys(spec).items():
            config = set_dotted(config, key, params[pname])
        label = ",".join(f"{key.replace('model.', '')}={params[p]:.3g}" if isinstance(params[p], float)
                         else f"{key.replace('model.', '')}={params[p]}" for p, key in parameter_keys(spec).items())
    check_config(config, f"bo.{name} [{label}]")
    extra = (("cost_model", True),) if spec.objective == "accuracy_luts" else ()
    return Trial(f"bo_{name}", label, config, extra=extra)


def run_bo(runner, name: str, spec: BayesOpt) -> dict:
    folder = runner.work / "bo" / name
    record_path = folder / "trials.json"
    records: list[dict] = json.loads(record_path.read_text()) if record_path.exists() else []
    client = _client(spec)
    for rec in records:  # replay what a previous run suggested (finished ones are not rerun)
        rec["index"] = client.attach_trial(parameters=rec["parameters"])
        if rec["status"] == "done":
            client.complete_trial(rec["index"], raw_data=rec["outcome"])
        elif rec["status"] == "failed":
            client.mark_trial_failed(rec["index"], rec.get("error"))
    while True:
        pending = [r for r in records if r["status"] == "pending"]
        if not pending:
            remaining = spec.trials - len(records)
            if remaining <= 0:
                break
            for index, params in client.get_next_trials(max_trials=min(runner.workers, remaining)).items():
                pending.append({"index": index, "parameters": {k: _plain_parameter(v) for k, v in params.items()},
                                "status": "pending"})
            records += pending
            write_json(record_path, records)
        trials = [_trial(runner, name, spec, r["parameters"]) for r in pending]
        for rec, trial, result in zip(pending, trials, runner.run_batch(trials, f"BO {name}")):
            rec["folder"] = trial.folder(runner.data_digest)
            if result is None:
                rec.update(status="failed", error=runner.failures.get(rec["folder"], "failed"))
                client.mark_trial_failed(rec["index"], rec["error"])
            else:
                rec.update(status="done", outcome=_outcome(spec, result))
                client.complete_trial(rec["index"], raw_data=rec["outcome"])
        write_json(record_path, records)
    # every finished trial in the study's record, those of an earlier run too (cached: none reruns)
    runner.run_batch([_trial(runner, name, spec, r["parameters"]) for r in records if r["status"] == "done"],
                     f"BO {name}")
    result = write_bo_results(folder, client, spec, records)
    if spec.objective == "accuracy_luts" and spec.verify is not None:
        from qapflow.study.hardware import verify_front

        result["verified"] = verify_front(runner, name, spec, records)
        write_json(folder / "result.json", result)
    return result


def write_bo_results(folder: Path, client, spec: BayesOpt, records: list[dict]) -> dict:
    done = [r for r in records if r["status"] == "done"]
    if spec.objective == "val_loss":
        params, values, index, _ = client.get_best_parameterization(use_model_predictions=False)
        best = {"index": index, "parameters": dict(params), "outcome": {k: _plain(v) for k, v in values.items()}}
        result = {"objective": spec.objective, "best": best}
    else:
        front = client.get_pareto_frontier(use_model_predictions=False)
        result = {"objective": spec.objective, "pareto": [
            {"index": i, "parameters": dict(p), "outcome": {k: _plain(v) for k, v in m.items()}}
            for p, m, i, _ in front]}
    result["trials"] = len(records)
    result["finished"] = len(done)
    write_json(folder / "result.json", result)
    keys = sorted({k for r in done for k in r["outcome"]})
    rows = [{"index": r["index"], **r["parameters"], "status": r["status"],
             **{k: r.get("outcome", {}).get(k, "") for k in keys}, "folder": r.get("folder", "")} for r in records]
    write_csv(rows, folder / "trials.csv", ["index", *parameter_keys(spec), "status", *keys, "folder"])
    return result


def _plain(value):
    """Ax reports (mean, sem) pairs or floats: the mean as a float."""
    return float(value[0]) if isinstance(value, (tuple, list)) else float(value)
