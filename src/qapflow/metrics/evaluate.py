"""All metrics of one model on one data split, as written to metrics.json."""

from __future__ import annotations

import torch

from qapflow.metrics.bops import FLOAT_BITS, network_bops, sparsity
from qapflow.metrics.classification import classification_metrics, roc_curves, softmax
from qapflow.metrics.neural_efficiency import network_efficiency
from qapflow.nn.model import JetTagger


def model_cost(model: JetTagger) -> dict:
    """BOPs in both conventions, and the sparsity measured from the forward-pass weights."""
    spec = model.spec
    weights = [w.numpy() for w in model.quant_weights()]
    act_in = spec.activation_bits_in()
    return {
        "bops": network_bops(weights, spec.layer_bits, act_in, spec.layer_positions),
        "bops_float_input": network_bops(weights, spec.layer_bits, [FLOAT_BITS, *act_in[1:]], spec.layer_positions),
        "sparsity": sparsity(weights),
    }


def evaluate(model: JetTagger, x: torch.Tensor, y: torch.Tensor) -> tuple[dict, dict]:
    """(metrics, roc) of `model` on (x, y): roc maps class -> (signal eff, background eff)."""
    model.eval()
    with torch.no_grad():
        logits = model(x).numpy()
        hidden = [a.numpy() for a in model.hidden_activations(x)]
    metrics = classification_metrics(logits, y.numpy())
    metrics.update(model_cost(model))
    metrics["neural_efficiency"] = network_efficiency(hidden)
    return metrics, roc_curves(softmax(logits), y.numpy())
