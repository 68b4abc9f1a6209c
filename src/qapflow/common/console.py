"""Quiet by default: third-party output goes to a stage's log file, the console gets one line
per stage and the progress bars.

Libraries print banners (FastJet, from C++), warnings (Brevitas, qonnx, torch.onnx) and dumps;
while a stage runs, the process's stdout and stderr file descriptors point at its log, Python
warnings are written there too, and only `say()` and tqdm bars reach the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import Iterator

_console = None  # a text stream to the real terminal while a stage is captured


def say(message: str) -> None:
    """A line for the person at the console (never captured)."""
    print(message, file=_console or sys.stdout, flush=True)


@contextlib.contextmanager
def captured(log: Path, verbose: bool = False) -> Iterator[None]:
    """Send everything but say() and progress bars to `log` (append) while the block runs."""
    global _console
    if verbose:
        yield
        return
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved_err), "w", buffering=1)
    with open(log, "a") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        old_stdout, old_stderr, old_show = sys.stdout, sys.stderr, warnings.showwarning
        sys.stdout = os.fdopen(os.dup(1), "w", buffering=1)
        sys.stderr = console  # tqdm writes its bars to sys.stderr: keep them on the terminal
        warnings.showwarning = lambda msg, cat, fn, ln, file=None, line=None: sink.write(
            warnings.formatwarning(msg, cat, fn, ln, line))
        _console = console
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stdout.close()
            sys.stdout, sys.stderr, warnings.showwarning = old_stdout, old_stderr, old_show
            _console = None
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            console.close()
