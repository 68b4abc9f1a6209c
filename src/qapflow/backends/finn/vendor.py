"""FINN's vendor steps for a FINN project: IP stitching, XSI rtlsim and out-of-context
synthesis, run from the project's finn/build_config.json when Vivado is found; else skipped,
said plainly, with nothing pretended."""

from __future__ import annotations

import json
from pathlib import Path

from qapflow.backends.finn.runtime import finn_session, vendor_note, vivado_found
from qapflow.common.errors import QapflowError

CONFIG = "finn/build_config.json"
HARDWARE_MODEL = "finn/intermediate_models/hardware.onnx"


def load_vendor_config(prj: Path):
    """The project's FINN build configuration, as FINN reads it (checked without Vivado too)."""
    from qapflow.backends.finn.runtime import import_finn

    import_finn()
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    path = prj / CONFIG
    try:
        cfg = DataflowBuildConfig.from_json(path.read_text())
    except (OSError, ValueError, TypeError) as exc:
        raise QapflowError(f"{path}: not a FINN build configuration: {exc}") from exc
    cfg.output_dir = str(prj / "finn" / cfg.output_dir)
    return cfg


def run_vendor_steps(prj) -> dict:
    """Vivado's figures for the project (ooc_synth_and_timing.json), or why there are none."""
    prj = Path(prj).resolve()
    cfg = load_vendor_config(prj)
    if not vivado_found():
        return {"ran": False, "reason": vendor_note()}
    with finn_session(prj / "finn" / "vendor_codegen") as _:
        from finn.builder.build_dataflow import build_dataflow_cfg

        code = build_dataflow_cfg(str(prj / HARDWARE_MODEL), cfg)
    report = Path(cfg.output_dir) / "report" / "ooc_synth_and_timing.json"
    if code != 0 or not report.exists():
        raise QapflowError(f"FINN's vendor build failed (exit {code}); see {cfg.output_dir}/build_dataflow.log")
    return {"ran": True, "source": "Vivado out-of-context synthesis through FINN", **json.loads(report.read_text())}
