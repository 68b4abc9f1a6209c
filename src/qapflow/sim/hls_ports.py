"""How a simulator drives an hls4ml project's top function: its port types, sizes and order.

io_parallel tops take arrays; io_stream tops take hls::stream of packed arrays (nnet::array,
`::size` elements a beat), which the harness fills beat by beat from the same flat arrays.
Integer-graph projects are channels last on their ports; the manifest's `ports` gives the
order of the elements in the IntGraph's flat channels-first order, applied here on the way in
and out, so callers see the integer model's order either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def port_sizes(summary: dict) -> tuple[int, int]:
    """Input and output integers per sample of any project: an integer graph's `ports`, else the
    dense chain's layer widths."""
    ports = summary.get("ports")
    if ports:
        return ports["n_in"], ports["n_out"]
    return summary["layer_widths"][0][1], summary["layer_widths"][-1][0]


def to_ports(x_int: np.ndarray, input_order: np.ndarray | None) -> np.ndarray:
    """Input integers (flat, the integer model's order) in the order of the input port."""
    x = np.asarray(x_int, np.int64)
    return x if input_order is None else np.ascontiguousarray(x[:, input_order])


def from_ports(out: np.ndarray, output_order: np.ndarray | None) -> np.ndarray:
    """The output port's integers back in the integer model's flat order."""
    out = np.asarray(out, np.int64)
    if output_order is None:
        return out
    back = np.empty_like(out)
    back[:, output_order] = out
    return back


def port_orders(summary: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The manifest's port orders (integer graphs; FINN's and hls4ml's projects alike), or None."""
    ports = summary.get("ports")
    if not ports:
        return None, None
    return np.asarray(ports["input_order"], np.int64), np.asarray(ports["output_order"], np.int64)


def io_types(prj: Path, project: str) -> tuple[str, str]:
    """The top function's input and output types (the packed type of a stream)."""
    header = (Path(prj) / "firmware" / f"{project}.h").read_text()
    signature = header[header.index(f"void {project}("):]
    args = [a.strip() for a in signature[signature.index("(") + 1 : signature.index(")")].split(",")]
    types = []
    for arg in args[:2]:
        kind = arg.split()[0]
        if kind.startswith("hls::stream<"):
            kind = kind[len("hls::stream<"):].rstrip(">&").strip()
        types.append(kind)
    return types[0], types[1]


@dataclass
class HlsPorts:
    input_t: str
    output_t: str
    n_in: int
    n_out: int
    stream: bool
    input_order: np.ndarray | None = None
    output_order: np.ndarray | None = None

    @classmethod
    def of(cls, prj: Path, summary: dict) -> "HlsPorts":
        input_t, output_t = io_types(prj, summary["project_name"])
        stream = summary.get("options", {}).get("io") == "stream"
        return cls(input_t, output_t, *port_sizes(summary), stream, *port_orders(summary))

    def template_fields(self, top: str) -> dict:
        """The C++ the harness templates take: element types of the flat arrays, and the call."""
        if not self.stream:
            return {"input_elem": self.input_t, "output_elem": self.output_t, "call": f"{top}(inputs, outputs);"}
        i_t, o_t = self.input_t, self.output_t
        call = "\n".join([
            f"hls::stream<{i_t}> in_stream;",
            f"        hls::stream<{o_t}> out_stream;",
            f"        for (int p = 0; p < {self.n_in} / {i_t}::size; p++) {{",
            f"            {i_t} beat;",
            f"            for (int k = 0; k < {i_t}::size; k++) beat[k] = inputs[p * {i_t}::size + k];",
            "            in_stream.write(beat);",
            "        }",
            f"        {top}(in_stream, out_stream);",
            f"        for (int p = 0; p < {self.n_out} / {o_t}::size; p++) {{",
            f"            {o_t} beat = out_stream.read();",
            f"            for (int k = 0; k < {o_t}::size; k++) outputs[p * {o_t}::size + k] = beat[k];",
            "        }",
        ])
        return {"input_elem": f"{i_t}::value_type", "output_elem": f"{o_t}::value_type", "call": call}

    def to_ports(self, x_int: np.ndarray) -> np.ndarray:
        return to_ports(x_int, self.input_order)

    def from_ports(self, out: np.ndarray) -> np.ndarray:
        return from_ports(out, self.output_order)
