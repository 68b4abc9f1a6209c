"""The public Python API (issue 21): convert, compile, predict, verify, trace, reference_predict.

Every comparison is exact: integers with np.array_equal, floats by equality. The firmware's
outputs through the API equal `qapflow csim`'s (run_csim / run_verilator, what the command
calls) and qonnx's exact reference; a weight changed in both weights/*.h and .txt (so the csim's
file check passes) is counted by verify; the library is reused while its sources are unchanged
and rebuilt when a weight changes.
"""

import os
import re

import numpy as np
import onnx
import pytest
from qonnx.core.modelwrapper import ModelWrapper

import qapflow
from qapflow.common.errors import DataFormatError, QapflowError
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim.csim import check_weight_files, run_csim
from qapflow.sim.gxx_library import LibraryError
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case

N = 1000


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    case = MlpCase(n_in=8, input_bits=6, layers=[LayerCase(6, 4, 5, sparsity=0.3), LayerCase(3, 5, 6)], seed=4)
    path = tmp_path_factory.mktemp("api") / "mlp.onnx"
    onnx.save(build_case(case), str(path))
    return path


@pytest.fixture(scope="module")
def inputs(model_file, tmp_path_factory):
    """Probe inputs (saturation, rounding ties) plus random ones, saved as csim's --inputs."""
    prj = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path_factory.mktemp("probe") / "prj")
    rng = np.random.default_rng(0)
    x = np.concatenate([probe_inputs(prj.int_model, N // 2), rng.normal(0, 3, (N // 2, 8))]).astype(np.float32)
    path = tmp_path_factory.mktemp("inputs") / "x.npy"
    np.save(path, x)
    return x, path


def _weights(prj, name: str) -> tuple[str, list[str]]:
    text = (prj / "firmware" / "weights" / f"{name}.txt").read_text()
    return text, [v.strip() for v in text.split(",")]


def zero_a_weight(prj, name: str = "w2") -> int:
    """Set the first non-zero weight of NAME to 0 in weights/NAME.h and NAME.txt alike (zero is
    on every grid); returns its index."""
    _, values = _weights(prj, name)
    k = next(i for i, v in enumerate(values) if float(v) != 0.0)
    values[k] = "0.00"
    (prj / "firmware" / "weights" / f"{name}.txt").write_text(", ".join(values))
    header = prj / "firmware" / "weights" / f"{name}.h"
    text = header.read_text()
    head, tail = text.split("#else", 1)
    tail = re.sub(r"\{[^}]*\}", "{" + ", ".join(values) + "}", tail, count=1)
    header.write_text(head + "#else" + tail)
    return k


def test_hls4ml_predict_equals_csim_and_reference(model_file, inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("QAPFLOW_CACHE", str(tmp_path / "cache"))
    x, x_file = inputs
    prj = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "prj")
    built = prj.compile()
    assert built["rebuilt"] and built["library"].endswith(".so")
    y, y_int = prj.predict(x), prj.predict(x, integers=True)
    assert y_int.dtype == np.int64 and np.array_equal(y_int, prj.int_model.forward_int(prj.int_model.input_integers(x)[0]))
    report = run_csim(prj.path, inputs_file=x_file, n=N)  # what `qapflow csim --inputs` runs
    assert report["passed"] and report["mismatches_vs_int_model"] == 0
    assert np.array_equal(y_int, np.load(prj.path / "outputs_int.npy"))
    csim_y = np.load(prj.path / "outputs.npy")
    assert y.dtype == csim_y.dtype and np.array_equal(y, csim_y)
    ref = qapflow.reference_predict(model_file, x)
    assert y.dtype == ref.dtype and np.array_equal(y, ref)
    # the reference of the model given in memory is the same
    assert np.array_equal(qapflow.reference_predict(ModelWrapper(str(model_file)), x), ref)

    verified = prj.verify(x)
    assert verified["passed"] and verified["samples"] == N and verified["mismatches_vs_int_model"] == 0
    assert verified["qonnx"]["output_mismatching_samples"] == 0 and verified["library"] == built["library"]
    assert prj.report()["csim"]["tool"] == verified["tool"]

    trace = prj.trace(x)
    layers = prj.int_model.forward_layers(trace["input_integers"])
    assert [r["layer"] for r in trace["layers"]] == [0, 1]
    assert all(np.array_equal(r["int_model"], want) for r, want in zip(trace["layers"], layers))
    assert trace["layers"][-1]["mismatching_samples"] == 0 and np.array_equal(trace["layers"][-1]["firmware"], y_int)


def test_convert_takes_a_model_in_memory(model_file, inputs, tmp_path):
    x, _ = inputs
    prj = qapflow.convert(ModelWrapper(str(model_file)), backend="hls4ml", output_dir=tmp_path / "mem")
    assert (tmp_path / "mem.source.onnx").is_file()  # saved beside the project, named in its manifest
    assert prj.summary["source_model"] == str((tmp_path / "mem.source.onnx").resolve())
    assert np.array_equal(prj.predict(x), qapflow.reference_predict(model_file, x))
    assert np.array_equal(qapflow.load_project(tmp_path / "mem").predict(x, integers=True),
                          prj.predict(x, integers=True))


def test_rtl_predict_equals_csim_and_reference(model_file, inputs, tmp_path):
    from qapflow.sim.verilator import run_verilator

    x, x_file = inputs
    prj = qapflow.convert(model_file, backend="rtl", output_dir=tmp_path / "rtl")
    assert prj.compile()["binary"]
    assert prj.compile()["reused"]
    y, y_int = prj.predict(x), prj.predict(x, integers=True)
    report = run_verilator(prj.path, inputs_file=x_file, n=N)
    assert report["passed"]
    assert np.array_equal(y_int, np.load(prj.path / "outputs_int.npy"))
    assert np.array_equal(y, np.load(prj.path / "outputs.npy"))
    assert np.array_equal(y, qapflow.reference_predict(model_file, x))
    verified = prj.verify(x)
    assert verified["passed"] and verified["latency_cycles_measured"] == report["latency_cycles_measured"]


def test_verify_counts_a_weight_corrupted_in_both_files(model_file, inputs, tmp_path):
    x, _ = inputs
    prj = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "bad")
    zero_a_weight(prj.path)
    assert check_weight_files(prj.path) == 4  # the .txt files equal the arrays: the csim's check passes
    report = prj.verify(x)
    assert report["mismatches_vs_int_model"] > 0 and not report["passed"]
    assert report["first_mismatches_vs_int_model"]
    assert report["qonnx"]["firmware_outputs_equal_graph_outputs"] < N


def test_second_compile_reuses_the_library_and_a_changed_weight_rebuilds_it(model_file, inputs, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("QAPFLOW_CACHE", str(tmp_path / "cache"))
    x, _ = inputs
    prj = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "prj")
    first = prj.compile()
    assert first["rebuilt"] and not first["reused"]
    before = os.stat(first["library"])
    y_int = prj.predict(x, integers=True)
    again = qapflow.load_project(prj.path).compile()
    assert again["reused"] and again["reused_from"] == "project" and again["build_seconds"] == 0.0
    assert again["library"] == first["library"]
    after = os.stat(first["library"])
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    zero_a_weight(prj.path)
    changed = prj.compile()
    assert changed["rebuilt"] and changed["library"] != first["library"]
    assert not np.array_equal(prj.predict(x, integers=True), y_int)  # the new library has the new weight
    # another project of the same firmware takes it from the shared cache
    other = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "other").compile()
    assert other["reused_from"] == "shared cache" and os.path.basename(other["library"]) == \
        os.path.basename(first["library"])


def test_the_library_reads_no_weight_text_files(model_file, inputs, tmp_path):
    x, _ = inputs
    prj = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "prj")
    want = prj.predict(x, integers=True)
    for txt in (prj.path / "firmware" / "weights").glob("*.txt"):
        txt.unlink()
    fresh = qapflow.load_project(prj.path)
    assert fresh.compile()["reused_from"] == "project"  # the text files are not among its sources
    assert np.array_equal(fresh.predict(x, integers=True), want)
    with pytest.raises(QapflowError, match=r"\w+\.txt: missing"):  # verify keeps the csim's file check
        fresh.verify(x)


def test_a_weight_file_of_another_layout_is_named(model_file, tmp_path):
    prj = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "prj")
    header = prj.path / "firmware" / "weights" / "b4.h"
    header.write_text(header.read_text().replace("#else", "#elif 1"))
    with pytest.raises(LibraryError, match=r"b4\.h: expected one"):
        prj.compile()


def test_bad_calls_are_named(model_file, inputs, tmp_path):
    x, _ = inputs
    with pytest.raises(QapflowError, match=r"unknown option\(s\) \['pipeline_stages'\]"):
        qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "a", pipeline_stages=2)
    with pytest.raises(QapflowError, match="backend 'vhdl'"):
        qapflow.convert(model_file, backend="vhdl", output_dir=tmp_path / "b")
    with pytest.raises(QapflowError, match="no such model file"):
        qapflow.convert(tmp_path / "missing.onnx", output_dir=tmp_path / "c")
    with pytest.raises(QapflowError, match="not a qapflow project"):
        qapflow.load_project(tmp_path)
    prj = qapflow.convert(model_file, backend="hls4ml", output_dir=tmp_path / "d")
    with pytest.raises(DataFormatError, match=r"Project.predict\(x\): inputs of shape \[4, 7\]"):
        prj.predict(np.zeros((4, 7), np.float32))
    bad = x[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(DataFormatError, match="row 1, column 2"):
        prj.predict(bad)
    with pytest.raises(QapflowError, match="RTL project"):
        qapflow.convert(model_file, backend="rtl", output_dir=tmp_path / "e").synth(tool="vitis")


def test_finn_predict_equals_csim_and_reference(model_file, inputs, tmp_path):
    from qapflow.sim.finn_sim import run_finn_csim

    x, x_file = inputs
    prj = qapflow.convert(model_file, backend="finn", output_dir=tmp_path / "finn", target_fps=50_000_000,
                          part="xc7z020clg400-1")
    prj.compile()
    assert prj.compile()["reused"]
    y, y_int = prj.predict(x), prj.predict(x, integers=True)
    report = run_finn_csim(prj.path, inputs_file=x_file, n=N, python_samples=50)
    assert report["passed"]
    assert np.array_equal(y_int, np.load(prj.path / "outputs_int.npy"))
    assert np.array_equal(y, np.load(prj.path / "outputs.npy"))
    assert np.array_equal(y, qapflow.reference_predict(model_file, x))
    verified = prj.verify(x)
    assert verified["passed"] and verified["mismatches_vs_int_model"] == 0
