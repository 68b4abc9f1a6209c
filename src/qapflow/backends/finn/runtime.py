"""Using FINN as a library, outside its CLI, on a machine that may lack Vivado.

FINN's builder imports its Vivado-simulator bindings (finn.xsi) at import time and reads a
settings object its CLI normally creates. Here both are set up knowingly: the settings are
FINN's dummy settings with a build folder of ours, and the XSI names are disabled when no
Vivado is found, so nothing pretends a vendor step ran.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import shutil
from pathlib import Path
from typing import Iterator

from qapflow.common.errors import QapflowError

FINN_VERSION = "1.6.1"
INSTALL_HINT = (f'the FINN backend needs finn-plus: pip install -e ".[finn]" && pip install --no-deps '
                f"finn-plus=={FINN_VERSION}")


FINN_LOGGERS = ("finn", "finn_logger")


class FinnUnavailable(QapflowError):
    pass


def vivado_found() -> bool:
    return shutil.which("vivado") is not None and bool(os.environ.get("XILINX_VIVADO"))


def vendor_note() -> str:
    if vivado_found():
        return "Vivado found: FINN's vendor steps (IP stitching, rtlsim via XSI, synthesis) can run"
    return ("Vivado not found: FINN's vendor steps (IP stitching, XSI rtlsim, out-of-context synthesis) "
            "skipped; the generated RTL is simulated with Verilator instead")


def import_finn():
    """Import FINN's builder steps; FinnUnavailable if finn-plus is not installed."""
    try:
        import finn  # noqa: F401
    except ImportError as exc:
        raise FinnUnavailable(INSTALL_HINT) from exc
    if not vivado_found():
        import finn.xsi

        # finn.xsi resolves these lazily by loading Vivado's simulator; without Vivado that
        # raises at import of the builder. Bound to None, they are plainly absent.
        for name in finn.xsi._LAZY_NAMES:
            setattr(finn.xsi, name, None)
    import finn.builder.build_dataflow_steps as steps

    return steps


@contextlib.contextmanager
def finn_session(build_dir: Path) -> Iterator[object]:
    """FINN's settings with its build folder (per-node code generation) at `build_dir`."""
    steps = import_finn()
    from finn.util import settings

    build_dir.mkdir(parents=True, exist_ok=True)
    previous = settings._SETTINGS
    settings.initialize_dummy_settings()
    settings.get_settings().finn_build_dir = build_dir.resolve()
    # FINN logs through loggers without handlers, which Python sends to sys.stderr, the
    # console even while a flow stage captures its output: give them the stage's stdout
    handler = logging.StreamHandler(sys.stdout)
    loggers = [logging.getLogger(name) for name in FINN_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield steps
    finally:
        settings._SETTINGS = previous
        for logger in loggers:
            logger.removeHandler(handler)


def rtllib_dir() -> Path:
    import finn

    return Path(finn.__file__).parent / "finn-rtllib"
