"""Tables of result rows as files: CSV for programs, Markdown for people. Written atomically."""

from __future__ import annotations

import csv
from pathlib import Path

from qapflow.common.atomic import atomic_path, write_text


def write_csv(rows: list[dict], path: Path, columns) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_csv_and_markdown(rows: list[dict], columns, csv_path: Path, md_path: Path) -> list[Path]:
    """The same rows as CSV and as a Markdown table (floats to 4 significant digits)."""
    write_csv(rows, csv_path, columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows]
    write_text(md_path, "\n".join(lines) + "\n")
    return [Path(csv_path), Path(md_path)]
