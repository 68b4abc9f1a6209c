"""qapflow: quantization-aware pruning from training to verified FPGA firmware."""

__version__ = "0.1.0"

# the public API (qapflow.api), imported on first use so that `import qapflow` stays fast
_API = ("convert", "load_project", "reference_predict", "Project")
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        from qapflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'qapflow' has no attribute {name!r}")
