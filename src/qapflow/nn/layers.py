"""What the convolutional networks (nn/deepsets.py, nn/cnn.py) share: prunable layers in one
list, each but the last followed by BN (optional), activation pruning (optional) and a ReLU.

Every conv and linear layer is `layers[i]`, in forward order, so pruning masks, BOPs, BN
folding and export address them by index as the MLP's `linears[i]` (the `prunable` and
`linears` properties give the list). The forward pass of a subclass (`_forward`) goes through
`_stage` / `_activate`, so recording hidden activations and calibrating activation pruning
need no copy of it.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from qapflow.nn.activation_prune import ActivationPrune
from qapflow.nn.quantizers import input_kwargs, relu_kwargs, weight_kwargs
from qapflow.nn.spec import ModelSpec

# evaluation runs in chunks of samples: a whole test split through conv layers at once would
# hold gigabytes of feature maps (samples are independent in eval mode, so the result is the same)
EVAL_CHUNK = 16384
KINDS = {"linear": (nn.Linear, QuantLinear, nn.BatchNorm1d),
         "conv1d": (nn.Conv1d, QuantConv1d, nn.BatchNorm1d),
         "conv2d": (nn.Conv2d, QuantConv2d, nn.BatchNorm2d)}


def value(x):
    """The plain tensor of a Brevitas QuantTensor (or the tensor itself)."""
    return x.value if hasattr(x, "value") and not isinstance(x, torch.Tensor) else x


class SpecNet(nn.Module):
    """The start the MLP (nn/model.py) and QuantNet share: the spec, the input quantizer and empty
    lists of prunable layers (named `prunable_key`, their state-dict prefix), BNs and ReLUs."""
    prunable_key = "layers"

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        quantized_input = spec.input_bits is not None and not spec.is_float
        self.input_quant = (
            QuantIdentity(**input_kwargs(spec.scheme, spec.input_bits, spec.input_int), return_quant_tensor=True)
            if quantized_input else nn.Identity())
        setattr(self, self.prunable_key, nn.ModuleList())
        self.norms = nn.ModuleList()
        self.acts = nn.ModuleList()
        # only models that prune activations carry the modules (older checkpoints load as they are)
        self.act_prunes = nn.ModuleList() if spec.activation_sparsity > 0 else None
        self._feeds_quant = quantized_input  # an integer bias needs the scale of a quantized input

    @property
    def prunable(self) -> list[nn.Module]:
        return list(getattr(self, self.prunable_key))

    @torch.no_grad()
    def calibrate_activation_pruning(self, x: torch.Tensor) -> None:
        """Per hidden layer, the threshold pruning the spec's fraction of activations on `x`."""
        if self.act_prunes is None:
            return
        was_training = self.training
        self.eval()
        try:
            self._calibrate(x)  # the subclass's pass over x in eval mode
        finally:
            self.train(was_training)

    def _calibrate(self, x: torch.Tensor) -> None:
        raise NotImplementedError


class QuantNet(SpecNet):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.quantized = not spec.is_float  # the spec has all layers float or all quantized
        self._record: list | None = None
        self._calibrating = False

    @property
    def linears(self) -> list[nn.Module]:
        """The MLP's name for the prunable layers, kept for callers written for it."""
        return self.prunable

    def relu(self, bits: int) -> nn.Module:
        if not self.quantized:
            return nn.ReLU()
        return QuantReLU(**relu_kwargs(self.spec.scheme, bits, self.spec.act_max), return_quant_tensor=True)

    def _add(self, kind: str, *args, **kwargs) -> None:
        """Append prunable layer i (and, but for the last, its BN, activation pruning and ReLU)."""
        spec, i = self.spec, len(self.layers)
        float_cls, quant_cls, norm_cls = KINDS[kind]
        if not self.quantized:
            self.layers.append(float_cls(*args, bias=True, **kwargs))
        else:
            wq = weight_kwargs(spec.scheme, spec.layer_bits[i], spec.layer_bias_bits[i])
            if not self._feeds_quant:
                wq["bias_quant"] = None
            self.layers.append(quant_cls(*args, bias=True, **kwargs, **wq))
        self._feeds_quant = self.quantized
        if i == spec.layer_count - 1:
            return
        n_out = args[1]
        self.norms.append(norm_cls(n_out) if spec.batch_norm else nn.Identity())
        if self.act_prunes is not None:
            self.act_prunes.append(ActivationPrune())
        self.acts.append(self.relu(spec.hidden_act_bits[i]))

    def _add_head(self, n_in: int) -> None:
        for n_out in [*self.spec.widths, self.spec.outputs]:
            self._add("linear", n_in, n_out)
            n_in = n_out

    def _head(self, x):
        first = self.spec.conv_count
        for i in range(first, self.spec.layer_count - 1):
            x = self._stage(i, x)
        return value(self.layers[-1](x))

    def _stage(self, i: int, x):
        return self._activate(i, self.norms[i](value(self.layers[i](x))))

    def _activate(self, i: int, pre: torch.Tensor):
        if self.act_prunes is not None:
            if self._calibrating:
                self.act_prunes[i].calibrate(pre, self.spec.activation_sparsity)
            pre = self.act_prunes[i](pre)
        out = self.acts[i](pre)
        if self._record is not None:
            self._record.append(value(out).flatten(1))
        return out

    def _forward(self, x):
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._shaped(x)
        if self.training or len(x) <= EVAL_CHUNK:
            return self._forward(x)
        return torch.cat([self._forward(c) for c in x.split(EVAL_CHUNK)])

    def _shaped(self, x: torch.Tensor) -> torch.Tensor:
        """Samples given as flat rows (as the simulators hold them) in the spec's input shape."""
        shape = self.spec.input_shape
        if x.dim() == 2 and len(shape) > 1 and x.shape[1] == int(torch.tensor(shape).prod()):
            return x.reshape(len(x), *shape)
        return x

    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every hidden activation layer, one row per sample (for neural efficiency)."""
        layers = []
        try:
            for chunk in self._shaped(x).split(EVAL_CHUNK):
                self._record = []
                self._forward(chunk)
                layers.append(self._record)
        finally:
            self._record = None
        return [torch.cat(parts) for parts in zip(*layers)]

    def _calibrate(self, x: torch.Tensor) -> None:
        self._calibrating = True  # _activate calibrates each activation pruning on the way
        try:
            self._forward(self._shaped(x))
        finally:
            self._calibrating = False

    def quant_weights(self) -> list[torch.Tensor]:
        """The weights as the forward pass uses them (quantized values, float for 32-bit)."""
        return [value(layer.quant_weight()).detach() if hasattr(layer, "quant_weight") else layer.weight.detach()
                for layer in self.layers]
