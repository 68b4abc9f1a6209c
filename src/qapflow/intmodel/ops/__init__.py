"""The IntGraph's integer operations, one file per family; OPS maps a kind to its class."""

from qapflow.intmodel.ops.base import Op, Units
from qapflow.intmodel.ops.linear import Conv, Dense
from qapflow.intmodel.ops.merge import Add, Concat, add_coefficients
from qapflow.intmodel.ops.pool import MaxPool, SumPool
from qapflow.intmodel.ops.requant import ShiftRequant, ThresholdRequant
from qapflow.intmodel.ops.wiring import Reshape, Transpose

OPS = {cls.kind: cls for cls in (Dense, Conv, MaxPool, SumPool, Add, Concat, Reshape, Transpose, ShiftRequant,
                                 ThresholdRequant)}


def op_from_dict(data: dict) -> Op:
    return OPS[data["kind"]].from_dict(data)


__all__ = ["OPS", "Op", "Units", "op_from_dict", "add_coefficients", "Dense", "Conv", "MaxPool", "SumPool", "Add",
           "Concat", "Reshape", "Transpose", "ShiftRequant", "ThresholdRequant"]
