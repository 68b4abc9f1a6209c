"""Export: QONNX export of checkpoints, zero-folding transformations, the integer model."""
