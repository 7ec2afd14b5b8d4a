"""Plain-text rendering of labelled matrices and result tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def matrix(title: str, values: torch.Tensor, rows: Sequence[str] | None = None,
           cols: Sequence[str] | None = None, *, digits: int = 3) -> str:
    """A titled grid; integers print as integers, other values with ``digits`` decimals."""
    values = values.detach().to(torch.float64).cpu()
    if values.dim() == 1:
        values = values[None, :]
    n_rows, n_cols = values.shape
    rows = list(rows) if rows is not None else [str(i) for i in range(n_rows)]
    cols = list(cols) if cols is not None else [str(j) for j in range(n_cols)]
    # values within rounding of integers (e.g. scores divided by beta) print as integers
    integral = bool(torch.all((values - values.round()).abs() <= 1e-9 * values.abs().clamp(min=1)))
    if integral:
        values = values.round() + 0.0  # + 0.0 turns -0.0 into 0.0
    cells = [[(f"{v:.0f}" if integral else f"{v:.{digits}f}") for v in row] for row in values.tolist()]
    width = max([len(c) for c in cols] + [len(x) for row in cells for x in row] + [1])
    label_width = max(len(r) for r in rows) if rows else 0
    lines = [f"{title}  [{n_rows} x {n_cols}]",
             " " * label_width + " " + " ".join(c.rjust(width) for c in cols)]
    lines += [r.rjust(label_width) + " " + " ".join(x.rjust(width) for x in row)
              for r, row in zip(rows, cells)]
    return "\n".join(lines)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*header), rule, *(fmt.format(*map(str, r)) for r in rows)])
