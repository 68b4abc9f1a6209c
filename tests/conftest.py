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
