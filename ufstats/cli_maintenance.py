"""`ufstats flush`, `ufstats reset` and `ufstats check`: maintenance of a base folder.

`ufstats.cli` registers the commands on its group.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from . import config
from .cli import base_path_option, json_option, layout_for, print_json
from .errors import StatsManagerError
from .layout import Layout
from .manager import StatsManager
from .merge import run_merge


@click.command()
@click.option(
    "--base-path", "base_path", envvar="UFSTATS_BASE_PATH", default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Deliver only spools for this base folder (default: all spools of this user).",
)
def flush(base_path: Path | None) -> None:
    """Deliver records kept in this PC's local spool to the file server."""
    from .spool import find_spools

    failures = 0
    spool_folder = config.effective_settings(base_path=base_path)["spool_dir"].value
    spools = [
        s for s in find_spools(spool_folder)
        if base_path is None or os.path.abspath(s.base_path) == os.path.abspath(base_path)
    ]
    if not spools:
        if base_path is not None:
            # A mistyped folder should not look like "nothing to deliver".
            Layout.for_base_path(base_path).require_base_path()
        click.echo("no spooled records")
        return
    for spool in spools:
        manager = StatsManager(spool.base_path, workstation=spool.workstation)
        try:
            delivered = manager.flush()
            noun = "record" if delivered == 1 else "records"
            click.echo(f"delivered {delivered} {noun} to {manager.layout.shard_path(spool.workstation)}")
        except StatsManagerError as exc:
            failures += 1
            click.echo(f"not delivered: {exc}", err=True)
        finally:
            manager.close()
    if failures:
        sys.exit(1)


def _print_resets(resets: list[Any], layout: Layout) -> None:
    """Print one line per `ResetInfo`: id, time, shards archived and the restores that undid it."""
    if not resets:
        click.echo(f"no resets in {layout.stats_dir}")
        return
    for info in resets:
        noun = "shard" if info.shards == 1 else "shards"
        line = f"{info.reset_id}  {info.reset_at or 'time unknown'}  {info.shards} {noun} archived"
        if info.restored_by:
            line += f"  (undone by {', '.join(info.restored_by)})"
        click.echo(line)


@click.command()
@base_path_option
@click.option("--restore", "restore_id", metavar="RESET_ID", help="Undo the reset with this id instead.")
@click.option("--list", "list_only", is_flag=True, help="List earlier resets.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(base_path: Path, restore_id: str | None, list_only: bool, yes: bool) -> None:
    """Reset statistics to zero; shards are archived under Stats/archive, not deleted."""
    from . import reset as reset_module

    if list_only and restore_id:
        raise click.UsageError("--list cannot be combined with --restore; run them one after the other")
    layout = layout_for(base_path)
    if list_only:
        _print_resets(reset_module.describe_resets(layout), layout)
        return
    if restore_id:
        if not yes:
            click.confirm(
                f"Undo reset {restore_id} in {layout.stats_dir}, counting again from before it?", abort=True
            )
        try:
            epoch = reset_module.restore(layout, restore_id)
        except reset_module.AlreadyRestored as done:
            click.echo(f"reset {restore_id} is undone already (epoch {done.epoch.reset_id}); nothing changed")
            return
        click.echo(f"restored the statistics from before reset {restore_id} (epoch {epoch.reset_id})")
    else:
        if not yes:
            click.confirm(f"Reset all statistics in {layout.stats_dir} to zero?", abort=True)
        result = reset_module.reset(layout)
        noun = "shard" if result.shards == 1 else "shards"
        click.echo(f"reset {result.reset_id}: {result.shards} {noun} archived in {result.archive}")
        click.echo(f"undo with: ufstats reset --restore {result.reset_id}")
    try:
        run_merge(layout)
    except StatsManagerError as exc:
        click.echo(f"view not rewritten: {exc}", err=True)


@click.command()
@base_path_option
@click.option(
    "--future-minutes", type=click.FloatRange(min=0), default=60, show_default=True,
    help="Report timestamps more than this many minutes ahead of this PC's clock.",
)
@click.option(
    "--view-max-age", "view_max_age", type=click.FloatRange(min=0), default=60, show_default=True,
    help="Minutes the view may be older than the newest shard before it is reported as stale.",
)
@click.option(
    "--baseline", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="An earlier `check --json` output: line findings listed there are known and do not fail the check.",
)
@json_option
def check(base_path: Path, future_minutes: float, view_max_age: float, baseline: Path | None, as_json: bool) -> None:
    """Validate every shard, the view and this PC's spool; exit 1 if something needs attention.

    Reports damaged lines, incomplete last lines, duplicate event ids, lines of
    another workstation or machine, timestamps in the future, stray files in
    the shards folder, a missing or stale view, undelivered spooled records,
    invalid ufstats.toml files, and a base folder without Stats/shards.
    """
    from .check import apply_baseline, read_baseline, run_check

    report = run_check(layout_for(base_path), future_minutes=future_minutes, view_max_age_minutes=view_max_age)
    if baseline is not None:
        apply_baseline(report, read_baseline(baseline))
    if as_json:
        print_json(report.to_json())
    else:
        click.echo(f"Checked {report.shards} shards ({report.lines} lines, {report.events} events) in {report.stats_dir}")
        for finding in report.findings:
            click.echo(f"{'known' if finding.known else finding.kind}: {finding.message}")
        open_findings = [finding for finding in report.findings if not finding.known]
        if open_findings:
            count = len(open_findings)
            click.echo(f"{count} finding needs attention." if count == 1 else f"{count} findings need attention.")
        else:
            click.echo("All is well.")
    if not report.ok:
        sys.exit(1)
