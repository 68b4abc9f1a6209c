"""Every number in FINN's hardware layers from the integer model: MVAU weights, thresholds.

FINN derives its own thresholds from the graph's float scales and rounds ties half up, while
QONNX's Quant (ROUND) rounds half to even: on power-of-two scales, accumulators that land on
a tie differ by one level (measured: 290 of 32,000 activations of a 6-bit layer). qapflow's
integer model is exact against QONNX, so its weights and thresholds replace FINN's, after
the layer shapes are checked to agree; `compare_parameters` reports where FINN's own differ.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from qapflow.common.errors import QapflowError
from qapflow.intmodel.model import IntLayer, IntModel, interval_matvec


FLOAT32_EXACT = 1 << 24  # FINN keeps thresholds and weights as float32 tensors


def int_type(lo: int, hi: int) -> DataType:
    """The narrowest FINN integer type holding [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return DataType[f"UINT{max(1, hi.bit_length())}"]
    bits = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    return DataType[f"INT{bits}"]


def accumulator_type(reachable: DataType, w_type: DataType, in_type: DataType) -> DataType:
    """The reachable accumulator range's type, widened to a full product if it is narrower:
    FINN's RTL MVU (finn-rtllib mvu.sv) stops on ACCU_WIDTH < WEIGHT_WIDTH + ACTIVATION_WIDTH
    (- 1 for signed activations), which a sparse layer's reachable range can be."""
    product = w_type.bitwidth() + in_type.bitwidth() - int(in_type.signed())
    if reachable.bitwidth() >= product:
        return reachable
    return DataType[f"{'INT' if reachable.signed() else 'UINT'}{product}"]


def hardware_layers(model: ModelWrapper, im: IntModel) -> list[tuple]:
    """[(mvau node, thresholding node or None)] per integer-model layer, in order."""
    pairs, nodes = [], list(model.graph.node)
    for i, node in enumerate(nodes):
        if node.op_type.startswith("MVAU"):
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            pairs.append((node, nxt if nxt is not None and nxt.op_type.startswith("Thresholding") else None))
    if len(pairs) != len(im.layers):
        raise QapflowError(f"FINN made {len(pairs)} matrix-vector layers (MVAU) of a model with "
                           f"{len(im.layers)} dense layers; nodes: {[n.op_type for n in nodes]}")
    for k, ((mvau, thr), layer) in enumerate(zip(pairs, im.layers)):
        want = layer.thresholds is not None
        if want != (thr is not None):
            raise QapflowError(f"layer {k}: the integer model {'has' if want else 'has no'} thresholds but "
                               f"FINN put {thr.op_type if thr is not None else 'no Thresholding'} after {mvau.name}")
    return pairs


def input_ranges(im: IntModel) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every layer's reachable accumulator range per channel, without bias (FINN's MVAU output)."""
    lo = np.full(im.layers[0].weight.shape[1], im.input.lo, dtype=object)
    hi = np.full(im.layers[0].weight.shape[1], im.input.hi, dtype=object)
    ranges = []
    for layer in im.layers:
        acc_lo, acc_hi = interval_matvec(layer.weight, lo, hi)
        ranges.append((np.array(acc_lo, np.int64), np.array(acc_hi, np.int64)))
        if layer.act is not None:
            lo = np.full(layer.weight.shape[0], layer.act.lo, dtype=object)
            hi = np.full(layer.weight.shape[0], layer.act.hi, dtype=object)
    return ranges


def threshold_matrix(layer: IntLayer, acc_lo: np.ndarray, acc_hi: np.ndarray) -> np.ndarray:
    """FINN's form: out = act.lo + #(acc >= T[c, k]) over hi - lo thresholds per channel.
    The integer model's channel c starts at base[c]; (base - lo) thresholds that always hold
    (the lowest reachable accumulator) come first, unreachable ones (highest + 1) pad the end.
    The bias is folded in: FINN's MVAU adds none."""
    t, spec = layer.thresholds, layer.act
    steps = spec.hi - spec.lo
    out = np.empty((len(t.count), steps), np.int64)
    for c in range(len(t.count)):
        always = int(t.base[c] - spec.lo)
        real = t.values[c, : t.count[c]] - layer.bias[c]
        never = steps - always - len(real)
        if always < 0 or never < 0:
            raise QapflowError(f"channel {c}: thresholds from {t.base[c]} over {len(real)} levels do not fit "
                               f"the activation's range [{spec.lo}, {spec.hi}]")
        out[c] = np.concatenate([np.full(always, acc_lo[c]), real, np.full(never, acc_hi[c] + 1)])
    return out


def compare_parameters(model: ModelWrapper, im: IntModel) -> list[dict]:
    """Analysis: where FINN's own weights and thresholds differ from the integer model's."""
    report = []
    ranges = input_ranges(im)
    for k, ((mvau, thr), layer) in enumerate(zip(hardware_layers(model, im), im.layers)):
        w_finn = model.get_initializer(mvau.input[1]).T.astype(np.int64)
        entry = {"layer": k, "mvau": mvau.name, "weights": int(layer.weight.size),
                 "weights_differing": int(np.count_nonzero(w_finn != layer.weight)),
                 "rows_sign_flipped_by_int_model": int(np.count_nonzero(
                     (w_finn == -layer.weight).all(axis=1) & (layer.weight != 0).any(axis=1)))}
        if thr is not None:
            ours = threshold_matrix(layer, *ranges[k])
            theirs = model.get_initializer(thr.input[1])
            theirs = np.broadcast_to(theirs, (ours.shape[0], theirs.shape[1]))
            entry["thresholding"] = thr.name
            if theirs.shape != ours.shape:
                entry["thresholds_shape"] = {"finn": list(theirs.shape), "int_model": list(ours.shape)}
            else:
                # equal where both pick the same first accumulator reaching each level in range
                lo, hi = ranges[k][0][:, None], ranges[k][1][:, None] + 1
                entry["thresholds"] = int(ours.size)
                entry["thresholds_differing"] = int(np.count_nonzero(
                    np.clip(np.ceil(theirs), lo, hi) != np.clip(ours, lo, hi)))
        report.append(entry)
    return report


def write_thresholds(model: ModelWrapper, thr, t: np.ndarray, in_type: DataType, out_lo: int, out_hi: int,
                     hint: str = "") -> DataType:
    """Write thresholds `t` into FINN's Thresholding `thr` (input type `in_type`, outputs out_lo..out_hi);
    the type after it. Dense chains and integer graphs share it; `hint` ends the too-wide error."""
    if np.abs(t).max() >= FLOAT32_EXACT:
        raise QapflowError(f"{thr.name}: thresholds up to {np.abs(t).max()} do not fit FINN's float32 "
                           f"threshold tensors exactly (at most 2**24){hint}")
    model.set_initializer(thr.input[1], t.astype(np.float32))
    t_type = int_type(min(t.min(), 0), max(t.max(), 0))
    model.set_tensor_datatype(thr.input[1], t_type)
    out_type = int_type(out_lo, out_hi)
    inst = getCustomOp(thr)
    inst.set_nodeattr("inputDataType", in_type.name)
    inst.set_nodeattr("weightDataType", t_type.name)
    inst.set_nodeattr("outputDataType", out_type.name)
    inst.set_nodeattr("numSteps", int(t.shape[1]))
    inst.set_nodeattr("ActVal", int(out_lo))
    model.set_tensor_datatype(thr.output[0], out_type)
    return out_type


def rtl_mvu_weight_type(weight: np.ndarray) -> DataType:
    """The weights' type as FINN's RTL MVU takes them: signed, at least 4 bits, narrow range (its
    minimum never used, which DSP48E1 parts need). FINN's SpecializeLayers picks the HLS MVU for
    anything else, and qapflow cannot simulate HLS; the values are the integer model's either way."""
    lo, hi = int(min(weight.min(), 0)), int(max(weight.max(), 0))
    bits = 4
    while not (-(2 ** (bits - 1)) < lo and hi <= 2 ** (bits - 1) - 1):
        bits += 1
    return DataType[f"INT{bits}"]


class IntModelParameters(Transformation):
    """Set each MVAU's weights and each Thresholding's thresholds to the integer model's."""

    def __init__(self, im: IntModel):
        super().__init__()
        self.im = im

    def apply(self, model: ModelWrapper):
        ranges = input_ranges(self.im)
        in_type = int_type(self.im.input.lo, self.im.input.hi)
        for k, ((mvau, thr), layer) in enumerate(zip(hardware_layers(model, self.im), self.im.layers)):
            w = model.get_initializer(mvau.input[1])
            if w.shape != layer.weight.T.shape:
                raise QapflowError(f"{mvau.name}: FINN's weights are {list(w.shape)}, the integer model's layer {k} "
                                   f"{list(layer.weight.T.shape)}")
            w_type = rtl_mvu_weight_type(layer.weight)
            model.set_initializer(mvau.input[1], layer.weight.T.astype(np.float32))
            model.set_tensor_datatype(mvau.input[1], w_type)
            inst = getCustomOp(mvau)
            inst.set_nodeattr("inputDataType", in_type.name)
            inst.set_nodeattr("weightDataType", w_type.name)
            acc_type = accumulator_type(int_type(ranges[k][0].min(), ranges[k][1].max()), w_type, in_type)
            inst.set_nodeattr("accDataType", acc_type.name)
            inst.set_nodeattr("outputDataType", acc_type.name)
            model.set_tensor_datatype(mvau.output[0], acc_type)
            if thr is None:
                continue
            t = threshold_matrix(layer, *ranges[k])
            out_type = write_thresholds(model, thr, t, acc_type, layer.act.lo, layer.act.hi,
                                        "; use narrower inputs or weights")
            in_type = out_type
        return model, False
