"""Broken copies of valid quantized MLPs: the mutation benchmark's and tests' inputs.

Seed models of different shapes and origins (a Brevitas export of qapflow's own float-scale
network, onnx-helper graphs from mlp_cases: MatMul+Add with float scales, power-of-two Gemm,
bipolar), each mutated by one of model_mutations.MUTATIONS into a file of its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from qapflow.testing.mlp_cases import LayerCase, MlpCase, build_case
from qapflow.testing.model_mutations import MUTATIONS, Mutation

def brevitas_float_scale(path: Path, seed: int = 0) -> Path:
    """qapflow's own network (nn.build_model), scheme `scaled-int` (float scales, float biases,
    batch norm), 16-8-6-5 at 4 bits, exported by Brevitas as it stands (no qonnx cleanup)."""
    import torch
    from brevitas.export import export_qonnx

    from qapflow.nn.model import build_model
    from qapflow.nn.spec import ModelSpec

    torch.manual_seed(seed)
    net = build_model(ModelSpec(widths=[8, 6], bits=4, input_bits=8, input_int=4, scheme="scaled-int"))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):  # statistics as after training
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    net.eval()
    export_qonnx(net, torch.zeros(1, 16), export_path=str(path))
    return path


SEED_CASES = {
    "helper-matmul-float": MlpCase(n_in=6, input_bits=6, layers=[LayerCase(5, 4, 4, per_channel=True),
                                                                 LayerCase(3, 5, 4)],
                                   pot_scales=False, matmul=True, softmax=True, seed=1),
    "helper-gemm-pot": MlpCase(n_in=8, input_bits=8, layers=[LayerCase(6, 6, 6), LayerCase(4, 6, 6)],
                               pot_scales=True, seed=2),
    "helper-bipolar": MlpCase(n_in=5, input_bits=1, layers=[LayerCase(4, 1, 1, batch_norm=True),
                                                            LayerCase(3, 1, 1)], pot_scales=False, seed=3),
}


def write_seed_models(folder: Path) -> dict[str, Path]:
    """Every seed model written into `folder`: name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"brevitas-float-scale": brevitas_float_scale(folder / "brevitas-float-scale.onnx")}
    for name, case in SEED_CASES.items():
        onnx.save(build_case(case), str(folder / f"{name}.onnx"))
        paths[name] = folder / f"{name}.onnx"
    return paths


# --- the cases ------------------------------------------------------------------------------

@dataclass
class Case:
    index: int
    seed_model: str
    mutation: Mutation
    path: Path


def mutated_files(seeds: dict[str, Path], indices, folder: Path) -> list[Case]:
    """One mutated file in `folder` per case index i: mutation i mod len(MUTATIONS), on seed
    model (i div len(MUTATIONS)) mod len(seeds) (the next one where it does not apply), with
    random choices seeded by i. range(N) gives every mutation in turn, on every seed in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    protos = {name: onnx.load(str(p)) for name, p in seeds.items()}
    names = list(protos)
    cases = []
    for i in indices:
        mut = MUTATIONS[i % len(MUTATIONS)]
        start = (i // len(MUTATIONS)) % len(names)
        for k in range(len(names)):
            name = names[(start + k) % len(names)]
            result = mut.apply(copy.deepcopy(protos[name]), np.random.default_rng(i))
            if result is not None:
                break
        else:
            continue  # applies to no seed model
        path = folder / f"{i:05d}_{name}_{mut.name}.onnx"
        path.write_bytes(result if isinstance(result, bytes) else result.SerializeToString())
        cases.append(Case(i, name, mut, path))
    return cases
