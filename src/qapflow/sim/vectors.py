"""Test vectors: jets from a data file, standardised and quantized as the model's input."""

from __future__ import annotations

import numpy as np

from qapflow.data.sources import load_jets
from qapflow.data.splits import Standardizer, paper_split
from qapflow.export.int_model import IntModel


def test_vectors(data_file, n: int, scaler: dict, im: IntModel, data_info: dict | None = None,
                 split: str = "test"):
    """(x float32 standardised, x_int input integers, labels) for the first n jets.

    With split="test" and the data file the model was trained on, its test split (same
    seed) is used, so no training jet is simulated; otherwise the file's first n jets.
    """
    arrays = load_jets(data_file)
    index = np.arange(len(arrays))
    info = data_info or {}
    if split == "test" and info.get("file") and str(info["file"]) == str(data_file):
        total = info.get("max_jets") or len(arrays)
        index = paper_split(min(total, len(arrays)), info.get("split_seed") or 0).test
    index = index[:n]
    x = Standardizer.from_dict(scaler).transform(arrays.features[index])
    return x, im.quantize_input(x), arrays.class_index[index]
