"""A plain-data description of the network, saved with every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from qapflow.common.errors import QapflowError

SCHEMES = ("fixed-point", "scaled-int")
FLOAT_BITS = 32


@dataclass
class ModelSpec:
    """16 inputs, hidden widths, 5 outputs; bit widths per network or per layer.

    `bits` is one width for every layer, or a list with one width per linear layer
    (len(widths) + 1). 32 means plain float layers. `input_bits` quantizes the network
    input (None: float input); `input_int` is its integer bits, sign included (the input is
    ap_fixed<input_bits, input_int>; None: the range +-32, ap_fixed<B, 6>). `act_bits` sets
    the hidden activations' widths apart from the weights' (one value, or one per hidden
    layer; None: each layer's `bits`). `bias_bits` (one, or one per layer) applies to
    `fixed-point` models.
    """

    inputs: int = 16
    widths: list[int] = field(default_factory=lambda: [64, 32, 32])
    outputs: int = 5
    bits: int | list[int] = 6
    input_bits: int | None = 16
    input_int: int | None = None
    act_bits: int | list[int] | None = None
    bias_bits: int | list[int] = 24
    scheme: str = "fixed-point"
    batch_norm: bool = True
    act_max: float = 6.0  # initial activation clip threshold (the paper's ReLU6 start)
    # target fraction of each hidden layer's activations pruned to zero (nn/activation_prune.py)
    activation_sparsity: float = 0.0

    def __post_init__(self):
        if self.scheme not in SCHEMES:
            raise QapflowError(f"unknown quantization scheme {self.scheme!r}; use one of {SCHEMES}")
        n = len(self.widths) + 1
        if isinstance(self.bits, list) and len(self.bits) != n:
            raise QapflowError(f"bits lists {len(self.bits)} widths but the network has {n} layers")
        if not 0.0 <= self.activation_sparsity < 1.0:
            raise QapflowError(f"activation_sparsity {self.activation_sparsity} must be in [0, 1)")
        for name, value, want in (("act_bits", self.act_bits, n - 1), ("bias_bits", self.bias_bits, n)):
            if isinstance(value, list) and len(value) != want:
                raise QapflowError(f"{name} lists {len(value)} widths but the network has {want}")
        for b in [*self.layer_bits, *self.hidden_act_bits]:
            if not (2 <= b <= FLOAT_BITS):
                raise QapflowError(f"bit width {b} out of range 2..{FLOAT_BITS}")
        for b in self.layer_bias_bits:
            if not (2 <= b <= 64):
                raise QapflowError(f"bias bit width {b} out of range 2..64")
        if self.input_bits is not None and not 2 <= self.input_bits <= 24:
            raise QapflowError(f"input_bits {self.input_bits} out of range 2..24")
        if self.input_int is not None:
            if self.input_bits is None:
                raise QapflowError("input_int needs a quantized input (input_bits)")
            if not 1 - self.input_bits <= self.input_int <= self.input_bits + 8:
                raise QapflowError(f"input_int {self.input_int} out of range for {self.input_bits}-bit input: "
                                   f"{1 - self.input_bits}..{self.input_bits + 8}")

    @property
    def layer_bits(self) -> list[int]:
        return _per_layer(self.bits, len(self.widths) + 1)

    @property
    def hidden_act_bits(self) -> list[int]:
        """Bit width of every hidden activation (after linear layer i, i < last)."""
        if self.act_bits is None:
            return self.layer_bits[:-1]
        return _per_layer(self.act_bits, len(self.widths))

    @property
    def layer_bias_bits(self) -> list[int]:
        return _per_layer(self.bias_bits, len(self.widths) + 1)

    @property
    def layer_sizes(self) -> list[tuple[int, int]]:
        """(n_in, n_out) of every linear layer."""
        dims = [self.inputs, *self.widths, self.outputs]
        return list(zip(dims, dims[1:]))

    @property
    def is_float(self) -> bool:
        return all(b == FLOAT_BITS for b in self.layer_bits)

    def activation_bits_in(self) -> list[int]:
        """Bit width of the activations feeding each layer (input precision for the first)."""
        first = FLOAT_BITS if (self.input_bits is None or self.is_float) else self.input_bits
        hidden = [FLOAT_BITS if w == FLOAT_BITS else a for w, a in zip(self.layer_bits, self.hidden_act_bits)]
        return [first, *hidden]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        return cls(**data)


def _per_layer(value: int | list[int], n: int) -> list[int]:
    """A setting given once or per layer, as one value per layer."""
    return list(value) if isinstance(value, list) else [int(value)] * n
