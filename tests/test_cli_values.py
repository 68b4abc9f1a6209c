"""Every CLI value is checked before anything runs; strings that reach Tcl are names only."""

import subprocess
import sys

import pytest

from qapflow.cli import build_parser

INJECTION = 'xcu250"; [exec touch /tmp/qapflow_injected]; set x "'


@pytest.mark.parametrize("argv, message", [
    (["compile", "m.onnx", "--out", "p", "--clock-ns", "nan"], "--clock-ns: clock period nan"),
    (["compile", "m.onnx", "--out", "p", "--clock-ns", "0"], "--clock-ns: clock period 0.0"),
    (["compile", "m.onnx", "--out", "p", "--clock-ns", "-5"], "--clock-ns: clock period -5.0"),
    (["compile", "m.onnx", "--out", "p", "--pipeline-stages", "-4"], "--pipeline-stages: -4 is outside"),
    (["compile", "m.onnx", "--out", "p", "--reuse", "0"], "--reuse: 0 is outside"),
    (["compile", "m.onnx", "--out", "p", "--part", INJECTION], "--part: part .* is not a part name"),
    (["csim", "p", "--data", "j.h5", "--n", "-5"], "--n: -5 is outside"),
    (["compare", "r", "--out", "o", "--iterations", "2,-3"], "--iterations: -3 is outside"),
    (["train", "--out", "o", "--iterations", "-1"], "--iterations: -1 is outside"),
])
def test_bad_values_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    assert __import__("re").search(message, capsys.readouterr().err)


def test_a_part_name_cannot_inject_tcl_through_the_api(tmp_path):
    from qapflow.backends.hls4ml.backend import CompileOptions, compile_hls4ml
    from qapflow.common.errors import QapflowError

    with pytest.raises(QapflowError, match="not a part name"):
        compile_hls4ml(tmp_path / "m.onnx", tmp_path / "prj", CompileOptions(part=INJECTION))
    from qapflow.backends.rtl.backend import compile_rtl

    with pytest.raises(QapflowError, match="not a part name"):
        compile_rtl(tmp_path / "m.onnx", tmp_path / "prj", part=INJECTION)
    assert not (tmp_path / "prj").exists()


def test_a_missing_model_is_named_as_missing(tmp_path):
    result = subprocess.run([sys.executable, "-m", "qapflow.cli", "compile", str(tmp_path / "gone.onnx"),
                             "--out", str(tmp_path / "prj")], capture_output=True, text=True)
    assert result.returncode == 2 and "gone.onnx: file not found" in result.stderr
