"""Quantizer schemes, composed from Brevitas parts by name.

- `fixed-point`: power-of-two scales everywhere (weights from max|W|, learned activation
  thresholds, a constant input grid) and integer biases at the accumulator scale, so the
  network is a fixed-point network that HLS tools represent exactly.
- `scaled-int`: the paper's scheme: float per-tensor scales, weight scale max|W| / w_max
  recomputed every step, activation thresholds learned in the log domain from 6.0, float
  biases.
"""

from __future__ import annotations

import math

from brevitas.core.restrict_val import RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFixedPoint,
    Int8WeightPerTensorFloat,
    IntBias,
    Uint8ActPerTensorFixedPointMaxInit,
    Uint8ActPerTensorFloatMaxInit,
)

# The input grid: signed, range +-INPUT_RANGE in standardised units.
INPUT_RANGE = 32.0


def weight_kwargs(scheme: str, bits: int, bias_bits: int) -> dict:
    """Keyword arguments of a QuantLinear for `bits`-bit weights."""
    if scheme == "fixed-point":
        return {
            "weight_quant": Int8WeightPerTensorFixedPoint,
            "weight_bit_width": bits,
            "bias_quant": IntBias,
            "bias_bit_width": bias_bits,
        }
    return {"weight_quant": Int8WeightPerTensorFloat, "weight_bit_width": bits, "bias_quant": None}


def relu_kwargs(scheme: str, bits: int, act_max: float) -> dict:
    """Keyword arguments of a QuantReLU with a learned clip threshold starting at act_max."""
    if scheme == "fixed-point":
        return {"act_quant": Uint8ActPerTensorFixedPointMaxInit, "bit_width": bits, "max_val": act_max}
    return {
        "act_quant": Uint8ActPerTensorFloatMaxInit.let(restrict_scaling_type=RestrictValueType.LOG_FP),
        "bit_width": bits,
        "max_val": act_max,
    }


def signed_kwargs(scheme: str, bits: int) -> dict:
    """Keyword arguments of a signed QuantIdentity whose scale is learned (from runtime stats):
    the grid a residual block's two branches share, so their sum is exact in integers."""
    quant = Int8ActPerTensorFixedPoint if scheme == "fixed-point" else Int8ActPerTensorFloat
    return {"act_quant": quant, "bit_width": bits}


def input_kwargs(scheme: str, bits: int, int_bits: int | None = None) -> dict:
    """A QuantIdentity on a constant signed grid: +-INPUT_RANGE, or ap_fixed<bits, int_bits>."""
    quant = Int8ActPerTensorFixedPoint.let(
        scaling_impl_type=ScalingImplType.CONST, scaling_init=input_range(bits, int_bits)
    )
    if scheme == "scaled-int":
        quant = quant.let(restrict_scaling_type=RestrictValueType.FP)
    return {"act_quant": quant, "bit_width": bits}


def input_range(bits: int, int_bits: int | None) -> float:
    """The constant the input quantizer's scale comes from. Brevitas' power-of-two scale is
    2^ceil(log2(range / (2^(bits-1) - 1))); for ap_fixed<bits, int_bits> (step 2^(int_bits - bits))
    the range is put at 3/4 of step * (2^(bits-1) - 1), strictly inside the ceiling's interval,
    so float rounding cannot move the step."""
    if int_bits is None:
        return INPUT_RANGE
    return 0.75 * 2.0 ** (int_bits - bits) * (2 ** (bits - 1) - 1)


def input_step(bits: int, int_bits: int | None = None) -> float:
    """The grid step of the fixed-point input quantizer (a power of two)."""
    return 2.0 ** math.ceil(math.log2(input_range(bits, int_bits) / (2 ** (bits - 1) - 1)))
