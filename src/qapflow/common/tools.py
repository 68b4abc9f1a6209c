"""Run external tools (g++, Verilator, Yosys, vendor tools) with a timeout and a kept log."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from qapflow.common.errors import QapflowError


class ToolNotFound(QapflowError):
    pass


class ToolFailed(QapflowError):
    pass


def require_tool(name: str, hint: str = "") -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolNotFound(f"{name} not found on PATH{': ' + hint if hint else ''}")
    return path


def run_tool(cmd: list[str], cwd, log: Path, timeout_s: float, env: dict | None = None) -> float:
    """Run `cmd` in `cwd`, output appended to `log`; return seconds; raise ToolFailed on error."""
    if env is None or "PATH" not in env:
        require_tool(cmd[0])
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(map(str, cmd))}\n")
        f.flush()
        try:
            result = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout_s,
                                    env=env)
        except subprocess.TimeoutExpired as exc:
            raise ToolFailed(f"{cmd[0]} timed out after {timeout_s:.0f} s (log: {log})") from exc
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise ToolFailed(f"{cmd[0]} failed with exit code {result.returncode} (log: {log}):\n{tail}")
    return time.time() - start
