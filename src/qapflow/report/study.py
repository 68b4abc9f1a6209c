"""A study's report, by what the study holds: the paper's figures and Table 1 (report/paper.py)
when it has the precision sweep, the ordering study alone (report/ordering.py) when it has only
the ordering sweeps (flows/ordering_cnn.yaml), the hardware front (report/hardware.py) when it
verified designs."""

from __future__ import annotations

from pathlib import Path

from qapflow.common.errors import QapflowError
from qapflow.study.summary import read_study_trials


def write_study_report(work) -> list[Path]:
    work = Path(work)
    groups = {r["group"] for r in read_study_trials(work)}
    paths: list[Path] = []
    if "precision" in groups:
        from qapflow.report.paper import write_paper_report

        paths += write_paper_report(work)
    elif groups & {"ordering", "ordering_joint"}:  # report/ordering.py's GROUPS
        from qapflow.report.ordering import write_ordering_report

        out = work / "report"
        out.mkdir(parents=True, exist_ok=True)
        paths += write_ordering_report(read_study_trials(work), out)
    if any(work.glob("sweeps/*/verified.json")) or any(work.glob("bo/*/verified.json")):
        from qapflow.report.hardware import write_hardware_report

        paths += write_hardware_report(work)
    if not paths:
        raise QapflowError(f"{work / 'study.json'}: nothing to report: the paper's figures need the precision sweep "
                           "(flows/paper.yaml), the ordering study its sweeps (flows/ordering_cnn.yaml), the "
                           "hardware front verified designs (flows/hardware_search.yaml)")
    return paths
