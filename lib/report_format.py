"""Formats a report of a shared root: an 80-column table, or Markdown."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerasjobs.report import Report, RunRow, TuningRow

ELLIPSIS = "…"


def shorten(text: str, width: int, keep_end: bool = False) -> str:
    """`text` in at most `width` characters, an ellipsis marking the cut.

    With `keep_end` the middle is cut, so names that differ only at the end
    (a hash, a date) stay apart.
    """
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    if not keep_end:
        return text[: width - 1] + ELLIPSIS
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


def format_duration(seconds: float | None) -> str:
    """12s, 3m05s, 2h07m or 4d03h."""
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    minutes, second = divmod(whole, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d{hour:02d}h"
    if hours:
        return f"{hours}h{minute:02d}m"
    if minutes:
        return f"{minutes}m{second:02d}s"
    return f"{second}s"


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_hyperparameters(values: dict[str, Any]) -> str:
    """name=value pairs in name order, floats with four significant digits."""
    return " ".join(f"{name}={_value(values[name])}" for name in sorted(values))


def _dataset_name(dataset: str) -> str:
    # A file or folder given by path: its name is what tells runs apart.
    return Path(dataset).name if "/" in dataset else dataset


@dataclass(frozen=True)
class Column:
    """A table column; `minimum` is how narrow a long value may be cut (None:
    never cut)."""

    header: str
    minimum: int | None = None
    right: bool = False
    keep_end: bool = False


RUN_COLUMNS = (
    Column("run", 16, keep_end=True),
    Column("dataset", 7),
    Column("model", 7, keep_end=True),
    Column("best", right=True),
    Column("test", right=True),
    Column("epochs", right=True),
    Column("time", right=True),
    Column("status"),
)
PROJECT_COLUMNS = (
    Column("project", 12, keep_end=True),
    Column("tuner"),
    Column("state"),
    Column("trials", right=True),
    Column("failed", right=True),
    Column("objective", 8),
    Column("best", right=True),
)
HYPERPARAMETER_COLUMN = Column("best hyperparameters")
RUN_NOTE = (
    "best: best validation accuracy; test: the best checkpoint's test "
    "accuracy; epochs: run/asked; time: training time."
)
PROJECT_NOTE = "trials: completed/asked; best: the best trial's objective."


def _run_cells(row: RunRow) -> list[str]:
    epochs = "-"
    if row.epochs_run is not None:
        epochs = f"{row.epochs_run}/{row.epochs if row.epochs else '?'}"
    return [
        row.name,
        _dataset_name(row.dataset) or "-",
        row.model or "-",
        _score(row.best_accuracy),
        _score(row.test_accuracy),
        epochs,
        format_duration(row.seconds),
        row.status,
    ]


def _project_cells(row: TuningRow) -> list[str]:
    asked = row.max_trials if row.max_trials else "?"
    return [
        row.name,
        row.tuner or "-",
        row.state,
        f"{row.done}/{asked}",
        str(row.failed),
        row.objective or "-",
        _score(row.best_score),
    ]


def fit_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> list[int]:
    """Column widths whose table fits `width`.

    Cuttable columns give up characters where they have the most to spare
    above their minimum; if that is not enough, they shrink to their header.
    """
    widths = [
        max([len(column.header), *(len(row[index]) for row in rows)])
        for index, column in enumerate(columns)
    ]
    for floor in ("minimum", "header"):
        limits = [
            len(column.header) if floor == "header" or column.minimum is None
            else max(column.minimum, len(column.header))
            for column in columns
        ]  # fmt: skip
        cuttable = [i for i, column in enumerate(columns) if column.minimum]
        while sum(widths) + 2 * (len(widths) - 1) > width:
            spare = {
                i: widths[i] - limits[i] for i in cuttable if widths[i] > limits[i]
            }
            if not spare:
                break
            widths[max(spare, key=spare.__getitem__)] -= 1
    return widths


def render_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> list[str]:
    """A plain-text table: header, a rule of dashes, one line per row."""
    widths = fit_widths(columns, rows, width)

    def line(cells: Sequence[str]) -> str:
        parts = []
        for column, cell, size in zip(columns, cells, widths, strict=True):
            cell = shorten(cell, size, column.keep_end)
            parts.append(cell.rjust(size) if column.right else cell.ljust(size))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * size for size in widths)
    return [line([column.header for column in columns]), rule, *map(line, rows)]


def render_markdown(
    columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> list[str]:
    """A GitHub-flavoured Markdown table with every value in full."""

    def line(cells: Sequence[str]) -> str:
        escaped = (cell.replace("|", "\\|") for cell in cells)
        return "| " + " | ".join(escaped) + " |"

    separator = ["---:" if column.right else "---" for column in columns]
    return [line([column.header for column in columns]), line(separator)] + [
        line(row) for row in rows
    ]


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text, width, subsequent_indent=indent, break_on_hyphens=False
    ) or [""]


def _empty_message(report: Report) -> list[str]:
    root = report.root
    return [
        f"No runs or tuning projects in {root} yet. Start one with:",
        f"  kerasjobs train --root {root}",
        f"  kerasjobs tune --root {root}",
    ]


def format_table(report: Report, width: int = 80) -> str:
    """The report for a terminal: every line at most `width` characters."""
    if not report.runs and not report.projects:
        return "\n".join(_empty_message(report))

    lines: list[str] = []
    if report.runs:
        title = f"Runs in {report.root} ({len(report.runs)}, oldest first)"
        lines += [shorten(title, width, keep_end=True)]
        lines += render_table(RUN_COLUMNS, [_run_cells(r) for r in report.runs], width)
        lines += _wrap(RUN_NOTE, width)
    if report.projects:
        count = len(report.projects)
        title = f"Tuning projects in {report.root / 'tuning'} ({count}, oldest first)"
        cells = [_project_cells(row) for row in report.projects]
        lines += [""] if lines else []
        lines += [shorten(title, width, keep_end=True)]
        lines += render_table(PROJECT_COLUMNS, cells, width)
        lines += _wrap(PROJECT_NOTE, width)
        # Hyperparameters are what a reader came for: wrapped, never cut.
        lines += ["", "Best hyperparameters:"]
        for row in report.projects:
            values = format_hyperparameters(row.best_hyperparameters) or "-"
            lines += _wrap(f"  {row.name}: {values}", width, indent="    ")
    return "\n".join(lines)


def format_markdown(report: Report) -> str:
    """The report as Markdown: a heading and a table per section, values in full."""
    if not report.runs and not report.projects:
        first, *commands = _empty_message(report)
        return "\n".join([first, "", "```", *map(str.strip, commands), "```"])

    sections: list[str] = []
    if report.runs:
        table = render_markdown(RUN_COLUMNS, [_run_cells(r) for r in report.runs])
        sections.append(
            f"## Runs in `{report.root}` ({len(report.runs)})\n\n"
            f"Oldest first. {RUN_NOTE}\n\n" + "\n".join(table)
        )
    if report.projects:
        columns = (*PROJECT_COLUMNS, HYPERPARAMETER_COLUMN)
        rows = [
            [*_project_cells(row), format_hyperparameters(row.best_hyperparameters)]
            for row in report.projects
        ]
        sections.append(
            f"## Tuning projects in `{report.root / 'tuning'}` ({len(rows)})\n\n"
            f"Oldest first. {PROJECT_NOTE}\n\n"
            + "\n".join(render_markdown(columns, rows))
        )
    return "\n\n".join(sections)
