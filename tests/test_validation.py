"""Broken files get one clear error naming the file, the node and the field (export/validate.py);
csim inputs with NaN/inf are named by row and column; project paths with any characters work."""

import copy
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qapflow.backends.hls4ml.backend import compile_hls4ml
from qapflow.backends.rtl.backend import compile_rtl
from qapflow.cli import main
from qapflow.common.errors import DataFormatError
from qapflow.export.validate import validate_model
from qapflow.intmodel.probe import probe_inputs
from qapflow.sim.csim import run_csim
from qapflow.sim.report import load_int_model
from qapflow.sim.vectors import array_inputs
from qapflow.sim.verilator import run_verilator
from qapflow.testing.bad_models import brevitas_float_scale
from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case

PROBE = 300


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A Brevitas export of a float-scale MLP (qapflow's network, scheme scaled-int, BN), as a proto."""
    path = brevitas_float_scale(tmp_path_factory.mktemp("valid") / "valid.onnx")
    return onnx.load(str(path))


def node(model, op, k=0):
    return [n for n in model.graph.node if n.op_type == op][k]


def init(model, name):
    return next(t for t in model.graph.initializer if t.name == name)


def set_init(model, name, value):
    init(model, name).CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), name))


def set_param(position, value, k=2):
    """Quant node k's input `position` (1 scale, 2 zero point, 3 bit width), its own copy."""
    def mutate(m):
        q = node(m, "Quant", k)
        old = numpy_helper.to_array(init(m, q.input[position]))
        m.graph.initializer.append(numpy_helper.from_array(np.full_like(old, value), "mutated"))
        q.input[position] = "mutated"
    return mutate


def set_attr(name, value, k=2):
    def mutate(m):
        q = node(m, "Quant", k)
        kept = [a for a in q.attribute if a.name != name]
        del q.attribute[:]
        q.attribute.extend([*kept, helper.make_attribute(name, value)])
    return mutate


def poke_weight(value):
    def mutate(m):
        name = node(m, "Quant", 1).input[0]
        w = numpy_helper.to_array(init(m, name)).copy()
        w[2, 3] = value
        set_init(m, name, w)
    return mutate


def set_opset(version):
    def mutate(m):
        next(o for o in m.opset_import if o.domain == "").version = version
    return mutate


def input_dim(axis, param=None, value=None):
    def mutate(m):
        dim = m.graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        if param is not None:
            dim.dim_param = param
        else:
            dim.dim_value = value
    return mutate


def first_bias_wrong(m):
    gemm = node(m, "Gemm")
    set_init(m, gemm.input[2], np.zeros(3))
    next(i for i in m.graph.input if i.name == gemm.input[2]).CopyFrom(
        helper.make_tensor_value_info(gemm.input[2], TensorProto.FLOAT, [3]))


def variance_negative(m):
    name = node(m, "BatchNormalization").input[4]
    value = numpy_helper.to_array(init(m, name)).copy()
    value[1] = -2.0
    set_init(m, name, value)


def duplicate_output(m):
    node(m, "Relu").output[0] = node(m, "Gemm").output[0]


def cycle(m):
    node(m, "Quant", 0).input[0] = node(m, "Relu").output[0]


def unsorted(m):
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes[::-1])


def unused_input(m):
    m.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 4]))


def output_not_made(m):
    m.graph.output[0].name = "nowhere"


def ir_future(m):
    m.ir_version = onnx.IR_VERSION + 1


# (mutation, patterns the message must hold: the node and op, the field, the problem)
DEFECTS = {
    "weight NaN": (poke_weight(np.nan), [r"node node__symbolic_\d \(Quant\)", r"constant 'slice_\d'",
                                         r"1 NaN value\(s\), first at \[2, 3\]"]),
    "weight inf": (poke_weight(np.inf), [r"\(Quant\)", r"1 inf value", r"\[2, 3\]"]),
    "rounding mode unknown": (set_attr("rounding_mode", "STOCHASTIC"),
                              [r"node node__symbolic_2 \(Quant\)", "attribute rounding_mode", "'STOCHASTIC'",
                               "HALF_EVEN"]),
    "rounding mode not a string": (set_attr("rounding_mode", 3), [r"node__symbolic_2 \(Quant\)", "rounding_mode is 3"]),
    "signed 2": (set_attr("signed", 2), [r"node__symbolic_2 \(Quant\)", "attribute signed is 2", "0 or 1"]),
    "narrow 2": (set_attr("narrow", 2), [r"node__symbolic_2 \(Quant\)", "attribute narrow is 2"]),
    "scale zero": (set_param(1, 0.0), [r"node__symbolic_2 \(Quant\)", r"scale \('mutated'\) is zero",
                                       "finite and greater than 0"]),
    "scale negative": (set_param(1, -0.1), [r"node__symbolic_2 \(Quant\)", r"scale \('mutated'\) is negative \(-0.1\)"]),
    "scale NaN": (set_param(1, np.nan), [r"node__symbolic_2 \(Quant\)", r"scale \('mutated'\) is NaN"]),
    "scale inf": (set_param(1, np.inf), [r"node__symbolic_2 \(Quant\)", r"scale \('mutated'\) is infinite"]),
    "weight scale negative": (lambda m: set_init(m, node(m, "Quant", 1).input[1],
                                                 -numpy_helper.to_array(init(m, node(m, "Quant", 1).input[1]))),
                              [r"node__symbolic_1 \(Quant\)", r"scale \('linears.0.weight_quant.export_handler.lifted_tensor_3'\) "
                               r"is negative \(-\d"]),
    "zero point fraction": (set_param(2, 0.5), [r"node__symbolic_2 \(Quant\)", r"zero point \('mutated'\) is not an integer \(0.5\)"]),
    "zero point NaN": (set_param(2, np.nan), [r"zero point \('mutated'\) is NaN"]),
    "zero point out of range": (set_param(2, 300.0), [r"node__symbolic_2 \(Quant\)", r"zero point .* is 300, outside the 4-bit unsigned range \[0, 15\]"]),
    "bit width 0": (set_param(3, 0.0), [r"node__symbolic_2 \(Quant\)", r"bit width \('mutated'\) is 0", "1 to 32"]),
    "bit width 33": (set_param(3, 33.0), [r"bit width \('mutated'\) is 33"]),
    "bit width 2.5": (set_param(3, 2.5), [r"bit width \('mutated'\) is 2.5"]),
    "bit width NaN": (set_param(3, np.nan), [r"bit width \('mutated'\) is nan"]),
    "dangling input": (lambda m: node(m, "BatchNormalization").input.__setitem__(1, "gone"),
                       [r"node node__native_batch_norm_legit_no_training__0 \(BatchNormalization\)",
                        r"input 1 \(input 'scale'\) is tensor 'gone'", "dangling"]),
    "duplicate output": (duplicate_output, [r"node node_relu \(Relu\) and node node_linear \(Gemm\) both make tensor "
                                            r"'linear'"]),
    "cycle": (cycle, [r"cycle: node node__symbolic \(Quant\) -> .*node_relu \(Relu\) -> node node__symbolic \(Quant\)"]),
    "unsorted": (unsorted, [r"\(Gemm\): input 0 \(input 'A'\) '.*' is made later", "topological order"]),
    "unused graph input": (unused_input, [r"graph input 'extra' is used by no node"]),
    "output made by no node": (output_not_made, [r"graph output 'nowhere' is made by no node"]),
    "symbolic feature dimension": (input_dim(1, param="features"),
                                   [r"graph input 'x': dimension 1 of \[1, features\] is symbolic",
                                    "--input-shape 1,N"]),
    "no input shape": (lambda m: m.graph.input[0].type.tensor_type.ClearField("shape"),
                       [r"graph input 'x' has no shape", "--input-shape"]),
    "input size 0": (input_dim(1, value=0), [r"graph input 'x' has size 0 in dimension 1"]),
    "integer input": (lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type", TensorProto.INT64),
                      [r"graph input 'x' has type INT64", "float32"]),
    "opset 0": (set_opset(0), ["opset 0 of the default ONNX domain is no ONNX opset", "from 7 to"]),
    "opset 5 the converter cannot raise": (lambda m: (set_opset(5)(m), setattr(node(m, "Relu"), "op_type", "NotAnOp")),
                                           ["opset 5 of the default ONNX domain is older than 7",
                                            "version converter cannot raise it to 13: Op .* has no registered schema"]),
    "opset 99": (set_opset(99), ["opset 99 of the default ONNX domain is newer", "from 7 to"]),
    "IR version from the future": (ir_future, [rf"IR version {onnx.IR_VERSION + 1} is newer"]),
    "Gemm bias of the wrong shape": (first_bias_wrong, [r"node node_linear \(Gemm\): input 'C' \('linears.0.bias'\) "
                                                        r"has shape \[3\]", r"output \[1, 8\]"]),
    "batch norm variance negative": (variance_negative, [r"\(BatchNormalization\): input_var \('norms.0.running_var'\) "
                                                         r"is -2 at \[1\]"]),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_defect_gives_one_error_naming_file_node_and_field(valid, tmp_path, defect):
    mutate, patterns = DEFECTS[defect]
    model = copy.deepcopy(valid)
    mutate(model)
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    with pytest.raises(DataFormatError) as info:
        compile_rtl(path, tmp_path / "prj", probe=PROBE)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    assert not (tmp_path / "prj").exists()


def test_trunc_bit_widths_and_output_scale_are_checked():
    """Trunc (both of qonnx's versions) through validate_model alone: a graph x -> Trunc -> y."""
    def trunc_model(out_bits, out_scale=None):
        consts = [numpy_helper.from_array(np.float32(v), n) for n, v in
                  (("s", 0.5), ("z", 0.0), ("bi", 8.0), ("bo", out_bits))]
        inputs = ["x", "s", "z", "bi", "bo"]
        if out_scale is not None:
            consts.append(numpy_helper.from_array(np.float32(out_scale), "so"))
            inputs = ["x", "s", "z", "bi", "so", "bo"]
        graph = helper.make_graph([helper.make_node("Trunc", inputs, ["y"], name="trunc", domain="qonnx.custom_op.general",
                                                    rounding_mode="FLOOR")], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], consts)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                       helper.make_opsetid("qonnx.custom_op.general", 1)])

    assert validate_model(trunc_model(4.0), "t.onnx") is not None
    assert validate_model(trunc_model(4.0, out_scale=8.0), "t.onnx") is not None
    with pytest.raises(DataFormatError, match=r"node trunc \(Trunc\): output bit width \('bo'\) is 40"):
        validate_model(trunc_model(40.0), "t.onnx")
    with pytest.raises(DataFormatError, match=r"node trunc \(Trunc\): output scale \('so'\) is negative"):
        validate_model(trunc_model(4.0, out_scale=-8.0), "t.onnx")


def test_the_valid_model_and_valid_variants_compile_exactly(valid, tmp_path):
    """The negatives: the file itself, a lower-case rounding mode qonnx reads, a symbolic batch
    dimension, an old opset onnx's converter raises to 13, a zero point inside its range."""
    variants = {"valid": lambda m: None, "rounding half_even": set_attr("rounding_mode", "half_even"),
                "symbolic batch": input_dim(0, param="N"), "opset 5": set_opset(5),
                "zero point in range": set_param(2, 1.0)}
    for name, mutate in variants.items():
        model = copy.deepcopy(valid)
        mutate(model)
        path = tmp_path / f"{name.replace(' ', '_')}.onnx"
        onnx.save(model, str(path))
        summary = compile_rtl(path, tmp_path / f"prj_{path.stem}", probe=PROBE)
        check = summary["int_model_vs_qonnx"]
        assert check["samples"] == PROBE and check["quantizer_mismatches"] == 0, name
        assert check["output_mismatching_samples"] == 0, name


def test_input_shape_option_fixes_a_symbolic_input(valid, tmp_path):
    model = copy.deepcopy(valid)
    input_dim(1, param="features")(model)
    path = tmp_path / "symbolic.onnx"
    onnx.save(model, str(path))
    assert main(["compile", str(path), "--backend", "rtl", "--out", str(tmp_path / "prj"),
                 "--input-shape", "1,16"]) in (0, None)
    assert load_int_model(tmp_path / "prj").layers[0].weight.shape[1] == 16
    with pytest.raises(DataFormatError, match=r"shapes or types do not fit: \(op_type:Gemm, node name: node_linear\)"):
        compile_rtl(path, tmp_path / "prj17", input_shape=[1, 17], probe=PROBE)
    with pytest.raises(DataFormatError, match=r"--input-shape 16 has 1 dimensions; graph input 'x' declares 2"):
        compile_rtl(path, tmp_path / "prj16", input_shape=[16], probe=PROBE)
    with pytest.raises(SystemExit):  # argparse: not a shape
        main(["compile", str(path), "--out", str(tmp_path / "p"), "--input-shape", "1,x"])


# --- csim inputs --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    case = MlpCase(n_in=4, input_bits=6, layers=[LayerCase(3, 4, 4), LayerCase(2, 4, 4)], seed=1)
    onnx.save(build_case(case), str(root / "m.onnx"))
    compile_hls4ml(root / "m.onnx", root / "hls", probe=PROBE)
    return root / "hls"


@pytest.mark.parametrize("value, word", [(np.nan, "nan"), (np.inf, "inf"), (1e300, "1e+300")])
def test_csim_inputs_that_are_not_finite_are_named_by_row_and_column(small_project, tmp_path, value, word):
    x = np.zeros((20, 4), np.float64)
    x[3, 2] = value
    x[7, 0] = value
    np.save(tmp_path / "x.npy", x)
    shown = re.escape(word)
    pattern = (rf"x.npy: 2 input values are not finite float32 numbers .*: row 3, column 2 \({shown}\); "
               rf"row 7, column 0 \({shown}\)")
    with pytest.raises(DataFormatError, match=pattern):
        run_csim(small_project, inputs_file=tmp_path / "x.npy", n=20)


def test_csim_inputs_of_a_non_numeric_type_are_refused(tmp_path):
    np.save(tmp_path / "s.npy", np.array([["a", "b", "c", "d"]]))
    with pytest.raises(DataFormatError, match=r"s.npy: inputs of type <U1; expected numbers"):
        array_inputs(tmp_path / "s.npy", 10, [4])
    np.save(tmp_path / "b.npy", np.ones((2, 4), bool))
    with pytest.raises(DataFormatError, match="inputs of type bool"):
        array_inputs(tmp_path / "b.npy", 10, [4])
    np.save(tmp_path / "ok.npy", np.ones((2, 4), np.float64))  # the negative: finite numbers are read
    assert array_inputs(tmp_path / "ok.npy", 10, [4]).x.dtype == np.float32


# --- paths with any characters --------------------------------------------------------------

def test_a_project_in_a_folder_with_any_characters_compiles_and_simulates_exactly(tmp_path, monkeypatch):
    """make, Verilator (`line directives) and the C++ WEIGHTS_DIR literal all break on these."""
    monkeypatch.setenv("QAPFLOW_CACHE", str(tmp_path / "cache"))  # nothing cached: the build runs here
    folder = tmp_path / "a=b,c d'e\"f$g\\h"
    folder.mkdir()
    case = MlpCase(n_in=4, input_bits=6, layers=[LayerCase(3, 4, 4), LayerCase(2, 4, 4)], seed=1)
    onnx.save(build_case(case), str(folder / "m.onnx"))
    compile_rtl(folder / "m.onnx", folder / "rtl", probe=PROBE)
    compile_hls4ml(folder / "m.onnx", folder / "hls", probe=PROBE)
    np.save(folder / "x.npy", probe_inputs(load_int_model(folder / "rtl"), 100))
    rtl = run_verilator(folder / "rtl", inputs_file=folder / "x.npy", n=100)
    hls = run_csim(folder / "hls", inputs_file=folder / "x.npy", n=100)
    for report in (rtl, hls):
        assert report["samples"] == 100 and report["mismatches_vs_int_model"] == 0 and report["passed"]
        assert not report["binary_reused"]
    assert np.array_equal(np.load(folder / "rtl" / "outputs_int.npy"), np.load(folder / "hls" / "outputs_int.npy"))
