"""Each generated jet's constituents and jet image: from the same jets as its features, sorted,
padded, centred on the jet axis, stored and read back exactly, and named when missing or bad."""

import dataclasses
import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

from qapflow.common.errors import DataFormatError
from qapflow.data.h5file import read_jets, write_jets
from qapflow.data.info import summarize
from qapflow.data.schema import CLASSES, CONSTITUENT_NAMES, FEATURE_NAMES, JetArrays, one_hot
from qapflow.data.sources import load_jets, require_inputs
from qapflow.data.splits import paper_split
from tests.formats import write_arff, write_zenodo_h5
from tests.http_server import FileServer

pytest.importorskip("pythia8mc")
fastjet = pytest.importorskip("fastjet")

from qapflow.data.generate.processes import RECIPES  # noqa: E402
from qapflow.data.generate.runner import generate_dataset  # noqa: E402

COL = {n: i for i, n in enumerate(CONSTITUENT_NAMES)}
FLAGS = [COL[n] for n in ("is_charged_hadron", "is_lepton", "is_photon", "is_neutral_hadron")]
MULT = FEATURE_NAMES.index("j_multiplicity")
HALF, PIXELS = 0.8, 16


def _generate(path, recipe, n_jets, **changes):
    settings = dataclasses.replace(RECIPES[recipe], chunk_jets=4, **changes)
    return generate_dataset(path, n_jets, seed=5, settings=settings, progress=False)


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory):
    # the default recipe (its detector, R = 0.4): multiplicities on both sides of 32
    return _generate(tmp_path_factory.mktemp("jets") / "jets.h5", "hls4ml-lhc-jets", 25)


@pytest.fixture(scope="module")
def sample(sample_file):
    return read_jets(sample_file)


def _whole(arrays):
    """Mask of the jets whose every constituent is stored (multiplicity <= P)."""
    whole = arrays.features[:, MULT] <= arrays.constituents.shape[1]
    assert 0 < whole.sum() < len(whole), "the sample must hold jets with fewer and more than P"
    return whole


def test_layout_and_attributes(sample, sample_file):
    assert sample.constituents.shape == (25, 32, len(CONSTITUENT_NAMES))
    assert sample.images.shape == (25, PIXELS, PIXELS)
    assert sample.constituents.dtype == np.float32 and sample.images.dtype == np.float32
    with h5py.File(sample_file) as f:
        assert [n.decode() if isinstance(n, bytes) else n for n in f["constituents"].attrs["names"]] \
            == list(CONSTITUENT_NAMES)
        assert list(f["images"].attrs["extent"]) == [-HALF, HALF, -HALF, HALF]
        assert list(f["images"].attrs["pixels"]) == [PIXELS, PIXELS]
    assert json.loads(sample.attrs["settings"])["max_constituents"] == 32
    assert summarize(sample)["inputs"] == {"constituents": [25, 32, len(CONSTITUENT_NAMES)],
                                           "images": [25, PIXELS, PIXELS]}


def test_sorted_by_pt_and_zero_padded_past_the_multiplicity(sample):
    c = sample.constituents
    filled = (c != 0).any(axis=2)
    n_real = np.minimum(sample.features[:, MULT], 32).astype(int)
    assert filled.sum(axis=1).tolist() == n_real.tolist()
    for jet, n in zip(c, n_real):
        assert (jet[:n, COL["pt_rel"]] > 0).all()  # the real rows come first
        assert not jet[n:].any()
        assert (np.diff(jet[:n, COL["pt_rel"]]) <= 0).all()
        assert (np.diff(jet[:n, COL["log_pt"]]) <= 0).all()


def test_constituents_belong_to_the_jet_of_their_features_row(sample):
    """j_zlogz recomputed from the stored constituents: the same jet, after the file's shuffle."""
    whole = _whole(sample)
    for jet, features in zip(sample.constituents[whole], sample.features[whole]):
        z = jet[:, COL["pt_rel"]].astype(np.float64)
        z = z[z > 0] / z.sum()
        assert np.sum(z * np.log(z)) == pytest.approx(features[FEATURE_NAMES.index("j_zlogz")], abs=1e-5)


def test_relative_coordinates_balance_about_the_jet_axis(sample):
    """The axis is the summed four-momentum: transverse momenta balance across it exactly
    (over all constituents), and phi_rel is wrapped."""
    c = sample.constituents[_whole(sample)].astype(np.float64)
    z, phi = c[..., COL["pt_rel"]], c[..., COL["phi_rel"]]
    assert np.abs((z * np.sin(phi)).sum(axis=1)).max() < 1e-5
    assert np.abs((z * np.cos(phi)).sum(axis=1) - 1).max() < 1e-5
    assert np.abs((c[..., COL["e_rel"]]).sum(axis=1) - 1).max() < 1e-5
    assert (np.abs(phi) <= np.pi).all() and (np.abs(c[..., COL["eta_rel"]]) < 1.0).all()
    assert np.allclose(c[..., COL["delta_r"]], np.hypot(c[..., COL["eta_rel"]], phi), atol=1e-6)


def test_relative_coordinates_agree_with_fastjet_for_jets_across_phi_pi():
    from qapflow.data.generate.jet_inputs import constituent_table

    rng = np.random.default_rng(3)
    for phi0 in (np.pi - 0.05, -np.pi + 0.02, 0.3):  # jets straddling the phi = +-pi seam too
        n = 40
        pt, eta, phi = rng.exponential(20, n) + 1, 1.2 + rng.normal(0, 0.2, n), phi0 + rng.normal(0, 0.2, n)
        p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1)
        table = constituent_table(p4, np.zeros(n, int), np.ones(n))
        pjs = [fastjet.PseudoJet(*map(float, r)) for r in p4]
        jet = pjs[0]
        for pj in pjs[1:]:
            jet = jet + pj
        order = np.argsort(-pt)
        want_eta = np.array([pjs[i].eta() - jet.eta() for i in order])
        want_phi = np.array([jet.delta_phi_to(pjs[i]) for i in order])
        assert np.allclose(table[:, COL["eta_rel"]], want_eta, atol=1e-5)
        assert np.allclose(table[:, COL["phi_rel"]], want_phi, atol=1e-5)
        assert np.allclose(table[:, COL["pt_rel"]], pt[order] / jet.pt(), rtol=1e-6)


def test_flags_and_charges(sample):
    c = sample.constituents
    real = c[..., COL["pt_rel"]] > 0
    assert (c[..., FLAGS].sum(axis=-1)[real] == 1).all()
    charged = (c[..., COL["is_charged_hadron"]] + c[..., COL["is_lepton"]])[real] == 1
    charge = c[..., COL["charge"]][real]
    assert np.isin(charge, (-1, 0, 1)).all()
    assert np.array_equal(charge != 0, charged)
    assert charged.any() and (~charged).any()  # the detector's jets hold tracks and cells


def _binned(jet):
    """The image of constituent rows, binned here independently of the generator."""
    image = np.zeros((PIXELS, PIXELS))
    for pt, eta, phi in jet[:, [COL["pt_rel"], COL["eta_rel"], COL["phi_rel"]]]:
        if pt > 0 and -HALF <= eta < HALF and -HALF <= phi < HALF:
            image[int((eta + HALF) / (2 * HALF / PIXELS)), int((phi + HALF) / (2 * HALF / PIXELS))] += pt
    return image


def test_image_is_the_pt_fractions_binned_about_the_axis(sample):
    whole = _whole(sample)
    for jet, image, complete in zip(sample.constituents, sample.images, whole):
        inside = _binned(jet)
        if complete:  # every constituent stored: the image is exactly theirs
            assert np.allclose(image, inside, atol=1e-6)
            assert float(image.sum()) == pytest.approx(inside.sum(), rel=1e-5)
        else:  # the image holds all constituents (R = 0.4: all inside), the table the leading 32
            assert float(image.sum()) > inside.sum() + 1e-6
            assert (image >= inside - 1e-6).all()
    assert (sample.images >= 0).all() and sample.images.max() > 0.05


def test_a_smaller_max_constituents_keeps_the_leading_ones(sample, tmp_path):
    small = read_jets(_generate(tmp_path / "p16.h5", "hls4ml-lhc-jets", 25, max_constituents=16))
    assert small.constituents.shape == (25, 16, len(CONSTITUENT_NAMES))
    assert np.array_equal(small.features, sample.features)
    assert np.array_equal(small.constituents, sample.constituents[:, :16])
    assert np.array_equal(small.images, sample.images)


def test_particle_level_flags_follow_the_particles(tmp_path):
    arrays = read_jets(_generate(tmp_path / "pl.h5", "particle-level", 5))
    c = arrays.constituents
    assert (c[..., COL["pt_rel"]] > 0).all()  # R = 0.8 particle-level jets: always > 32 particles
    assert (c[..., FLAGS].sum(axis=-1) == 1).all()
    assert c[..., COL["is_photon"]].any() and c[..., COL["is_charged_hadron"]].any()
    photons = c[..., COL["is_photon"]] == 1
    assert (c[..., COL["charge"]][photons] == 0).all()
    assert (c[..., COL["charge"]][c[..., COL["is_charged_hadron"]] == 1] != 0).all()


def test_round_trip_and_splits_stay_aligned(sample, tmp_path):
    write_jets(tmp_path / "again.h5", sample)
    again = read_jets(tmp_path / "again.h5")
    for name in ("features", "labels", "constituents", "images"):
        assert np.array_equal(getattr(again, name), getattr(sample, name)), name
    split = paper_split(len(again), seed=1)
    for name, part in split.arrays(again).items():
        index = getattr(split, name)
        assert np.array_equal(part.constituents, again.constituents[index])
        assert np.array_equal(part.images, again.images[index])
        assert np.array_equal(part.features, again.features[index])
    picked = again.subset(again.class_index == CLASSES.index("t"))
    assert len(picked) == len(picked.constituents) == len(picked.images) == 5


@pytest.mark.parametrize("dataset, damage, expected", [
    ("constituents", lambda c: c[:, :, :5], "shape"),
    ("constituents", lambda c: c[:-1], "jets"),
    ("constituents", lambda c: np.where(np.arange(c.shape[1])[None, :, None] == 3, np.nan, c), "non-finite"),
    ("images", lambda c: np.full_like(c, np.inf), "non-finite"),
    ("images", lambda c: c[:, :8], "shape"),
])
def test_a_damaged_dataset_is_named_with_its_file(sample_file, tmp_path, dataset, damage, expected):
    bad = tmp_path / "bad.h5"
    shutil.copyfile(sample_file, bad)
    with h5py.File(bad, "a") as f:
        values, attrs = damage(f[dataset][...]), dict(f[dataset].attrs)
        del f[dataset]
        f[dataset] = values
        f[dataset].attrs.update(attrs)
    with pytest.raises(DataFormatError) as err:
        read_jets(bad)
    assert err.value.path == str(bad)
    assert f"'{dataset}'" in err.value.problem and expected in err.value.problem


def test_constituent_names_of_another_layout_are_refused(sample_file, tmp_path):
    bad = tmp_path / "names.h5"
    shutil.copyfile(sample_file, bad)
    with h5py.File(bad, "a") as f:
        f["constituents"].attrs["names"] = np.array(["px", "py", *CONSTITUENT_NAMES[2:]], dtype=h5py.string_dtype())
    with pytest.raises(DataFormatError, match="'constituents'"):
        read_jets(bad)


def test_a_features_only_file_reads_as_before(sample, tmp_path):
    old = tmp_path / "old.h5"
    with h5py.File(old, "w") as f:  # the layout files had before constituents and images
        f["features"] = sample.features
        f["features"].attrs["names"] = np.array(FEATURE_NAMES, dtype=h5py.string_dtype())
        f["labels"] = sample.labels
        f["labels"].attrs["classes"] = np.array(CLASSES, dtype=h5py.string_dtype())
        f.attrs["format"], f.attrs["source"] = "qapflow-jets-v1", "generated"
    arrays = read_jets(old)
    assert arrays.constituents is None and arrays.images is None
    assert np.array_equal(arrays.features, sample.features)
    assert arrays.subset(slice(0, 3)).constituents is None
    assert require_inputs(arrays, "features", old) is arrays.features
    with pytest.raises(DataFormatError, match="no 'images' dataset") as err:
        require_inputs(arrays, "images", old)
    assert err.value.path == str(old)
    write_jets(tmp_path / "rewritten.h5", arrays)
    with h5py.File(tmp_path / "rewritten.h5") as f:
        assert sorted(f.keys()) == ["features", "labels"]


def test_downloaded_data_sets_say_that_only_the_generator_writes_constituents(small_jets, tmp_path):
    arff = tmp_path / "src.arff"
    write_arff(arff, small_jets)
    with FileServer() as server:
        server.files["/files/42468.arff"] = arff.read_bytes()
        server.files["/api/v1/json/data/42468"] = json.dumps({"data_set_description": {
            "url": server.url + "/files/42468.arff",
            "md5_checksum": hashlib.md5(arff.read_bytes()).hexdigest()}}).encode()
        from qapflow.data.download import download_to_h5

        out = download_to_h5("openml", tmp_path / "out", tmp_path / "cache", server.url + "/api/v1/json",
                             progress=False)
    arrays = read_jets(out)
    assert require_inputs(arrays, "features", out).shape == (len(small_jets), len(FEATURE_NAMES))
    for kind in ("constituents", "images"):
        with pytest.raises(DataFormatError, match="OpenML") as err:
            require_inputs(arrays, kind, out)
        assert err.value.path == str(out) and "qapflow data generate" in err.value.problem
        assert kind in err.value.problem
    with pytest.raises(DataFormatError, match="OpenML"):  # the ARFF file read directly too
        require_inputs(load_jets(arff), "constituents", arff)
    write_zenodo_h5(tmp_path / "z.h5", small_jets)
    with pytest.raises(DataFormatError, match="Zenodo"):
        require_inputs(load_jets(tmp_path / "z.h5"), "images", tmp_path / "z.h5")
    with pytest.raises(Exception, match="unknown input kind"):
        require_inputs(arrays, "pixels", out)


def test_in_memory_arrays_are_validated_before_writing(small_jets, tmp_path):
    n = len(small_jets)
    bad = JetArrays(small_jets.features, small_jets.labels, {}, np.zeros((n, 32, 3), np.float32))
    with pytest.raises(DataFormatError, match="'constituents' has shape"):
        write_jets(tmp_path / "x.h5", bad)
    images = np.zeros((n, PIXELS, PIXELS))
    images[4, 2, 2] = np.nan
    with pytest.raises(DataFormatError, match=r"'images' holds 1 non-finite.*\[4, 2, 2\]"):
        write_jets(tmp_path / "y.h5", JetArrays(small_jets.features, one_hot(small_jets.class_index), {},
                                                None, images))
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.h5").exists()
