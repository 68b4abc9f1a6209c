"""Every number in FINN's hardware layers of a convolutional graph from the IntGraph.

FINN lowers each Conv to an im2col (FMPadding, ConvolutionInputGenerator) and an MVAU, each
requantization to a Thresholding, a Flatten + MatMul to an MVAU reading the channels-last
stream; qapflow checks that FINN's layers are the IntGraph's ops, one to one and in order, and
then writes the IntGraph's integers into them (as IntModelParameters does for dense chains):
- MVAU weights: conv [O, I, kh, kw] as FINN's im2col orders a window (kh, kw, I), a dense's
  columns in the channels-last order its input stream arrives in; a channel whose thresholds
  fall (sign -1) has its weight row negated, so FINN's rising thresholds see sign * sum.
- Thresholding: base + #(a' >= T) of the IntGraph (shift requantizations written as the
  thresholds of their own monotone map), the integer bias folded in (FINN's MVAU adds none).
- GlobalAccPool (a global mean over the spatial axes): the sum, the divisor in the thresholds after it.
The wiring layers' types follow the integers they carry: padding, sliding windows and a max
pool's Pool (it picks integers, so its input type is its output type).
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from qapflow.backends.finn.transforms.int_model_parameters import (accumulator_type, int_type, rtl_mvu_weight_type,
                                                                   write_thresholds)
from qapflow.common.errors import QapflowError
from qapflow.intmodel.graph import IntGraph

LINEAR = ("conv", "dense")
REQUANT = ("shift", "thresholds")
WIRING = ("reshape",)
POOLED = LINEAR + ("sumpool",)  # what FINN's MVAU or GlobalAccPool (qapflow's RTL) computes
PRODUCERS = ("MVAU", "GlobalAccPool")
# layers passing their input type through (a max pool picks integers: FINN's Pool, qapflow's RTL)
WIRING_LAYERS = ("FMPadding", "ConvolutionInputGenerator", "StreamingFIFO", "StreamingDataWidthConverter", "Pool")
BUILT_BY_OTHERS = "the hls4ml and rtl backends build every IntGraph op"


def channels_last(shape) -> np.ndarray:
    """Flat channels-first indices in channels-last order: what FINN's stream carries."""
    shape = list(shape)
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    return np.moveaxis(idx, 0, -1).reshape(-1) if len(shape) > 1 else idx.reshape(-1)


def is_global_pool(graph: IntGraph, op) -> bool:
    """A sum of identity units over every spatial position, keeping the axes (GlobalAveragePool,
    ReduceMean over the spatial axes, an AveragePool whose one window is its unpadded input): what
    transforms/global_average_pool.py makes FINN's GlobalAccPool."""
    if op.kind != "sumpool" or not op.units.identity or not op.keepdims:
        return False
    spatial = list(graph.tensors[op.inputs[0]].shape[1:])
    return op.kernel is None or (list(op.kernel) == spatial and not any(op.pads or []))


def check_max_pool(graph: IntGraph, op, model_path) -> None:
    """What FINN's InferPool makes a sliding window and a Pool (qapflow's RTL: rtl/qapflow_max_pool.v)
    of: a max over windows no smaller than their stride, of a quantized tensor, padded only where
    FINN's zero padding (FMPadding) is below every value (an unsigned input)."""
    t = graph.tensors[op.inputs[0]]
    why = None
    if not t.quantized:
        why = "its input is an accumulator (no requantization before it)"
    elif any(d != 1 for d in op.dilations or []) or op.ceil_mode:
        why = f"dilations {op.dilations}, ceil_mode {int(op.ceil_mode)}"
    elif any(k < s for k, s in zip(op.kernel, op.strides)):
        why = f"kernel {op.kernel} smaller than its strides {op.strides}"
    elif any(op.pads or []) and t.grid.spec.lo < 0:
        why = f"pads {op.pads} on a signed input (FINN pads with zeros)"
    if why:
        raise QapflowError(f"{model_path}: {op.name} (maxpool): {why}; qapflow's FINN path takes max pools with "
                           f"kernel >= stride, no dilation, zero padding of unsigned inputs only: {BUILT_BY_OTHERS}")


def check_graph(graph: IntGraph, model_path) -> None:
    """The ops FINN's RTL layers build; anything else named with its node."""
    for op in graph.ops:
        if is_global_pool(graph, op):
            users = [o for o in graph.ops if op.output in o.inputs]
            if len(users) != 1 or users[0].kind not in REQUANT:
                raise QapflowError(f"{model_path}: {op.name} (sumpool, global) is not followed by one "
                                   f"requantization; {BUILT_BY_OTHERS}")
            continue
        if op.kind == "maxpool":
            check_max_pool(graph, op, model_path)
        elif op.kind not in LINEAR + REQUANT + WIRING:
            raise QapflowError(f"{model_path}: {op.name} ({op.kind}): FINN has this layer only in HLS (or not at "
                               f"all), which qapflow cannot simulate here; {BUILT_BY_OTHERS}")
        if op.kind in LINEAR and not op.units.identity:
            raise QapflowError(f"{model_path}: {op.name} ({op.kind}) sums units {op.units} (a zero point or a "
                               f"bipolar input); FINN's MVAU sums the integers as they are: {BUILT_BY_OTHERS}")
        if op.kind == "conv" and (op.groups != 1 or any(d != 1 for d in op.dilations)):
            raise QapflowError(f"{model_path}: {op.name} (conv): groups {op.groups}, dilations {op.dilations}; "
                               f"qapflow's FINN path takes plain convolutions: {BUILT_BY_OTHERS}")
        if op.kind == "reshape" and len(graph.tensors[op.output].shape) != 1:
            raise QapflowError(f"{model_path}: {op.name} (reshape) to {graph.tensors[op.output].shape}: the FINN "
                               f"path takes a flatten before a dense layer only; {BUILT_BY_OTHERS}")
        users = [o for o in graph.ops if op.output in o.inputs]
        if op.kind in REQUANT and (op.inputs[0] == graph.input or graph.op(op.inputs[0]).kind not in POOLED):
            raise QapflowError(f"{model_path}: {op.name} ({op.kind}) does not follow a conv or dense layer")
        if len(users) > 1:
            raise QapflowError(f"{model_path}: {op.output} feeds {len(users)} ops (a branch); {BUILT_BY_OTHERS}")


def stream_orders(graph: IntGraph) -> dict[str, np.ndarray]:
    """Per IntGraph tensor, the flat channels-first index of each element of FINN's stream."""
    orders = {graph.input: channels_last(graph.tensors[graph.input].shape)}
    for op in graph.ops:
        shape = graph.tensors[op.output].shape
        orders[op.output] = (orders[op.inputs[0]] if op.kind in REQUANT + WIRING else
                             channels_last(shape) if op.kind in ("conv", "sumpool", "maxpool") else
                             np.arange(int(np.prod(shape))))
    return orders


def shift_thresholds(op, a_lo: int, a_hi: int) -> tuple[np.ndarray, int]:
    """A shift requantization's map as rising thresholds over [a_lo, a_hi]: T_L = the smallest
    accumulator giving at least level L, found by bisection on the op's own (monotone) map."""
    levels = np.arange(op.lo + 1, op.hi + 1)
    lo = np.full(len(levels), a_lo, np.int64)
    hi = np.full(len(levels), a_hi + 1, np.int64)  # a_hi + 1: never reached
    while np.any(lo < hi):
        mid = (lo + hi) // 2
        ok = op.evaluate(mid) >= levels
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid + 1)
    return lo, int(op.lo)


def layer_plan(graph: IntGraph) -> list[dict]:
    """Per linear op: its FINN weight matrix, output sign, and its requantization's thresholds."""
    bounds, orders = graph.bounds(), stream_orders(graph)
    plan = []
    for op in graph.ops:
        if op.kind not in POOLED:
            continue
        req = next((o for o in graph.ops if o.inputs == [op.output] and o.kind in REQUANT), None)
        c = int(graph.tensors[op.output].channels)
        signs = np.ones(c, np.int64) if req is None or req.kind == "shift" else np.asarray(req.signs, np.int64)
        if op.kind == "sumpool":  # FINN's GlobalAccPool sums; it cannot negate a channel
            if np.any(signs < 0):
                raise QapflowError(f"{req.name}: falling thresholds after the pool {op.name}; {BUILT_BY_OTHERS}")
            w, bias = None, np.zeros(c, np.int64)
        else:
            w = op.weight.reshape(c, -1) if op.kind == "dense" else np.moveaxis(op.weight, 1, -1).reshape(c, -1)
            if op.kind == "dense":
                w = w[:, orders[op.inputs[0]]]
            w = (w * signs[:, None]).T
            bias = np.asarray(op.bias, np.int64)
        a_lo, a_hi = (np.array([int(v) for v in b], np.int64) for b in bounds[op.output])
        h_lo = np.where(signs > 0, a_lo - bias, bias - a_hi)  # MVAU output h = sign * (a - bias)
        h_hi = np.where(signs > 0, a_hi - bias, bias - a_lo)
        entry = {"op": op, "requant": req, "weight": w, "signs": signs, "bias": bias, "h_lo": h_lo, "h_hi": h_hi}
        if req is not None:
            spec = graph.tensors[req.output].grid.spec
            steps = spec.hi - spec.lo
            t = np.empty((c, steps), np.int64)
            for ch in range(c):
                if req.kind == "shift":
                    real, base = shift_thresholds(req, int(a_lo[ch]), int(a_hi[ch]))
                    real = real[real <= a_hi[ch]]
                else:
                    base = int(req.thresholds.base[ch])
                    real = req.thresholds.values[ch, : req.thresholds.count[ch]]
                # in h: sign * a >= T  <=>  h >= T - sign * bias
                real = np.asarray(real, np.int64) - signs[ch] * bias[ch]
                always, never = base - spec.lo, steps - (base - spec.lo) - len(real)
                if always < 0 or never < 0:
                    raise QapflowError(f"{req.name}: channel {ch}'s thresholds from {base} over {len(real)} levels "
                                       f"do not fit the output range [{spec.lo}, {spec.hi}]")
                t[ch] = np.concatenate([np.full(always, h_lo[ch]), real, np.full(never, h_hi[ch] + 1)])
            entry.update(thresholds=t, out_lo=int(spec.lo), out_hi=int(spec.hi))
        plan.append(entry)
    return plan


def hardware_pairs(model: ModelWrapper, plan: list[dict]) -> list[tuple]:
    """[(MVAU, Thresholding or None)] per linear op of the plan, in order; FINN's layers checked."""
    nodes = list(model.graph.node)
    mvaus = [i for i, n in enumerate(nodes) if n.op_type.startswith(PRODUCERS)]
    kinds = [("GlobalAccPool" if e["op"].kind == "sumpool" else "MVAU") for e in plan]
    if [nodes[i].op_type.split("_")[0] for i in mvaus] != kinds:
        raise QapflowError(f"FINN made {[nodes[i].op_type for i in mvaus]} of an integer graph whose conv, dense and "
                           f"pool ops are {[e['op'].name for e in plan]}; nodes: {[n.op_type for n in nodes]}")
    pairs = []
    for i, entry in zip(mvaus, plan):
        nxt = next((n for n in nodes[i + 1:] if not n.op_type.startswith(("StreamingFIFO", "StreamingDataWidth"))),
                   None)
        thr = nxt if nxt is not None and nxt.op_type.startswith("Thresholding") else None
        if (thr is not None) != (entry["requant"] is not None):
            raise QapflowError(f"{entry['op'].name}: the integer graph {'has' if entry['requant'] else 'has no'} "
                               f"requantization but FINN put {nxt.op_type if nxt is not None else 'nothing'} after "
                               f"{nodes[i].name}")
        pairs.append((nodes[i], thr))
    return pairs


def compare_graph_parameters(model: ModelWrapper, plan: list[dict]) -> list[dict]:
    """Analysis: where FINN's own weights and thresholds differ from the IntGraph's."""
    report = []
    for k, ((mvau, thr), entry) in enumerate(zip(hardware_pairs(model, plan), plan)):
        ours = entry["weight"]
        row = {"layer": k, "op": entry["op"].name, "mvau": mvau.name, "weights": 0 if ours is None else int(ours.size)}
        w_finn = None if ours is None else np.asarray(model.get_initializer(mvau.input[1]))
        if ours is None:
            pass  # a pool: no weights; FINN's thresholds take its mean, ours the sum (times the divisor)
        elif w_finn.shape != ours.shape:
            row["weights_shape"] = {"finn": list(w_finn.shape), "int_graph": list(ours.shape)}
        else:
            row["weights_differing"] = int(np.count_nonzero(w_finn.astype(np.int64) != ours))
            row["columns_sign_flipped_by_int_graph"] = int(np.count_nonzero(entry["signs"] < 0))
        if thr is not None:
            theirs, t = model.get_initializer(thr.input[1]), entry["thresholds"]
            if ours is None:
                theirs = theirs * entry["op"].divisor
            row["thresholding"] = thr.name
            theirs = np.broadcast_to(theirs, (t.shape[0], theirs.shape[1]))
            if theirs.shape != t.shape:
                row["thresholds_shape"] = {"finn": list(theirs.shape), "int_graph": list(t.shape)}
            else:
                lo, hi = entry["h_lo"][:, None], entry["h_hi"][:, None] + 1
                row["thresholds"] = int(t.size)
                row["thresholds_differing"] = int(np.count_nonzero(np.clip(np.ceil(theirs), lo, hi) != np.clip(t, lo, hi)))
        report.append(row)
    return report


def _set_types(inst, **types) -> None:
    for attr, dtype in types.items():
        try:
            inst.get_nodeattr(attr)
        except AttributeError:
            continue
        inst.set_nodeattr(attr, dtype.name)


class IntGraphParameters(Transformation):
    """Set every MVAU's weights and Thresholding's thresholds to the IntGraph's; the types of the
    wiring layers (padding, sliding window) to those of the integers they carry."""

    def __init__(self, graph: IntGraph, plan: list[dict]):
        super().__init__()
        self.graph, self.plan = graph, plan

    def apply(self, model: ModelWrapper):
        hw = hardware_pairs(model, self.plan)
        pairs = {mvau.name: thr for mvau, thr in hw}
        entries = {mvau.name: e for (mvau, _), e in zip(hw, self.plan)}
        spec = self.graph.tensors[self.graph.input].grid.spec
        current = int_type(spec.lo, spec.hi)
        model.set_tensor_datatype(model.graph.input[0].name, current)
        for node in model.graph.node:
            inst = getCustomOp(node)
            if node.op_type.startswith(WIRING_LAYERS):
                _set_types(inst, inputDataType=current, outputDataType=current, dataType=current,
                           InputDataType=current, OutputDataType=current)
                model.set_tensor_datatype(node.output[0], current)
            elif node.op_type.startswith("GlobalAccPool"):
                e = entries[node.name]
                _set_types(inst, inputDataType=current)
                acc = inst.get_output_datatype(0)  # FINN's exact range of a sum of its input type
                if acc.min() > e["h_lo"].min() or acc.max() < e["h_hi"].max():
                    raise QapflowError(f"{node.name}: FINN's {acc.name} does not hold {e['op'].name}'s sums")
                model.set_tensor_datatype(node.output[0], acc)
                current = self._thresholds(model, pairs[node.name], e, acc)
            elif node.op_type.startswith("MVAU"):
                e = entries[node.name]
                w = e["weight"]
                if tuple(model.get_initializer(node.input[1]).shape) != w.shape:
                    raise QapflowError(f"{node.name}: FINN's weights are {list(model.get_initializer(node.input[1]).shape)}"
                                       f", {e['op'].name}'s {list(w.shape)}")
                w_type = rtl_mvu_weight_type(w)
                model.set_initializer(node.input[1], w.astype(np.float32))
                model.set_tensor_datatype(node.input[1], w_type)
                acc = accumulator_type(int_type(e["h_lo"].min(), e["h_hi"].max()), w_type, current)
                _set_types(inst, inputDataType=current, weightDataType=w_type, accDataType=acc, outputDataType=acc)
                model.set_tensor_datatype(node.output[0], acc)
                current = self._thresholds(model, pairs[node.name], e, acc)
        return model, False

    @staticmethod
    def _thresholds(model, thr, e, acc):
        """Write the entry's thresholds into its Thresholding; the type after it."""
        if thr is None:
            return acc
        return write_thresholds(model, thr, e["thresholds"], acc, e["out_lo"], e["out_hi"])
