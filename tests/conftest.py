import numpy as np
import pytest

from qapflow.data.schema import CLASSES, FEATURE_NAMES, JetArrays, one_hot


@pytest.fixture
def small_jets() -> JetArrays:
    """A small, valid, balanced JetArrays with float32-representable features."""
    rng = np.random.default_rng(7)
    n = 100
    classes = np.arange(n) % len(CLASSES)
    features = rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    features[:, 0] += classes  # some class dependence
    return JetArrays(features, one_hot(classes), {"source": "test"})


@pytest.fixture(scope="session")
def generated_jets_file(tmp_path_factory):
    """10,000 jets (2,000 per class) generated with Pythia 8 + FastJet once per test session.

    Training tests use the first 3,000 (max_jets); csim tests simulate all 10,000."""
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from qapflow.data.generate.runner import generate_dataset

    out = tmp_path_factory.mktemp("generated") / "jets.h5"
    generate_dataset(out, 10_000, seed=2024, workers=2, progress=False)
    return out
