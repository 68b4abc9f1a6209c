"""BOPs, neural efficiency and classification metrics against hand-worked values."""

import numpy as np
import pytest
import torch

from qapflow.metrics.bops import network_bops
from qapflow.metrics.classification import bkg_eff_at_sig_eff, classification_metrics
from qapflow.metrics.evaluate import model_cost
from qapflow.metrics.neural_efficiency import layer_efficiency, network_efficiency
from qapflow.nn.model import build_model
from qapflow.nn.spec import ModelSpec
from qapflow.train.masks import PruneMasks

SHAPES = [(64, 16), (32, 64), (32, 32), (5, 32)]


def dense(fraction_zero=0.0):
    out = []
    for shape in SHAPES:
        w = np.ones(shape)
        w.flat[: int(fraction_zero * w.size)] = 0
        out.append(w)
    return out


def test_float_unpruned_network_is_4652832_bops():
    assert network_bops(dense(), [32] * 4, [32] * 4) == 4_652_832


def test_float_model_cost_from_real_weights():
    torch.manual_seed(0)
    cost = model_cost(build_model(ModelSpec(bits=32)))
    assert cost["bops"] == cost["bops_float_input"] == 4_652_832
    assert cost["sparsity"]["overall"] == 0.0


def test_six_bit_unpruned_matches_the_paper():
    assert network_bops(dense(), [6] * 4, [32, 6, 6, 6]) == 412_960


def test_six_bit_half_pruned_by_hand():
    # layer 1: 1024 * (0.5*32*6 + 32 + 6 + 4) = 141,312; layer 2: 2048 * (0.5*36 + 6 + 6 + 6) = 73,728
    # layer 3: 1024 * (18 + 12 + 5) = 35,840;            layer 4: 160 * (18 + 12 + 5) = 5,600
    assert network_bops(dense(0.5), [6] * 4, [32, 6, 6, 6]) == 141_312 + 73_728 + 35_840 + 5_600
    # the same with a 16-bit input: layer 1 becomes 1024 * (0.5*96 + 16 + 6 + 4) = 75,776
    assert network_bops(dense(0.5), [6] * 4, [16, 6, 6, 6]) == 75_776 + 73_728 + 35_840 + 5_600


def test_six_bit_model_cost_counts_pruned_weights():
    torch.manual_seed(0)
    model = build_model(ModelSpec(bits=6))
    masks = PruneMasks.ones_like(model)
    masks = masks.prune_smallest(model, masks.total // 2)
    masks.apply(model)
    cost = model_cost(model)
    assert cost["sparsity"]["zero_weights"] >= masks.pruned  # quantization may add zeros
    # 6-bit weights and float-input convention; zero fractions measured per layer
    fractions = cost["sparsity"]["per_layer"]
    expected = sum(
        m * n * ((1 - f) * b_a * 6 + b_a + 6 + np.log2(n))
        for (m, n), f, b_a in zip(SHAPES, fractions, [32, 6, 6, 6])
    )
    assert cost["bops_float_input"] == pytest.approx(expected, rel=1e-12)


def test_fair_coin_neurons_are_efficient_and_a_dead_layer_is_not():
    rng = np.random.default_rng(0)
    coins = rng.integers(0, 2, size=(200_000, 8)).astype(float)
    assert layer_efficiency(coins) == pytest.approx(1.0, abs=0.01)
    dead = np.zeros((1000, 8))
    assert layer_efficiency(dead) == 0.0
    assert network_efficiency([coins, dead])["network"] == 0.0


def test_bkg_eff_interpolates_the_roc():
    sig = np.array([0.0, 0.4, 0.6, 1.0])
    bkg = np.array([0.0, 0.01, 0.03, 1.0])
    assert bkg_eff_at_sig_eff(sig, bkg) == pytest.approx(0.02)


def test_perfect_classifier_metrics():
    y = np.repeat(np.arange(5), 20)
    logits = np.eye(5)[y] * 10
    m = classification_metrics(logits, y)
    assert m["accuracy"] == 1.0
    assert all(v == 1.0 for v in m["auc"].values())
    assert all(v == 0.0 for v in m["bkg_eff_at_sig_eff_0p5"].values())
