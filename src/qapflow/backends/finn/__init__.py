"""The FINN backend: dataflow projects (MVAU + Thresholding, folded by PE and SIMD) from any
model the integer model accepts, simulated in FINN's python mode and, as RTL, in Verilator.

FINN (finn-plus) gives the architecture: its streamlining and HW-layer conversion, folding,
FIFO and width-converter insertion, and its own RTL. The integer model gives every number:
the MVAU weights and the thresholds are the integer model's (FINN's own are compared with
them and reported), so FINN firmware is exact where the integer model is.
"""
