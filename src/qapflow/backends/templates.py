"""Locate and fill the project's C++/Tcl templates in hls_templates/."""

from __future__ import annotations

import os
from pathlib import Path

from qapflow.common.errors import QapflowError


def templates_dir() -> Path:
    env = os.environ.get("QAPFLOW_HLS_TEMPLATES")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "hls_templates"
    if not path.is_dir():
        raise QapflowError(f"hls_templates folder not found at {path}; set QAPFLOW_HLS_TEMPLATES")
    return path


def render(template: str, **values) -> str:
    return (templates_dir() / template).read_text().format(**values)
