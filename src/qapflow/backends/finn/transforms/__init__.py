"""Graph passes of the FINN backend, one per file, qonnx Transformation style."""
