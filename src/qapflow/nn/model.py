"""The jet tagger: [QuantIdentity] -> (QuantLinear -> BatchNorm1d -> QuantReLU) x H -> QuantLinear.

32-bit layers are plain torch layers. Every linear layer is `linears[i]`, so pruning
masks, BOPs and export address layers by that index. `build_model` builds any spec's `arch`:
this MLP, or the Deep Sets and CNN of nn/deepsets.py and nn/cnn.py, whose conv and linear
layers are `layers[i]`; every network names its prunable layers `prunable`.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantLinear, QuantReLU
from torch import nn

from qapflow.nn.activation_prune import ActivationPrune
from qapflow.nn.layers import SpecNet, value
from qapflow.nn.quantizers import relu_kwargs, weight_kwargs
from qapflow.nn.spec import FLOAT_BITS, ModelSpec


class JetTagger(SpecNet):
    prunable_key = "linears"  # the state-dict prefix of the prunable layers

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        feeds_quant = self._feeds_quant
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

    def _prune(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return x if self.act_prunes is None else self.act_prunes[i](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        for i, (linear, norm, act) in enumerate(zip(self.linears, self.norms, self.acts)):
            x = act(self._prune(i, norm(value(linear(x)))))
        return value(self.linears[-1](x))

    def hidden_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every hidden activation layer (for neural efficiency)."""
        outs = []
        x = self.input_quant(x)
        for i, (linear, norm, act) in enumerate(zip(self.linears, self.norms, self.acts)):
            x = act(self._prune(i, norm(value(linear(x)))))
            outs.append(value(x))
        return outs

    def _calibrate(self, x: torch.Tensor) -> None:
        x = self.input_quant(x)
        for i, (linear, norm, act) in enumerate(zip(self.linears, self.norms, self.acts)):
            pre = norm(value(linear(x)))
            self.act_prunes[i].calibrate(pre, self.spec.activation_sparsity)
            x = act(self.act_prunes[i](pre))

    def quant_weights(self) -> list[torch.Tensor]:
        """The weights as the forward pass uses them (quantized values, float for 32-bit)."""
        out = []
        for linear in self.linears:
            if isinstance(linear, QuantLinear):
                out.append(value(linear.quant_weight()).detach())
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
