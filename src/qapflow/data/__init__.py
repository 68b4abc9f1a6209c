"""The jet data set: download, generation (Pythia 8 + FastJet), loading and splitting."""

from qapflow.data.schema import CLASSES, CONSTITUENT_NAMES, FEATURE_NAMES, JetArrays

# require_inputs (what a stage asks a data set for) lives in qapflow.data.sources
__all__ = ["CLASSES", "CONSTITUENT_NAMES", "FEATURE_NAMES", "JetArrays"]
