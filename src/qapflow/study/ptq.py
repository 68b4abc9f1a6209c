"""Post-training quantization (the pruning + PTQ baseline of the paper's Table 1).

A float model trained with FT pruning is quantized after training, with no retraining: BN
folded into the weights, weights to B-bit fixed point (power-of-two scale from max|W|, as the
QAT models' weight quantizer), every ReLU output to B-bit unsigned fixed point with its
range calibrated on the training split (the largest activation, rounded up to a power of two),
the input on the 16-bit grid of every other model. Each pruning iteration of the float run is
quantized and evaluated on the same test split.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch

from qapflow.common.errors import QapflowError
from qapflow.data.sources import load_jets
from qapflow.data.splits import Standardizer, paper_split
from qapflow.metrics.evaluate import evaluate
from qapflow.nn.model import JetTagger, build_model
from qapflow.train.bn_fold import fold_batch_norm
from qapflow.train.checkpoint import load_checkpoint
from qapflow.train.config import RunConfig
from qapflow.train.summary import iteration_row

PTQ_BIAS_BITS = 40
SCALE_KEY = "acts.{}.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value"


def quantize_after_training(model: JetTagger, bits: int, x_calibration: torch.Tensor) -> JetTagger:
    """A `bits`-bit fixed-point copy of the float `model`, calibrated on `x_calibration`."""
    if not model.spec.is_float:
        raise ValueError("post-training quantization starts from a float model")
    float_model = fold_batch_norm(model) if model.spec.batch_norm else model
    float_model.eval()
    with torch.no_grad():
        peaks = [float(a.max()) for a in float_model.hidden_activations(x_calibration)]
    # the bias on the accumulator grid (input step x weight step) needs about in + weight bits + a few:
    # 24 bits (the QAT default) clip the biases of 16-bit weights, which PTQ must not do
    spec = dataclasses.replace(float_model.spec, bits=bits, batch_norm=False, scheme="fixed-point",
                               bias_bits=max(*float_model.spec.layer_bias_bits, PTQ_BIAS_BITS))
    quantized = build_model(spec)
    state = quantized.state_dict()
    for key, value in float_model.state_dict().items():
        state[key] = value
    for i, peak in enumerate(peaks):
        state[SCALE_KEY.format(i)] = torch.tensor(math.log2(max(peak, 2.0 ** -8)))
    quantized.load_state_dict(state)
    return quantized.eval()


def run_ptq_trial(payload: dict, folder: Path) -> dict:
    """Quantize every iteration of the float run in extra.source to extra.bits."""
    bits, source = int(payload["extra"]["bits"]), Path(payload["extra"]["source"])
    cfg = RunConfig.from_dict(json.loads((source / "config.json").read_text()), str(source / "config.json"))
    if cfg.model.arch != "mlp":  # its calibration and inputs are the MLP's (acts.i, the 16 features)
        raise QapflowError(f"{source}: post-training quantization is built for the MLP; model.arch is {cfg.model.arch}")
    arrays = load_jets(payload["data"])
    if cfg.max_jets:
        arrays = arrays.subset(slice(0, cfg.max_jets))
    split = paper_split(len(arrays), cfg.split_seed)
    scaler = Standardizer.load(source / "scaler.json")  # the run's: every iteration's checkpoint holds it
    x_train = torch.from_numpy(scaler.transform(arrays.features[split.train]))
    x_test = torch.from_numpy(scaler.transform(arrays.features[split.test]))
    y_test = torch.from_numpy(np.asarray(arrays.labels[split.test]).argmax(axis=1)).long()
    rows = []
    for checkpoint in sorted(source.glob("iter_*/checkpoint.pt")):
        model, masks, _, meta = load_checkpoint(checkpoint)
        quantized = quantize_after_training(model, bits, x_train)
        masks.apply(quantized)
        metrics, _ = evaluate(quantized, x_test, y_test)
        metrics.update(iteration=meta["iteration"], target_sparsity=masks.pruned / masks.total)
        rows.append(iteration_row(metrics))
    if not rows:
        raise FileNotFoundError(f"{source}: no finished iteration to quantize")
    return {"summary": {"folds": None, "iterations": rows}, "bits": bits, "source": str(source)}
