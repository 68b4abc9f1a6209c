"""The jet tagger: [QuantIdentity] -> (QuantLinear -> BatchNorm1d -> QuantReLU) x H -> QuantLinear.

32-bit layers are plain torch layers. Every linear layer is `linears[i]`, so pruning
masks, BOPs and export address layers by that index. `build_model` builds any spec's `arch`:
this MLP, or the Deep Sets and CNN of nn/deepsets.py and nn/cnn.py, whose conv and linear
layers are `layers[i]`; every network names its prunable layers `prunable`.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from qapflow.nn.activation_prune import ActivationPrune
from qapflow.nn.quantizers import input_kwargs, relu_kwargs, weight_kwargs
from qapflow.nn.spec import FLOAT_BITS, ModelSpec


def _value(x):
    """The plain tensor of a Brevitas QuantTensor (or the tensor itself)."""
    return x.value if hasattr(x, "value") and not isinstance(x, torch.Tensor) else x


class JetTagger(nn.Module):
    prunable_key = "linears"  # the state-dict prefix of the prunable layers

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        quantized_input = spec.input_bits is not None and not spec.is_float
        self.input_quant = (
            QuantIdentity(**input_kwargs(spec.scheme, spec.input_bits, spec.input_int), return_quant_tensor=True)
            if quantized_input
            else nn.Identity()
        )
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.acts = nn.ModuleList()
        # only models that prune activations carry the modules (older checkpoints load as they are)
        self.act_prunes = nn.ModuleList() if spec.activation_sparsity > 0 else None
        feeds_quant = quantized_input
        n_layers = len(spec.layer_sizes)
        act_bits = [*spec.hidden_act_bits, None]
        for i, ((n_in, n_out), bits) in enumerate(zip(spec.layer_sizes, spec.layer_bits)):
            if bits == FLOAT_BITS:
                self.linears.append(nn.Linear(n_in, n_out))
            else:
                kwargs = weight_kwargs(spec.scheme, bits, spec.layer_bias_bits[i])
                if not feeds_quant:  # an integer bias needs the scale of a quantized input
                    kwargs["bias_quant"] = None
                self.linears.append(QuantLinear(n_in, n_out, bias=True, **kwargs))
            if i == n_layers - 1:
                break
            self.norms.append(nn.BatchNorm1d(n_out) if spec.batch_norm else nn.Identity())
            if self.act_prunes is not None:
                self.act_prunes.append(ActivationPrune())
            if bits == FLOAT_BITS:
                self.acts.append(nn.ReLU())
            else:
                self.acts.append(
                    QuantReLU(**relu_kwargs(spec.scheme, act_bits[i], spec.act_max), return_quant_tensor=True)
                )
            feeds_quant = bits != FLOAT_BITS

    @property
    def prunable(self) -> list[nn.Module]:
        return list(self.linears)

    def _prune(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return x if self.act_prunes is None else self.act_prunes[i](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        for i, (linear, norm, act) in enumerate(zip(self.linears, self.norms, self.acts)):
            x = act(self._prune(i, norm(_value(linear(x)))))
        return _value(self.linears[-1](x))

    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every hidden activation layer (for neural efficiency)."""
        outs = []
        x = self.input_quant(x)
        for i, (linear, norm, act) in enumerate(zip(self.linears, self.norms, self.acts)):
            x = act(self._prune(i, norm(_value(linear(x)))))
            outs.append(_value(x))
        return outs

    @torch.no_grad()
    def calibrate_activation_pruning(self, x: torch.Tensor) -> None:
        """Per hidden layer, the threshold pruning the spec's fraction of activations on `x`."""
        if self.act_prunes is None:
            return
        was_training = self.training
        self.eval()
        x = self.input_quant(x)
        for i, (linear, norm, act) in enumerate(zip(self.linears, self.norms, self.acts)):
            pre = norm(_value(linear(x)))
            self.act_prunes[i].calibrate(pre, self.spec.activation_sparsity)
            x = act(self.act_prunes[i](pre))
        self.train(was_training)

    def quant_weights(self) -> list[torch.Tensor]:
        """The weights as the forward pass uses them (quantized values, float for 32-bit)."""
        out = []
        for linear in self.linears:
            if isinstance(linear, QuantLinear):
                out.append(_value(linear.quant_weight()).detach())
            else:
                out.append(linear.weight.detach())
        return out


def build_model(spec: ModelSpec) -> nn.Module:
    if spec.arch == "deepsets":
        from qapflow.nn.deepsets import DeepSets
        return DeepSets(spec)
    if spec.arch == "cnn2d":
        from qapflow.nn.cnn import JetCnn
        return JetCnn(spec)
    return JetTagger(spec)
