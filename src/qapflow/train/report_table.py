"""A plain-text table of a run's iterations, for the terminal."""

from __future__ import annotations

COLUMNS = (("iteration", "iter", "{:>4d}"), ("sparsity", "sparsity", "{:>9.3f}"),
           ("accuracy", "accuracy", "{:>9.4f}"), ("folded_accuracy", "folded", "{:>9.4f}"),
           ("bops", "BOPs", "{:>12,.0f}"), ("bops_float_input", "BOPs(float in)", "{:>15,.0f}"),
           ("neural_efficiency", "eta", "{:>7.3f}"))


def format_rows(rows: list[dict]) -> str:
    present = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    widths = [len(fmt.format(0 if key == "iteration" else 0.0)) for key, _, fmt in present]
    lines = ["".join(f"{title:>{w}}" for (_, title, _), w in zip(present, widths))]
    for r in rows:
        cells = []
        for (key, _, fmt), w in zip(present, widths):
            value = r.get(key)
            cells.append(" " * w if value is None else fmt.format(int(value) if key == "iteration" else value))
        lines.append("".join(cells))
    return "\n".join(lines)
