"""Table 1 of the paper from a study's own trials: nominal, pruning + PTQ, QAT, QAP.

Which trial stands for each approach (the paper's choices, made by rule on our numbers):
- nominal: 32-bit float, unpruned (the precision sweep's 32-bit FT trial, iteration 0);
- pruning + PTQ: the fewest PTQ bits whose last (most pruned) iteration is within `tolerance`
  of the nominal accuracy (else the most bits);
- QAT: 6-bit, unpruned (the 6-bit FT trial, iteration 0);
- QAP: the most pruned iteration of the 6-bit FT trial within `tolerance` of QAT's accuracy.
BOPs in both conventions (16-bit quantized input, as the firmware takes it; and a 32-bit float
input as the paper counts it); the ratios are of the float-input BOPs, each row to each
reference, beside the paper's (25x, 3.3x, 2.2x for QAP).
"""

from __future__ import annotations

from pathlib import Path

from qapflow.common.tables import write_csv_and_markdown

PAPER_RATIOS = {"QAP": {"nominal": 25.0, "ptq": 3.3, "qat": 2.2}}
COLUMNS = ("approach", "trial", "precision", "sparsity", "accuracy", "bkg_eff_mean", "bops", "bops_float_input",
           "x_nominal", "x_ptq", "x_qat", "paper_x_nominal", "paper_x_ptq", "paper_x_qat")


def _find(results: list[dict], group: str, label: str) -> dict | None:
    return next((r for r in results if r["group"] == group and r["label"] == label), None)


def _row(name: str, result: dict, iteration: dict, precision) -> dict:
    from qapflow.data.schema import CLASSES

    return {"approach": name, "trial": f"{result['group']}/{result['label']} iter {iteration['iteration']}",
            "precision": precision, "sparsity": iteration["sparsity"], "accuracy": iteration["accuracy"],
            "bkg_eff_mean": sum(iteration[f"bkg_eff_{c}"] for c in CLASSES) / len(CLASSES),
            "bops": iteration["bops"], "bops_float_input": iteration["bops_float_input"]}


def table1_rows(results: list[dict], tolerance: float = 0.01) -> list[dict]:
    ft32, ft6 = _find(results, "precision", "bits=32,prune=ft"), _find(results, "precision", "bits=6,prune=ft")
    if ft32 is None or ft6 is None:
        raise ValueError("Table 1 needs the precision sweep's 32-bit and 6-bit FT trials")
    nominal = _row("nominal", ft32, ft32["summary"]["iterations"][0], "32-bit float")
    qat = _row("QAT", ft6, ft6["summary"]["iterations"][0], "6-bit")
    qap_iter = max((it for it in ft6["summary"]["iterations"] if it["accuracy"] >= qat["accuracy"] - tolerance),
                   key=lambda it: it["sparsity"])
    qap = _row("QAP", ft6, qap_iter, "6-bit")
    rows = [nominal]
    ptq = sorted((r for r in results if r["group"] == "ptq"), key=lambda r: r["bits"])
    if ptq:
        good = [r for r in ptq if r["summary"]["iterations"][-1]["accuracy"] >= nominal["accuracy"] - tolerance]
        chosen = good[0] if good else ptq[-1]
        rows.append(_row("pruning + PTQ", chosen, chosen["summary"]["iterations"][-1], f"{chosen['bits']}-bit"))
    rows += [qat, qap]
    refs = {"nominal": nominal, "ptq": rows[1] if ptq else None, "qat": qat}
    for row in rows:
        for key, ref in refs.items():
            row[f"x_{key}"] = ref["bops_float_input"] / row["bops_float_input"] if ref else ""
            row[f"paper_x_{key}"] = PAPER_RATIOS.get(row["approach"], {}).get(key, "")
    return rows


def write_table1(rows: list[dict], out: Path) -> list[Path]:
    return write_csv_and_markdown(rows, COLUMNS, out / "table1.csv", out / "table1.md")
