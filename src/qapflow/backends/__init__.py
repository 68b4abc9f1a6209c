"""Backends: QONNX + IntModel -> a firmware project folder (hls4ml today)."""
