"""What the command line prints: width-aware tables and per-stage progress lines.

Tables are laid out by ``rich``, which counts a Chinese character as the two terminal
columns it takes (hand padding with ``f"{s:40s}"`` counts it as one, and every column to
its right drifts). Progress is one line per stage with counts and elapsed time, written
through the ``claimscreen.progress`` logger: the command line shows it on standard error
when that is a terminal (never under ``--quiet``), and Airflow's task logs get the same
lines from the logger wherever the stage runs.
"""
from __future__ import annotations

import io
import logging
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

log = logging.getLogger("claimscreen.progress")

Column = str | tuple[str, str]          # header, or (header, "left" | "right")


def table(columns: Sequence[Column], rows: Iterable[Sequence], title: str | None = None,
          width: int | None = None) -> str:
    """rows as a text table, columns aligned by display width (a Chinese character is two
    columns). Numbers are right-aligned unless a column says otherwise. width: the
    terminal's when printing to one, else wide enough never to wrap."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    rows = [list(r) for r in rows]
    t = Table(title=title, title_justify="left", box=box.SQUARE, show_edge=True,
              header_style=None, title_style=None, pad_edge=True, padding=(0, 1))
    for i, c in enumerate(columns):
        header, justify = (c, None) if isinstance(c, str) else c
        if justify is None:
            numeric = rows and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
            justify = "right" if numeric else "left"
        t.add_column(header, justify=justify, no_wrap=width is None, overflow="fold")
    for r in rows:
        t.add_row(*("-" if v is None else v if isinstance(v, str) else _num(v) for v in r))
    if width is None:
        width = (shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 10_000)
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False, emoji=False,
            highlight=False, markup=False, soft_wrap=False).print(t)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())


def _num(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,d}"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.2f}"
    return str(v)


# ------------------------------------------------------------------------- progress

class _StderrWhenTerminal(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr
        if stream is not None and stream.isatty():
            stream.write(self.format(record) + "\n")
            stream.flush()


_handler: logging.Handler | None = None


def show_progress(enabled: bool = True, force: bool = False) -> None:
    """The command line's switch: per-stage lines on stderr when it is a terminal (or
    always with force), none under --quiet. ``reset_progress`` undoes it."""
    reset_progress()
    global _handler
    if enabled:
        _handler = logging.StreamHandler(sys.stderr) if force else _StderrWhenTerminal()
        _handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(_handler)
        log.setLevel(logging.INFO)
        log.propagate = False          # the command line's own log handler would repeat them
    else:
        log.setLevel(logging.WARNING)


def reset_progress() -> None:
    """Back to a plain logger: INFO records propagate to whatever logging is set up (Airflow)."""
    global _handler
    if _handler is not None:
        log.removeHandler(_handler)
        _handler = None
    log.setLevel(logging.NOTSET)
    log.propagate = True


@contextmanager
def muted():
    """No stage lines inside (a command that prints its own, coarser, line per night)."""
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def stage(name: str, **counts):
    """Log '<name> ...' on entry and '<name>: k=v ... (1.2s)' on exit; the caller adds
    counts found on the way with ``progress['key'] = value``."""
    found = dict(counts)
    t0 = time.perf_counter()
    log.info("%s ...", name)
    yield found
    done = ", ".join(f"{k.replace('_', ' ')} {_num(v) if not isinstance(v, str) else v}"
                     for k, v in found.items())
    log.info("%s%s (%.1fs)", name, f": {done}" if done else "", time.perf_counter() - t0)


def step(i: int, n: int, what: str, seconds: float) -> None:
    """One line per item of a long loop: '[3/30] 2026-10-03: landed, 1,234 rows (12.3s)'."""
    log.info("[%d/%d] %s (%.1fs)", i, n, what, seconds)
