"""Pruning masks over the prunable layers' weights (`model.prunable`: every linear and conv
layer, a conv kernel weight by weight), with global magnitude ranking.

Written here rather than with torch.nn.utils.prune: that module replaces `weight` by a
computed attribute (weight_orig * mask) in a forward pre-hook, which renames the
parameters Brevitas quantizes and exports. Plain 0/1 masks keep the state dict as it is.
"""

from __future__ import annotations

import torch
from torch import nn


class PruneMasks:
    """One 0/1 mask per prunable layer; pruned weights are held at exactly 0.0."""

    def __init__(self, masks: list[torch.Tensor]):
        self.masks = masks

    @classmethod
    def ones_like(cls, model: nn.Module) -> "PruneMasks":
        return cls([torch.ones_like(lin.weight, dtype=torch.bool) for lin in model.prunable])

    def apply(self, model: nn.Module) -> None:
        """Zero every pruned weight in place."""
        with torch.no_grad():
            for lin, mask in zip(model.prunable, self.masks):
                lin.weight.mul_(mask)

    def mask_grads(self, model: nn.Module) -> None:
        for lin, mask in zip(model.prunable, self.masks):
            if lin.weight.grad is not None:
                lin.weight.grad.mul_(mask)

    @property
    def total(self) -> int:
        return sum(m.numel() for m in self.masks)

    @property
    def pruned(self) -> int:
        return sum(int((~m).sum()) for m in self.masks)

    def prune_smallest(self, model: nn.Module, count: int, scores: list[torch.Tensor] | None = None) -> "PruneMasks":
        """New masks with the `count` surviving weights of lowest score (default: magnitude) of the
        whole model (one global ranking across layers, not per layer) removed as well."""
        weights = scores if scores is not None else [lin.weight.detach().abs() for lin in model.prunable]
        alive = torch.cat([w[m] for w, m in zip(weights, self.masks)])
        if count <= 0:
            return PruneMasks([m.clone() for m in self.masks])
        if count >= len(alive):
            raise ValueError(f"cannot prune {count} of {len(alive)} surviving weights")
        # rank by (magnitude, position): ties are broken deterministically, count is exact
        flat = torch.cat([torch.where(m, w, torch.inf).flatten() for w, m in zip(weights, self.masks)])
        order = torch.argsort(flat, stable=True)[:count]
        keep = torch.cat([m.flatten() for m in self.masks]).clone()
        keep[order] = False
        out, start = [], 0
        for m in self.masks:
            out.append(keep[start : start + m.numel()].view_as(m))
            start += m.numel()
        return PruneMasks(out)

    def state(self) -> list[torch.Tensor]:
        return [m.clone() for m in self.masks]
