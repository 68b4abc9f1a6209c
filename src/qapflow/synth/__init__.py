"""Synthesis: vendor HLS/Vivado runs and their report parsers (Yosys with the RTL backend)."""
