"""Verification builds that scale (issue 21): the g++ builds' table form of the sparse kernels
computes exactly what the unrolled header computes, a header of another form is refused, a build
too large for g++ is named with its estimate, two processes building one key get one whole build,
and the library's threads give the single thread's integers.

Every comparison is exact (np.array_equal on integers)."""

import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest

import qapflow
from qapflow.common.errors import QapflowError
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim import gxx_library, kernel_tables
from qapflow.sim.csim import run_csim
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case

N = 600


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A pruned MLP with a neuron whose weights are all zero (an empty table row)."""
    case = MlpCase(n_in=10, input_bits=6, layers=[LayerCase(12, 4, 5, sparsity=0.6), LayerCase(8, 3, 4, sparsity=0.9),
                                                  LayerCase(3, 5, 6)], seed=21)
    model = build_case(case)
    w1 = next(i for i in model.graph.initializer if i.name == "w1")
    values = onnx.numpy_helper.to_array(w1).copy()
    values[0, :] = 0.0  # output 0 of layer 2: the bias alone
    w1.CopyFrom(onnx.numpy_helper.from_array(values, "w1"))
    root = tmp_path_factory.mktemp("build_speed")
    onnx.save(model, str(root / "mlp.onnx"))
    prj = qapflow.convert(root / "mlp.onnx", backend="hls4ml", output_dir=root / "prj")
    rng = np.random.default_rng(1)
    x = np.concatenate([probe_inputs(prj.int_model, N // 2), rng.normal(0, 3, (N // 2, 10))]).astype(np.float32)
    return prj, x


def _library(prj, monkeypatch, cache, mode: str, threads: int = 1):
    monkeypatch.setenv("QAPFLOW_CACHE", str(cache))
    monkeypatch.setenv(kernel_tables.MODE_ENV, mode)
    built = gxx_library.build_library(prj.path, prj.summary)
    return built, gxx_library.FirmwareLibrary(built.path, len(prj.int_model.layers[0].weight[0]),
                                              len(prj.int_model.layers[-1].weight), threads)


def test_tables_equal_unrolled_and_int_model(project, monkeypatch, tmp_path):
    prj, x = project
    x_int = prj.int_model.input_integers(x)[0]
    want = prj.int_model.forward_int(x_int)
    tables_build, tables = _library(prj, monkeypatch, tmp_path, "tables")
    unrolled_build, unrolled = _library(prj, monkeypatch, tmp_path, "unrolled")
    assert tables_build.path != unrolled_build.path  # the kernel form is part of the key
    assert np.array_equal(tables.predict_int(x_int), unrolled.predict_int(x_int))
    assert np.array_equal(tables.predict_int(x_int), want)
    staged = kernel_tables.tables_form((prj.path / "firmware" / kernel_tables.CODE_GEN).read_text())
    assert "acc[0] += " not in staged and "qapflow_start_" in staged


def test_threads_equal_one_thread(project, monkeypatch, tmp_path):
    prj, x = project
    x_int = prj.int_model.input_integers(x)[0]
    _, one = _library(prj, monkeypatch, tmp_path, "tables", threads=1)
    _, three = _library(prj, monkeypatch, tmp_path, "tables", threads=3)
    assert np.array_equal(one.predict_int(x_int), three.predict_int(x_int))
    assert np.array_equal(three.predict_int(x_int[:2]), one.predict_int(x_int[:2]))  # fewer samples than threads


def test_csim_testbench_tables_exact(project, monkeypatch, tmp_path):
    prj, x = project
    monkeypatch.setenv("QAPFLOW_CACHE", str(tmp_path))
    np.save(tmp_path / "x.npy", x)
    report = run_csim(prj.path, inputs_file=tmp_path / "x.npy", n=N)
    assert report["mismatches_vs_int_model"] == 0 and report["samples"] == N and report["passed"]


def test_other_kernel_form_refused(project):
    prj, _ = project
    text = (prj.path / "firmware" / kernel_tables.CODE_GEN).read_text()
    first = text.index("        acc[0] += ")
    line_end = text.index("\n", first)
    changed = text[:first] + "        acc[0] -= " + text[first + len("        acc[0] += "):]
    with pytest.raises(kernel_tables.KernelFormError, match="dense_sparse_.*body line"):
        kernel_tables.tables_form(changed)
    swapped = text.replace("acc[1] = (typename CONFIG_T::accum_t) biases[1];",
                           "acc[1] = (typename CONFIG_T::accum_t) biases[2];", 1)
    with pytest.raises(kernel_tables.KernelFormError, match="not the bias of output 1"):
        kernel_tables.tables_form(swapped)
    assert text[first:line_end] in text  # the untouched header is accepted
    kernel_tables.tables_form(text)


def _unrolled_statements(n: int) -> str:
    return "\n".join(f"        acc[0] += (typename CONFIG_T::accum_t)(data[{i}] * weights[{i}]);" for i in range(n))


def test_too_large_build_named(monkeypatch):
    monkeypatch.delenv("QAPFLOW_ALLOW_LONG_BUILD", raising=False)
    with pytest.raises(QapflowError, match=r"62,000 unrolled kernel statements \(about [\d,]+ s"):
        kernel_tables.check_build_size(_unrolled_statements(62_000))
    monkeypatch.setenv("QAPFLOW_ALLOW_LONG_BUILD", "1")
    with pytest.warns(UserWarning, match="62,000 unrolled kernel statements"):
        kernel_tables.check_build_size(_unrolled_statements(62_000))
    kernel_tables.check_build_size(_unrolled_statements(1_000))  # small: silent
    assert 1_000 < kernel_tables.estimated_seconds(62_000) < 3_000  # the measured 1,403 s


def test_two_processes_build_one_key(project, tmp_path):
    """Both processes get the one library (the second waits for the first's build), whole."""
    prj, x = project
    x_int = prj.int_model.input_integers(x)[0]
    script = textwrap.dedent(f"""
        import json, sys
        from qapflow.backends.project import read_project
        from qapflow.sim.gxx_library import build_library
        built = build_library({str(prj.path)!r}, read_project({str(prj.path)!r}))
        print(json.dumps(built.as_dict()))
    """)
    env = {**__import__("os").environ, "QAPFLOW_CACHE": str(tmp_path / "cache")}
    for old in (prj.path / gxx_library.LIBRARY_DIR).glob("lib_*.so"):
        old.unlink()
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [__import__("json").loads(p.communicate(timeout=600)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert results[0]["library"] == results[1]["library"]
    assert sorted(r["rebuilt"] for r in results) == [False, True]  # one build, one wait
    lib = gxx_library.FirmwareLibrary(results[0]["library"], x_int.shape[1], len(prj.int_model.layers[-1].weight))
    assert np.array_equal(lib.predict_int(x_int), prj.int_model.forward_int(x_int))
