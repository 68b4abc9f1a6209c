"""Jet generation from first principles: Pythia 8 events, FastJet jets, substructure features.

Needs the `physics` extra (pythia8mc, fastjet). Import the submodules directly.
"""
