"""What a weight costs in an adder graph, for cost-aware pruning and its L1 regulariser.

A constant multiplication by an integer weight w becomes, in da4ml's adder graphs, one
shifted copy of the input per non-zero digit of w's canonical signed-digit form (7 = 8 - 1:
two digits, not three), each added at the input's width. So a weight's cost is taken as
(non-zero signed digits of its integer) x (bits of the layer's input). A weight whose integer
is 0 costs nothing. da4ml shares common subexpressions between weights, so this is the cost
before sharing: a ranking, not an estimate (synth/cost_model.py estimates).
"""

from __future__ import annotations

import torch
from torch import nn


def signed_digits(n: torch.Tensor) -> torch.Tensor:
    """Non-zero digits of the canonical signed-digit (non-adjacent) form of each integer:
    popcount(|n| XOR 3|n|)."""
    a = n.abs().to(torch.int64)
    x = a ^ (3 * a)
    count = torch.zeros_like(x)
    while bool((x > 0).any()):
        count += x & 1
        x = x >> 1
    return count


def integer_weights(linear: nn.Module) -> torch.Tensor | None:
    """The integers a quantized layer's weights are (None for a float layer)."""
    if not hasattr(linear, "quant_weight"):  # Brevitas' QuantLinear / QuantConv
        return None
    q = linear.quant_weight()
    return torch.round(q.value / q.scale).detach()


def weight_costs(model: nn.Module) -> list[torch.Tensor]:
    """Per prunable layer, each weight's digits x input bits (a float layer: one digit a weight)."""
    costs = []
    for linear, in_bits in zip(model.prunable, model.spec.activation_bits_in()):
        ints = integer_weights(linear)
        digits = torch.ones_like(linear.weight) if ints is None else signed_digits(ints).to(linear.weight.dtype)
        costs.append(digits * in_bits)  # activation_bits_in: at most FLOAT_BITS
    return costs


def pruning_scores(model: nn.Module, criterion: str) -> list[torch.Tensor]:
    """What pruning ranks (lowest pruned first): |w|, or |w| per unit of hardware cost."""
    magnitudes = [lin.weight.detach().abs() for lin in model.prunable]
    if criterion == "magnitude":
        return magnitudes
    # a weight that quantizes to 0 scores 0: it is already free in hardware, and goes first
    return [torch.where(c > 0, m / c.clamp(min=1), torch.zeros_like(m))
            for m, c in zip(magnitudes, weight_costs(model))]


def hardware_l1_penalty(model: nn.Module) -> torch.Tensor:
    """sum of cost x |w|: the L1 penalty weighted by each weight's adder-graph cost (costs held
    constant within a step)."""
    return sum((c.detach() * lin.weight.abs()).sum() for lin, c in zip(model.prunable, weight_costs(model)))
