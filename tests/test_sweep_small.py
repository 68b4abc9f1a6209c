"""The randomized sweep, small: 20 random MLPs, each exact on every row (qonnx == IntModel ==
hls4ml csim == RTL simulation). benchmarks/bench_any_mlp.py runs the full 200+."""

import pytest

from qapflow.testing.sweep import run_case

SEEDS = range(1000, 1020)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_random_mlp_is_exact_on_every_row(seed, tmp_path):
    row = run_case(seed, tmp_path, n=300, max_width=24)
    assert row["passed"], row
    assert row["qonnx_vs_int_model"] == row["hls4ml_vs_int_model"] == row["rtl_vs_int_model"] == 0
    assert row["hls4ml_equals_rtl"]
