"""A plain-data description of the network, saved with every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from qapflow.common.errors import QapflowError

SCHEMES = ("fixed-point", "scaled-int")
ARCHS = ("mlp", "deepsets", "cnn2d")
POOLS = ("max", "avg")
FLOAT_BITS = 32
# the fields of the convolutional architectures and their defaults: left out of to_dict() where
# they hold the default, so an MLP's spec (config.json, checkpoints, digests) reads as before
CONV_DEFAULTS = {"arch": "mlp", "particles": 16, "particle_features": 11, "image": [16, 16],
                 "channels": [], "kernels": 3, "strides": 1, "pool": "max", "residual": False}


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

    `arch` picks the network (nn/model.py builds it): `mlp` (16 features), `deepsets` (input
    [N, particle_features, particles]: a per-particle dense layer of each `channels` width as a
    kernel-1 conv, global `pool` over the particles, a dense head of `widths`) or `cnn2d` (input
    [N, 1, *image]: per `channels` width a conv of `kernels` (odd, "same" padding) and `strides`
    then a 2x2 `pool`; with `residual`, one block of two 3x3 convs whose output is added to its
    input; flattened into a dense head of `widths`). Layers are counted in that order, convs
    first: `bits` lists one width per conv and linear layer.
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
    arch: str = "mlp"
    particles: int = 16
    particle_features: int = 11
    image: list[int] = field(default_factory=lambda: [16, 16])
    channels: list[int] = field(default_factory=list)
    kernels: int | list[int] = 3
    strides: int | list[int] = 1
    pool: str = "max"
    residual: bool = False

    def __post_init__(self):
        self._check_arch()
        if self.scheme not in SCHEMES:
            raise QapflowError(f"unknown quantization scheme {self.scheme!r}; use one of {SCHEMES}")
        n = self.layer_count
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

    def _check_arch(self) -> None:
        """One QapflowError naming the first bad field of the convolutional architectures."""
        def bad(name, why):
            raise QapflowError(f"model.{name}: {why}")

        if self.arch not in ARCHS:
            bad("arch", f"unknown {self.arch!r}; use one of {ARCHS}")
        if not isinstance(self.widths, list) or not all(_positive(w) for w in self.widths):
            bad("widths", f"{self.widths!r} must be a list of positive integers")
        if self.arch == "mlp":
            return
        if not isinstance(self.channels, list) or not self.channels or not all(_positive(c) for c in self.channels):
            bad("channels", f"{self.channels!r}: {self.arch} needs a non-empty list of positive channel widths")
        if self.pool not in POOLS:
            bad("pool", f"unknown {self.pool!r}; use one of {POOLS}")
        if not isinstance(self.residual, bool):
            bad("residual", f"{self.residual!r} must be true or false")
        bits = self.bits if isinstance(self.bits, list) else [self.bits]
        if FLOAT_BITS in bits and any(b != FLOAT_BITS for b in bits):
            bad("bits", f"{self.arch} layers are all float (32) or all quantized, got {self.bits}")
        if self.arch == "deepsets":
            for name in ("particles", "particle_features"):
                if not _positive(getattr(self, name)):
                    bad(name, f"{getattr(self, name)!r} must be a positive integer")
            if self.residual:
                bad("residual", "residual blocks are a cnn2d option")
            return
        if not (isinstance(self.image, list) and len(self.image) == 2 and all(_positive(d) for d in self.image)):
            bad("image", f"{self.image!r} must be [height, width], positive integers")
        for name in ("kernels", "strides"):
            value = getattr(self, name)
            if isinstance(value, list) and len(value) != len(self.channels):
                bad(name, f"lists {len(value)} values for {len(self.channels)} conv layers (channels)")
            if not all(_positive(v) for v in _per_layer(value, len(self.channels))):
                bad(name, f"{value!r} must be positive integers")
        if not all(k % 2 == 1 for k in self.conv_kernels):
            bad("kernels", f"{self.kernels!r} must be odd ('same' padding k // 2)")
        if min(self.feature_map) < 1:
            bad("image", f"{self.image} is too small for {len(self.channels)} conv + 2x2 pool stages")

    @property
    def conv_kernels(self) -> list[int]:
        return _per_layer(self.kernels, len(self.channels))

    @property
    def conv_strides(self) -> list[int]:
        return _per_layer(self.strides, len(self.channels))

    def _stage_sizes(self) -> list[tuple[int, int]]:
        """cnn2d: (H, W) after each conv (before its pool), then after the last pool."""
        h, w = self.image
        out = []
        for k, s in zip(self.conv_kernels, self.conv_strides):
            h, w = (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1
            out.append((h, w))
            h, w = h // 2, w // 2
        return [*out, (h, w)]

    @property
    def feature_map(self) -> tuple[int, int]:
        """cnn2d: (H, W) of the last conv stage's pooled output (and of the residual block)."""
        return self._stage_sizes()[-1]

    @property
    def conv_count(self) -> int:
        """Conv layers (the first prunable layers); 0 for the MLP."""
        if self.arch == "mlp":
            return 0
        return len(self.channels) + (2 if self.arch == "cnn2d" and self.residual else 0)

    @property
    def layer_count(self) -> int:
        """Prunable (conv and linear) layers, each but the last followed by one activation."""
        return self.conv_count + len(self.widths) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, channels first."""
        if self.arch == "deepsets":
            return (self.particle_features, self.particles)
        if self.arch == "cnn2d":
            return (1, *self.image)
        return (self.inputs,)

    @property
    def head_inputs(self) -> int:
        """Inputs of the first dense layer."""
        if self.arch == "deepsets":
            return self.channels[-1]
        if self.arch == "cnn2d":
            return self.channels[-1] * self.feature_map[0] * self.feature_map[1]
        return self.inputs

    @property
    def layer_positions(self) -> list[int]:
        """Output positions of each prunable layer (1 for a dense layer): a conv's MACs are per
        output position."""
        head = [1] * (len(self.widths) + 1)
        if self.arch == "deepsets":
            return [self.particles] * len(self.channels) + head
        if self.arch == "cnn2d":
            sizes = self._stage_sizes()
            convs = [h * w for h, w in sizes[:-1]] + [sizes[-1][0] * sizes[-1][1]] * (2 if self.residual else 0)
            return convs + head
        return head

    @property
    def layer_bits(self) -> list[int]:
        return _per_layer(self.bits, self.layer_count)

    @property
    def hidden_act_bits(self) -> list[int]:
        """Bit width of every hidden activation (after linear layer i, i < last)."""
        if self.act_bits is None:
            return self.layer_bits[:-1]
        return _per_layer(self.act_bits, self.layer_count - 1)

    @property
    def layer_bias_bits(self) -> list[int]:
        return _per_layer(self.bias_bits, self.layer_count)

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
        out = asdict(self)
        for key, default in CONV_DEFAULTS.items():
            if out[key] == default:
                del out[key]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        return cls(**data)


def _positive(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _per_layer(value: int | list[int], n: int) -> list[int]:
    """A setting given once or per layer, as one value per layer."""
    return list(value) if isinstance(value, list) else [int(value)] * n
