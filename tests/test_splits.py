"""The paper's split, k-fold, standardisation fitted on train only, and label noise."""

import numpy as np
import pytest

from qapflow.data.h5file import read_jets, write_jets
from qapflow.data.info import summarize
from qapflow.data.sources import load_jets
from qapflow.data.splits import Standardizer, kfold, paper_split, randomize_labels
from tests.formats import write_arff, write_parquet, write_zenodo_h5


def test_paper_split_sizes_on_the_full_data_set():
    split = paper_split(870_000, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (472_500, 157_500, 240_000)


def test_split_is_a_seeded_partition():
    split = paper_split(1000, seed=3)
    joined = np.concatenate([split.train, split.val, split.test])
    assert np.array_equal(np.sort(joined), np.arange(1000))
    assert np.array_equal(paper_split(1000, seed=3).test, split.test)
    assert not np.array_equal(paper_split(1000, seed=4).test, split.test)


def test_kfold_covers_train_and_validation_once():
    idx = np.arange(100, 180)
    folds = kfold(idx, 4, seed=1)
    assert len(folds) == 4
    held_out = np.concatenate([v for _, v in folds])
    assert np.array_equal(np.sort(held_out), idx)
    for train, val in folds:
        assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 80
    with pytest.raises(ValueError):
        kfold(idx, 1)


def test_standardizer_uses_train_statistics_and_round_trips(tmp_path, small_jets):
    split = paper_split(len(small_jets), seed=0)
    train = small_jets.features[split.train]
    scaler = Standardizer.fit(train)
    z = scaler.transform(train)
    assert np.abs(z.mean(axis=0)).max() < 1e-5
    assert np.abs(z.std(axis=0) - 1).max() < 1e-5
    assert not np.allclose(scaler.mean, small_jets.features.mean(axis=0))  # not the full set
    scaler.save(tmp_path / "scaler.json")
    again = Standardizer.load(tmp_path / "scaler.json")
    assert np.array_equal(again.mean, scaler.mean) and np.array_equal(again.std, scaler.std)


def test_constant_feature_stays_finite():
    features = np.ones((10, 16), np.float32)
    assert np.isfinite(Standardizer.fit(features).transform(features)).all()


def test_randomize_labels_changes_only_the_given_fraction(small_jets):
    noisy = randomize_labels(small_jets.labels, 0.5, seed=2)
    assert (noisy.sum(axis=1) == 1).all()
    changed = (noisy != small_jets.labels).any(axis=1).sum()
    # 50 rows redrawn; a redrawn row keeps its class with probability 1/5
    assert 25 <= changed <= 50
    assert np.array_equal(randomize_labels(small_jets.labels, 0.0), small_jets.labels)


@pytest.mark.parametrize("suffix", [".h5", ".arff", ".pq", "zenodo.h5"])
def test_every_source_loads_to_the_same_arrays(tmp_path, small_jets, suffix):
    path = tmp_path / f"jets{suffix}"
    writer = {".h5": write_jets, ".arff": write_arff, ".pq": write_parquet,
              "zenodo.h5": write_zenodo_h5}[suffix]
    writer(path, small_jets)
    loaded = load_jets(path)
    assert np.array_equal(loaded.features, small_jets.features)
    assert np.array_equal(loaded.labels, small_jets.labels)


def test_summary_counts_classes(tmp_path, small_jets):
    write_jets(tmp_path / "j.h5", small_jets)
    summary = summarize(read_jets(tmp_path / "j.h5"))
    assert summary["class_counts"] == {"g": 20, "q": 20, "w": 20, "z": 20, "t": 20}
    assert summary["features"]["j_zlogz"]["min"] == float(small_jets.features[:, 0].min())
