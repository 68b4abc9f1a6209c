"""The one check of a simulation report that every exactness test makes."""


def assert_exact(report, samples: int, float32_graph_agrees: bool = True) -> None:
    """Every sample simulated, every output equal to the integer model's and to qonnx's exact
    execution; float32_graph_agrees: onnxruntime's own float32 run agrees at every quantizer too."""
    assert report["samples"] == samples
    assert report["mismatches_vs_int_model"] == 0
    assert report["qonnx"]["quantizer_mismatches"] == 0
    assert report["qonnx"]["output_mismatching_samples"] == 0
    assert report["qonnx"]["firmware_outputs_equal_graph_outputs"] == samples
    if float32_graph_agrees:
        assert report["qonnx"]["float32_graph"]["quantizer_mismatching_samples"] == 0
    assert report["passed"]
