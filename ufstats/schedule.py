"""`ufstats merge --every`: merge on a fixed interval until stopped.

The loop merges, writes one line about the round to stderr, and waits for
the next round. A failed round (server unreachable, a foreign view, a full
disk) is logged and the loop goes on. Ctrl+C (SIGINT), SIGTERM and, on
Windows, Ctrl+Break end the loop with exit status 0. A signal that arrives
while a merge runs lets that merge finish first, and a second signal stops
at once. The view and the checkpoint are replaced by rename, so even
then no half-written file is left.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from .merge import MergeResult

MAX_INTERVAL_SECONDS = 7 * 24 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600}
_INTERVAL_PATTERN = re.compile(r"(\d+)([smh])")
# Maximum sleep, in seconds, between two checks for a stop request.
_WAIT_SLICE = 0.2


def parse_interval(text: str) -> int:
    """Return the seconds of an interval written as 30s, 5m or 1h.

    Raises:
        ValueError: `text` is not a whole number followed by s, m or h, or
            it is 0 or longer than 7 days.
    """
    match = _INTERVAL_PATTERN.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"invalid interval {text!r}: use a whole number with a unit, e.g. 30s, 5m or 1h")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds == 0:
        raise ValueError(f"invalid interval {text!r}: must be longer than 0")
    if seconds > MAX_INTERVAL_SECONDS:
        raise ValueError(f"invalid interval {text!r}: must be at most 7 days (168h)")
    return seconds


class IntervalType(click.ParamType):
    """A click parameter type for `parse_interval` (usage error on bad input)."""

    name = "interval"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_interval(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _StopNow(BaseException):
    """Raised by the signal handler to leave the loop at once.

    A BaseException, like KeyboardInterrupt, so that no `except Exception`
    on the way swallows it.
    """


class _StopControl:
    """Signal handlers that ask the loop to stop, installed for its duration."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.requested = False
        self.busy = False
        self._echo = echo
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.busy and not self.requested:
            self.requested = True
            self._echo(f"received {name}; stopping after the current merge (send it again to stop now)")
            return
        self.requested = True
        raise _StopNow(name)

    def __enter__(self) -> _StopControl:
        names = ["SIGINT", "SIGTERM", "SIGBREAK"]
        for signum in (getattr(signal, name) for name in names if hasattr(signal, name)):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def timestamped(message: str) -> str:
    return f"{datetime.now().astimezone().isoformat(timespec='seconds')} {message}"


def run_every(
    interval: int,
    merge_once: Callable[[], MergeResult],
    echo: Callable[[str], None],
    max_rounds: int | None = None,
) -> int:
    """Call `merge_once` every `interval` seconds until a stop signal; return the rounds run.

    Each round writes one timestamped line through `echo`. An exception of
    a round is written as one line and the loop goes on; `max_rounds`
    bounds the loop (None: run until stopped).
    """
    rounds = 0
    with _StopControl(lambda message: echo(timestamped(message))) as control:
        echo(timestamped(f"merging every {interval} s; press Ctrl+C to stop"))
        try:
            while not control.requested and (max_rounds is None or rounds < max_rounds):
                started = time.monotonic()
                control.busy = True
                try:
                    result = merge_once()
                    echo(timestamped(_round_line(result)))
                except Exception as exc:  # noqa: BLE001 - one failed round must not end the loop
                    # Messages often end in a full stop, which would run into "; next attempt".
                    message = str(exc).rstrip().rstrip(".")
                    echo(timestamped(f"merge failed: {type(exc).__name__}: {message}; next attempt in {interval} s"))
                finally:
                    control.busy = False
                rounds += 1
                deadline = started + interval
                while not control.requested and (max_rounds is None or rounds < max_rounds):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    time.sleep(min(remaining, _WAIT_SLICE))
        except _StopNow as stop:
            echo(timestamped(f"received {stop}; stopped after {rounds} merges"))
            return rounds
    echo(timestamped(f"stopped after {rounds} merges"))
    return rounds


def _round_line(result: MergeResult) -> str:
    line = (
        f"merged {result.events} events from {result.shards} shards in {result.seconds:.2f} s, "
        f"{len(result.damage)} damaged lines, {result.duplicates} duplicates"
    )
    if result.backup:
        line += f", kept the previous view as {result.backup}"
    return line
