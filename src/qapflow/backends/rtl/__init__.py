"""The RTL backend (da4ml): the integer graph traced into adder graphs and comparators."""
