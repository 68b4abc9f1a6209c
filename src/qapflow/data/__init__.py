"""The jet data set: download, generation (Pythia 8 + FastJet), loading and splitting."""

from qapflow.data.schema import CLASSES, FEATURE_NAMES, JetArrays

__all__ = ["CLASSES", "FEATURE_NAMES", "JetArrays"]
