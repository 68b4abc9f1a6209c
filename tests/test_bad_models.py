"""Every mutation of the benchmark's catalogue once (benchmarks/bench_bad_models.py), the seed
models in turn, through the hls4ml and RTL compiles: no traceback, no invalid file accepted."""

import collections

import pytest

from qapflow.testing.bad_models import mutated_files, write_seed_models
from qapflow.testing.model_mutations import MUTATIONS
from qapflow.testing.mutation_check import check_case


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_models")
    seeds = write_seed_models(root / "seeds")
    # case 70k: mutation k, on seed model k mod 4 (see mutated_files)
    cases = mutated_files(seeds, [70 * k for k in range(len(MUTATIONS))], root / "files")
    assert len({c.mutation.name for c in cases}) == len(MUTATIONS) and len({c.seed_model for c in cases}) == len(seeds)
    return [check_case(c, root / "projects", probe=200, backends=("hls4ml", "rtl")) for c in cases]


def test_no_traceback_and_no_invalid_file_accepted(verdicts):
    counts = collections.Counter(v["verdict"] for v in verdicts)
    bad = [(v["mutation"], v["seed_model"], v["verdict"], v["backends"]) for v in verdicts
           if v["verdict"] in ("traceback", "silent_acceptance", "unnamed_error", "backends_disagree")]
    assert not bad, (counts, bad)
    for v in verdicts:
        if v["expect"] == "invalid":  # refused, with the file named, by both backends
            assert v["verdict"] == "clean_error", v
            assert all(b["outcome"] == "clean_error" for b in v["backends"].values()), v


def test_files_still_valid_after_their_mutation_compile_exactly(verdicts):
    """The negatives: a positive scale changed, another bit width or rounding mode, a symbolic
    batch, an old opset raised by onnx's converter, ... compile, equal to qonnx's execution."""
    valid = [v for v in verdicts if v["expect"] in ("valid", "either")]
    accepted = [v for v in valid if v["verdict"] == "correct_acceptance"]
    assert len(valid) >= 12
    # the one known exception: an unsigned narrow quantizer on the shift-and-clip path, whose
    # mismatch the compile-time check catches (it is refused, naming the file, never compiled)
    others = [v for v in valid if v not in accepted]
    assert all(v["verdict"] == "int_model_mismatch" and v["mutation"] == "narrow_flip" for v in others), others
    for v in accepted:
        assert all(b["outcome"] == "accepted" and b["probe_samples"] == 200 for b in v["backends"].values()), v
