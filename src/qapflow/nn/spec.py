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
    input (None: float input). `bias_bits` applies to `fixed-point` models.
    """

    inputs: int = 16
    widths: list[int] = field(default_factory=lambda: [64, 32, 32])
    outputs: int = 5
    bits: int | list[int] = 6
    input_bits: int | None = 16
    bias_bits: int = 24
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
        for b in self.layer_bits:
            if not (2 <= b <= FLOAT_BITS):
                raise QapflowError(f"bit width {b} out of range 2..{FLOAT_BITS}")

    @property
    def layer_bits(self) -> list[int]:
        n = len(self.widths) + 1
        return list(self.bits) if isinstance(self.bits, list) else [int(self.bits)] * n

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
        return [first, *self.layer_bits[:-1]]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        return cls(**data)
