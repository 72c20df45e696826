"""Progress bars for long CLI commands, shown only to a person at a terminal.

A command adds `quiet_option` and wraps its slow call in `progress_bar`,
which yields a `(done, total)` callback to hand to the library::

    with progress_bar("Merging", quiet) as update:
        run_merge(layout, progress=update)

The bar goes to stderr, so stdout stays clean for `--json` and pipes. When
stderr is not a terminal (a pipe, a log file, a scheduled task, the test
runner) or `--quiet` is given, nothing at all is printed and the callback
does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

ProgressCallback = Callable[[int, int], None]


def quiet_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add `-q/--quiet` (no progress bar) to a command."""
    return click.option("-q", "--quiet", is_flag=True, help="Do not show a progress bar.")(function)


def stderr_is_terminal() -> bool:
    """Return True when stderr is an interactive terminal."""
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # No isatty, or the stream is closed.
        return False


def _ignore(done: int, total: int) -> None:
    pass


@contextmanager
def progress_bar(label: str, quiet: bool = False) -> Iterator[ProgressCallback]:
    """Show a progress bar on stderr while the block runs; yield its `(done, total)` callback.

    The callback takes the work done so far and the total (in any unit, such
    as bytes or records); the total may change between calls.
    """
    if quiet or not stderr_is_terminal():
        yield _ignore
        return
    # The length is a placeholder until the first call sets the real total.
    with click.progressbar(length=1, label=label, file=sys.stderr, show_eta=True, show_percent=True) as bar:

        def update(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(max(0, min(done, bar.length) - bar.pos))

        yield update
