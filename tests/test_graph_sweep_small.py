"""The randomized graph sweep, small: 20 random conv/pool/residual/concat networks exact on every
row through the rtl backend (qonnx == IntGraph == da4ml's traced logic), three of them simulated
in Verilator too and two in hls4ml's C simulation (io_parallel and io_stream).
benchmarks/bench_any_graph.py runs the full 200+."""

import pytest

from qapflow.testing.graph_sweep import run_graph_case

SEEDS = range(1000, 1020)
SIMULATED = (1000, 1001, 1002)
HLS4ML = (1003, 1004)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_random_graph_is_exact_on_every_row(seed, tmp_path):
    row = run_graph_case(seed, tmp_path, n=500, simulate=seed in SIMULATED,
                         hls4ml=("parallel", "stream") if seed in HLS4ML else ())
    assert row["passed"], row
    assert row["qonnx_vs_int_graph"] == row["traced_logic_vs_int_graph"] == 0
    if seed in SIMULATED:
        assert row["verilator_vs_int_graph"] == row["verilator_vs_qonnx"] == 0 and row["latency_cycles"] >= 1
    if seed in HLS4ML:
        assert row["hls4ml_parallel_passed"] and row["hls4ml_parallel_vs_int_graph"] == row["hls4ml_parallel_vs_qonnx"] == 0
        assert row.get("hls4ml_stream_passed") or "hls4ml_stream_refused" in row
