"""Graph passes over QONNX models, each a qonnx Transformation (apply -> (model, changed))."""
