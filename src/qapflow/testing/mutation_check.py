"""One mutated file through every backend's compile, and what came of it.

Outcomes of one compile: `accepted` (a project, its integer model equal to qonnx's execution
of the file on the probe inputs), `clean_error` (a QapflowError whose message names the file),
`unnamed_error` (a QapflowError that does not) or `traceback` (any other exception). A case's
verdict from its compiles and what its mutation should give: `correct_acceptance` (a valid
file compiled exactly), `clean_error`, `silent_acceptance` (an invalid file compiled),
`traceback`, `unnamed_error`, `int_model_mismatch` (prepare found its integer model unequal
to qonnx's execution: a qapflow bug on a valid file) or `backends_disagree`.

Every backend starts from backends.frontend.prepare, whose first step is export.ingest, whose
first step is export.validate: a file refused there is refused by hls4ml, RTL and FINN with the
same message. hls4ml and RTL call prepare with the same arguments; FINN's differ (thresholds
everywhere, dead neurons folded), so FINN's own prepare runs on every file, and its whole
compile (tens of seconds) on the accepted ones chosen by the caller.
"""

from __future__ import annotations

import shutil
import time
import traceback
from pathlib import Path

from qapflow.common.errors import QapflowError
from qapflow.testing.bad_models import Case

BACKENDS = ("hls4ml", "rtl")


def attempt(path: Path, run) -> dict:
    """Run one compile; its outcome, message and seconds."""
    start = time.perf_counter()
    try:
        summary = run()
    except QapflowError as exc:
        kind = "clean_error" if str(path) in str(exc) else "unnamed_error"
        return {"outcome": kind, "error": str(exc)[:400], "type": type(exc).__name__,
                "seconds": round(time.perf_counter() - start, 3)}
    except Exception as exc:  # noqa: BLE001 - what the benchmark counts
        return {"outcome": "traceback", "error": f"{type(exc).__name__}: {exc}"[:400], "type": type(exc).__name__,
                "traceback": traceback.format_exc(limit=6)[-1500:], "seconds": round(time.perf_counter() - start, 3)}
    check = summary.get("int_model_vs_qonnx") or summary.get("check") or {}
    exact = check.get("quantizer_mismatches") == 0 and check.get("output_mismatching_samples") == 0
    return {"outcome": "accepted" if exact else "inexact_acceptance", "probe_samples": check.get("samples"),
            "seconds": round(time.perf_counter() - start, 3)}


def compile_on(backend: str, path: Path, out: Path, probe: int) -> dict:
    if backend == "hls4ml":
        from qapflow.backends.hls4ml.backend import compile_hls4ml

        return attempt(path, lambda: compile_hls4ml(path, out, probe=probe))
    if backend == "rtl":
        from qapflow.backends.rtl.backend import compile_rtl

        return attempt(path, lambda: compile_rtl(path, out, probe=probe))
    if backend == "finn-frontend":
        from qapflow.backends.frontend import prepare

        def finn_frontend():  # what compile_finn calls first, with its arguments
            front = prepare(path, probe=probe, activations="thresholds", fold_dead=True)
            return {"int_model_vs_qonnx": front.check}

        return attempt(path, finn_frontend)
    if backend == "finn":
        from qapflow.backends.finn.build import FinnOptions, compile_finn

        return attempt(path, lambda: compile_finn(path, out, FinnOptions(probe=probe)))
    raise ValueError(backend)


MISMATCH = "the integer model differs from qonnx"  # prepare's own check: a qapflow bug, not a refusal


def verdict(expect: str, results: dict[str, dict]) -> str:
    """The worst of the backends' outcomes, judged against what the mutation should give."""
    outcomes = {r["outcome"] for r in results.values()}
    accepted = {b for b, r in results.items() if r["outcome"] in ("accepted", "inexact_acceptance")}
    for bad in ("traceback", "unnamed_error"):
        if bad in outcomes:
            return bad
    if (accepted and expect == "invalid") or "inexact_acceptance" in outcomes:
        return "silent_acceptance"
    if any(MISMATCH in r.get("error", "") for r in results.values()):
        return "int_model_mismatch"
    if len({b in accepted for b in BACKENDS if b in results}) > 1:
        return "backends_disagree"  # hls4ml and RTL run the same prepare: they must agree
    return "correct_acceptance" if accepted else "clean_error"


def check_case(case: Case, work: Path, probe: int = 500, finn_full: bool = False,
               backends: tuple[str, ...] = (*BACKENDS, "finn-frontend")) -> dict:
    """Every backend's compile of one mutated file; the projects are deleted after."""
    results = {}
    for backend in backends + (("finn",) if finn_full else ()):
        out = work / f"{case.index:05d}_{backend}"
        results[backend] = compile_on(backend, case.path, out, probe)
        shutil.rmtree(out, ignore_errors=True)
    return {"case": case.index, "seed_model": case.seed_model, "mutation": case.mutation.name,
            "family": case.mutation.family, "expect": case.mutation.expect, "file": case.path.name,
            "verdict": verdict(case.mutation.expect, results), "backends": results}
