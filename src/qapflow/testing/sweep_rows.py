"""What the random sweeps share (testing/sweep.py, testing/graph_sweep.py and their benchmarks):
one case as a result row, whatever happens in it, and rows kept on disk as they finish."""

from __future__ import annotations

import json
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm


@contextmanager
def case_row(row: dict, folder: Path, keep: bool = False):
    """The body fills `row`; an exception becomes its error (a failing case is a result to report,
    not the end of the sweep); the row gets its seconds; a passing case's folder is removed
    unless kept."""
    start = time.time()
    try:
        yield row
    except Exception as exc:
        row.update({"passed": False, "error": f"{type(exc).__name__}: {exc}"[:2000]})
    row["seconds"] = time.time() - start
    if not keep and row.get("passed"):
        shutil.rmtree(folder, ignore_errors=True)


def resumable_rows(out: Path, seeds: Iterable[int], run_one: Callable[[int], dict], desc: str) -> list[dict]:
    """Every seed's row: those already in OUT/rows.jsonl reused, the others run and appended one
    line each as they finish (a killed sweep loses nothing and resumes)."""
    rows_path = Path(out) / "rows.jsonl"
    done = {}
    if rows_path.exists():
        for line in rows_path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["seed"]] = row
    seeds = list(seeds)
    with rows_path.open("a") as f:
        for seed in tqdm(seeds, desc=desc, unit="case"):
            if seed in done:
                continue
            done[seed] = run_one(seed)
            f.write(json.dumps(done[seed]) + "\n")
            f.flush()
    return [done[s] for s in seeds]
