"""`ufstats check`: validate every shard, the view and this PC's local spool.

The check only reads. It reports, per shard and line: damaged lines,
incomplete last lines, duplicate event ids, lines written by another
workstation or by a second machine, and timestamps far in the future (a PC
with a wrong clock). It also reports files in the shards folder that are not
shard names and a `Stats` or `Stats/shards` that is a file. It reports a
missing, damaged, foreign or stale view, an unreadable epoch file, and records of this base path still waiting in this PC's local spool.
It also reports a base folder without `Stats/shards` (usually a wrong base
path) and invalid `ufstats.toml` files, both the user's and the base folder's.

Findings tied to a line stay in a shard forever, because nothing ever edits a
shard. A monitoring job can therefore pass an earlier `--json` report as a
baseline: findings listed there are marked known and no longer fail the check.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .checkpoint import read_checkpoint_view_sha
from .config import config_problems
from .events import check_event
from .errors import InvalidArgumentError, StatsFolderError
from .layout import SHARD_SUFFIX, Layout
from .shard_reader import ShardScan
from .spool import find_spools
from .state import read_epoch

# A timestamp more than this far ahead of the checking PC's clock comes from a
# PC whose clock (or time zone setting) is wrong. Clocks that drift by a few
# minutes stay below it; a wrong time zone or date does not.
DEFAULT_FUTURE_MINUTES = 60
# The view may lag behind the newest shard by this much before it is stale.
# The margin covers a merge that runs on a schedule, such as every 15 minutes.
DEFAULT_VIEW_MAX_AGE_MINUTES = 60

# Kinds whose findings point at one line or file, so a baseline can mark them known.
LINE_KINDS = {"damaged-line", "duplicate-id", "foreign-line", "second-machine", "future-timestamp", "unexpected-file"}


@dataclass
class Finding:
    """One thing that needs attention."""

    kind: str
    message: str
    shard: str | None = None
    line: int | None = None
    known: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.shard}:{self.line}"


@dataclass
class CheckReport:
    """The result of a check: what was read and what was found."""

    stats_dir: str
    shards: int = 0
    lines: int = 0
    events: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no finding needs attention (known findings do not count)."""
        return all(finding.known for finding in self.findings)

    def add(self, kind: str, message: str, shard: str | None = None, line: int | None = None) -> None:
        self.findings.append(Finding(kind, message, shard, line))

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            if not finding.known:
                counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return {
            "ok": self.ok,
            "stats_dir": self.stats_dir,
            "shards": self.shards,
            "lines": self.lines,
            "events": self.events,
            "counts": counts,
            "findings": [asdict(finding) for finding in self.findings],
        }


@dataclass
class _ShardFacts:
    newest_mtime: float = 0.0
    first_location: dict[str, tuple[str, int]] = field(default_factory=dict)


def _check_shard(layout: Layout, name: str, report: CheckReport, facts: _ShardFacts, future_limit: datetime) -> None:
    path = layout.shards_dir / f"{name}{SHARD_SUFFIX}"
    scan = ShardScan(path, name)
    machines: dict[str, int] = {}
    for line, event in scan.events():
        try:
            instant = check_event(event)
        except ValueError as exc:
            report.add("damaged-line", f"{name} line {line}: {exc}", name, line)
            continue
        report.events += 1
        earlier = facts.first_location.get(event.id)
        if earlier is not None:
            report.add(
                "duplicate-id",
                f"{name} line {line}: event id {event.id} also at {earlier[0]} line {earlier[1]} "
                "(readers count it once; a spool delivered twice after a crash leaves such a copy)",
                name,
                line,
            )
        else:
            facts.first_location[event.id] = (name, line)
        if event.workstation != name:
            report.add(
                "foreign-line",
                f"{name} line {line}: written by workstation {event.workstation!r}, not {name!r}",
                name,
                line,
            )
        if event.machine is not None and event.machine not in machines:
            machines[event.machine] = line
            if len(machines) == 2:
                first = next(iter(machines))
                report.add(
                    "second-machine",
                    f"{name} line {line}: machine {event.machine} writes this shard, but machine "
                    f"{first} wrote it before: two PCs may use the workstation id {name!r}",
                    name,
                    line,
                )
        if instant > future_limit:
            report.add(
                "future-timestamp",
                f"{name} line {line}: timestamp {event.timestamp} is in the future; check the clock "
                "and time zone of that PC",
                name,
                line,
            )
    for damage in scan.damage:
        report.add("damaged-line", f"{damage.describe()} [{damage.excerpt}]", name, damage.line)
    if scan.incomplete_tail:
        report.add(
            "incomplete-tail",
            f"{name} ends in an incomplete line after line {scan.line}: a writer died while "
            f"appending (or is appending right now); the next record from {name} closes it",
            name,
        )
    report.lines += scan.line
    report.shards += 1
    facts.newest_mtime = max(facts.newest_mtime, os.stat(path).st_mtime)


def _check_shards_folder(layout: Layout, names: list[str], report: CheckReport) -> None:
    expected = {f"{name}{SHARD_SUFFIX}" for name in names}
    try:
        entries = sorted(os.listdir(layout.shards_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry not in expected:
            report.add(
                "unexpected-file",
                f"{layout.shards_dir / entry} is not a shard (shards are named <workstation>{SHARD_SUFFIX}); "
                "readers ignore it: move it out of the shards folder",
                entry,
            )


def _check_view(layout: Layout, report: CheckReport, newest_shard_mtime: float, max_age: timedelta) -> None:
    view = layout.view_file
    try:
        data = view.read_bytes()
        view_mtime = os.stat(view).st_mtime
    except FileNotFoundError:
        if report.shards:
            report.add("view-missing", f"{view} is missing; run `ufstats merge`")
        return
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        report.add("view-damaged", f"{view} is not a JSON object; run `ufstats merge` to rebuild it (a copy is kept)")
        return
    if hashlib.sha256(data).hexdigest() != read_checkpoint_view_sha(layout):
        report.add(
            "view-not-merged",
            f"{view} was not written by the last `ufstats merge` (changed since, or a v1 file); "
            "run `ufstats merge` (see its message if it refuses)",
        )
    lag = newest_shard_mtime - view_mtime
    if lag > max_age.total_seconds():
        report.add(
            "view-stale",
            f"{view} is {_describe_lag(lag)} older than the newest shard; run `ufstats merge` "
            "or check its schedule",
        )


def _describe_lag(seconds: float) -> str:
    """Return a lag as "N minutes", or in seconds when it is under a minute."""
    if seconds < 1:
        return "less than 1 second"
    count, unit = (round(seconds), "second") if seconds < 60 else (round(seconds / 60), "minute")
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _check_spool(layout: Layout, report: CheckReport) -> None:
    base = os.path.abspath(layout.base_path)
    for spool in find_spools():
        if os.path.abspath(spool.base_path) != base:
            continue
        try:
            count = spool.path.read_bytes().count(b"\n")
        except FileNotFoundError:
            continue
        if count:
            report.add(
                "spool-pending",
                f"{count} records of workstation {spool.workstation} wait in the local spool {spool.path}; "
                "run `ufstats flush` on this PC",
                spool.workstation,
            )


def apply_baseline(report: CheckReport, baseline: dict[str, Any]) -> None:
    """Mark findings that an earlier `--json` report listed as known (line findings only)."""
    known = {
        Finding(item["kind"], "", item.get("shard"), item.get("line")).key
        for item in baseline.get("findings", [])
        if item.get("kind") in LINE_KINDS
    }
    for finding in report.findings:
        if finding.kind in LINE_KINDS and finding.key in known:
            finding.known = True


def run_check(
    layout: Layout,
    future_minutes: float = DEFAULT_FUTURE_MINUTES,
    view_max_age_minutes: float = DEFAULT_VIEW_MAX_AGE_MINUTES,
    now: datetime | None = None,
) -> CheckReport:
    """Read every shard, the view and the local spool, and list what needs attention.

    Raises:
        StatsFolderError: the base path does not exist or cannot be reached.
    """
    layout.require_base_path()
    report = CheckReport(str(layout.stats_dir))
    for problem in config_problems(layout.base_path):
        report.add("config-invalid", f"{problem}; fix the file")
    blocking = layout.file_in_the_way()
    if blocking is not None:
        report.add(
            "not-a-folder",
            f"{blocking} is a file, not a folder, so no PC can record here (records raise "
            "StatsFolderError); move or rename that file",
        )
        _check_spool(layout, report)
        return report
    try:
        has_shards_folder = layout.shards_dir.is_dir()
    except OSError:
        has_shards_folder = False
    if not has_shards_folder:
        report.add(
            "no-statistics",
            f"no Stats/shards folder in {layout.base_path}; check --base-path "
            "(Stats/shards appears when the first PC records)",
        )
        _check_spool(layout, report)
        return report
    future_limit = (now or datetime.now(timezone.utc)) + timedelta(minutes=future_minutes)
    try:
        read_epoch(layout)
    except StatsFolderError as exc:
        report.add("epoch-damaged", str(exc))
    names = layout.shard_names()
    facts = _ShardFacts()
    for name in names:
        try:
            _check_shard(layout, name, report, facts, future_limit)
        except OSError as exc:
            report.add(
                "shard-unreadable",
                f"{name}: cannot be read ({exc.strerror or exc}); merge and readers stop with this "
                "error until it can, so check the file's permissions and the file server",
                name,
            )
    _check_shards_folder(layout, names, report)
    _check_view(layout, report, facts.newest_mtime, timedelta(minutes=view_max_age_minutes))
    _check_spool(layout, report)
    return report


def read_baseline(path: Path) -> dict[str, Any]:
    """Read an earlier `ufstats check --json` report.

    Raises:
        InvalidArgumentError: the file cannot be read or is not such a report.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"Invalid baseline {path}: {exc}; give a file written by `ufstats check --json`") from exc
    if not isinstance(document, dict) or not isinstance(document.get("findings"), list):
        raise InvalidArgumentError(f"Invalid baseline {path}: not a report written by `ufstats check --json`")
    return document
