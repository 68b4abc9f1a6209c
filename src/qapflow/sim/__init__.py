"""Simulation: the C-simulation harness and its comparison against the reference models."""
