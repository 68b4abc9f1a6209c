"""qapflow: quantization-aware pruning from training to verified FPGA firmware."""

__version__ = "0.1.0"
