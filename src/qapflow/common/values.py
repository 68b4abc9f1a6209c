"""Checks of settings that several stages take (the flow schema, the CLI, every backend): FPGA
part names, clock periods, and the Yosys family a part belongs to."""

from __future__ import annotations

import math
import re

from qapflow.common.errors import QapflowError

PART_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{2,63}", re.IGNORECASE)
DEFAULT_PART = "xcu250-figd2104-2L-e"


class BadValue(QapflowError, ValueError):
    """A setting out of its range or pattern (a ValueError too, for pydantic and argparse)."""


def check_part(part: str) -> str:
    """An FPGA part name, which reaches Tcl scripts: letters, digits, '-', '_' and '.' only."""
    if not isinstance(part, str) or not PART_PATTERN.fullmatch(part):
        raise BadValue(f"part {part!r} is not a part name (letters, digits, '-', '_', '.'; 3-64 characters)")
    return part


def check_clock(clock_ns: float) -> float:
    if not isinstance(clock_ns, (int, float)) or not math.isfinite(clock_ns) or not 0.1 <= clock_ns <= 1000:
        raise BadValue(f"clock period {clock_ns!r} ns must be a finite number from 0.1 to 1000")
    return float(clock_ns)


def family_of(part: str) -> str:
    """Yosys synth_xilinx family for a Xilinx part: 7-series, UltraScale or UltraScale+."""
    p = part.lower()
    if p.startswith("xc7"):
        return "xc7"
    if p.startswith(("xczu", "xcu2", "xcu5", "xck26", "xcau")) or re.match(r"xc(vu|ku)\d+p", p):
        return "xcup"
    if p.startswith(("xcvu", "xcku")):
        return "xcu"
    raise ValueError(f"part {part!r}: no Yosys family known for it (xc7*, UltraScale, UltraScale+)")
