"""The `ufstats` command line: reporting, merge, migration and maintenance.

Commands print for people by default and JSON with `--json`. Library errors
become one-line messages with exit status 1; usage errors exit with 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import StatsManagerError
from .layout import Layout
from .legacy import import_legacy
from .manager import StatsManager
from .merge import DEFAULT_HISTORY_LIMIT, run_merge

log = logging.getLogger("ufstats")


class UfstatsGroup(click.Group):
    """A command group that turns library errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StatsManagerError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or 'file'}: {exc.strerror or exc}") from exc


def base_path_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--base-path` (or `UFSTATS_BASE_PATH`) to a command."""
    return click.option(
        "--base-path",
        "base_path",
        envvar="UFSTATS_BASE_PATH",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="The shared 0UFulfilment folder (default: $UFSTATS_BASE_PATH).",
    )(function)


def json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def layout_for(base_path: Path) -> Layout:
    layout = Layout.for_base_path(base_path)
    layout.require_base_path()
    return layout


def reader_for(base_path: Path) -> StatsManager:
    """Return a manager used only for reading (it never records)."""
    layout_for(base_path)
    return StatsManager(base_path, workstation="reader", spool=False)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """Print rows as a plain text table with right-aligned numbers."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def format_row(values: list[str], numeric: list[bool]) -> str:
        parts = [v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    numeric = [bool(rows) and all(isinstance(row[i], (int, float)) for row in rows) for i in range(len(headers))]
    click.echo(format_row(headers, numeric))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo(format_row(row, numeric))


@click.group(cls=UfstatsGroup)
@click.version_option(__version__, prog_name="ufstats")
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does (to stderr).")
def main(verbose: bool) -> None:
    """Warehouse statistics in per-workstation shards, merged into one view.

    Each PC appends records to Stats/shards/<workstation>.jsonl under the
    shared base folder; these commands read, merge and maintain them.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@base_path_option
@json_option
def show(base_path: Path, as_json: bool) -> None:
    """Show totals and a per-client table, read from all shards.

    Example: ufstats show --base-path '\\\\server\\share\\0UFulfilment'
    """
    manager = reader_for(base_path)
    totals = manager.get_global_stats()
    clients = manager.get_all_clients_stats()
    if as_json:
        print_json({**totals, "by_client": clients})
        return
    click.echo(f"Statistics in {manager.layout.stats_dir}")
    click.echo(f"  orders analysed: {totals['total_orders_analyzed']}")
    click.echo(f"  orders packed:   {totals['total_orders_packed']}")
    click.echo(f"  sessions:        {totals['total_sessions']}")
    click.echo(f"  last record:     {totals['last_updated'] or 'none'}")
    click.echo("")
    rows = [
        [client, c["orders_analyzed"], c["orders_packed"], c["sessions"]]
        for client, c in sorted(clients.items())
    ]
    print_table(["client", "orders analysed", "orders packed", "sessions"], rows)


@main.command()
@click.argument("kind", type=click.Choice(["analysis", "packing"]))
@base_path_option
@click.option("--client", help="Only records of this client id.")
@click.option("--worker", help="Only records of this worker id (packing only).")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Newest N records; 0 for all.")
@json_option
def history(kind: str, base_path: Path, client: str | None, worker: str | None, limit: int, as_json: bool) -> None:
    """List analysis or packing records, newest first.

    Example: ufstats history packing --client M --worker 001 --limit 10
    """
    if worker and kind == "analysis":
        raise click.UsageError("--worker applies to packing history only")
    manager = reader_for(base_path)
    if kind == "analysis":
        records = manager.get_analysis_history(client_id=client, limit=limit)
    else:
        records = manager.get_packing_history(client_id=client, worker_id=worker, limit=limit)
    if as_json:
        print_json(records)
        return
    if kind == "analysis":
        rows = [[r["timestamp"], r["client_id"], r["session_id"], r["orders_count"]] for r in records]
        print_table(["timestamp", "client", "session", "orders"], rows)
    else:
        rows = [
            [r["timestamp"], r["client_id"], r["session_id"], r["worker_id"] or "-", r["orders_count"], r["items_count"]]
            for r in records
        ]
        print_table(["timestamp", "client", "session", "worker", "orders", "items"], rows)


@main.command()
@base_path_option
@click.option(
    "--history-limit", type=click.IntRange(min=0), default=DEFAULT_HISTORY_LIMIT, show_default=True,
    help="Newest records of each kind kept in the view's history lists; 0 keeps all. Totals always count everything.",
)
@click.option("--force", is_flag=True, help="Replace a global_stats.json that ufstats did not write (a copy is kept).")
@json_option
def merge(base_path: Path, history_limit: int, force: bool, as_json: bool) -> None:
    """Combine all shards into Stats/global_stats.json (the v1 view).

    Run it on the file server's schedule; it is safe to run at any time.
    """
    result = run_merge(layout_for(base_path), history_limit=history_limit, force=force)
    if as_json:
        print_json(
            {
                "events": result.events,
                "shards": result.shards,
                "duplicates": result.duplicates,
                "damaged_lines": [d.describe() for d in result.damage],
                "seconds": round(result.seconds, 3),
                "backup": result.backup,
            }
        )
        return
    click.echo(result.summary())
    if result.backup:
        click.echo(f"kept a copy of the previous global_stats.json as {result.backup}")
    for damage in result.damage[:20]:
        click.echo(f"damaged: {damage.describe()}", err=True)
    if len(result.damage) > 20:
        click.echo(f"... and {len(result.damage) - 20} more damaged lines; see `ufstats check`", err=True)


@main.command("import-legacy")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@base_path_option
@click.option(
    "--timezone", "zone_name", default=None,
    help="IANA time zone of naive v1 timestamps, e.g. Europe/Kyiv (default: this computer's zone).",
)
def import_legacy_command(file: Path, base_path: Path, zone_name: str | None) -> None:
    """Import a v1 global_stats.json into a shard; FILE itself is not changed.

    Importing the same file again changes nothing. Run `ufstats merge`
    afterwards to rewrite the view.
    """
    result = import_legacy(layout_for(base_path), file, zone_name)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.already_imported:
        click.echo(f"{file} was already imported into {result.shard}; nothing changed.")
        return
    click.echo(
        f"imported {result.analysis_events} analysis and {result.packing_events} packing records "
        f"({result.schema} file) into {result.shard}"
    )


@main.command()
@click.option(
    "--base-path", "base_path", envvar="UFSTATS_BASE_PATH", default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Deliver only spools for this base folder (default: all spools of this user).",
)
def flush(base_path: Path | None) -> None:
    """Deliver records kept in this PC's local spool to the file server."""
    from .spool import find_spools

    failures = 0
    spools = [s for s in find_spools() if base_path is None or os.path.abspath(s.base_path) == os.path.abspath(base_path)]
    if not spools:
        click.echo("no spooled records")
        return
    for spool in spools:
        manager = StatsManager(spool.base_path, workstation=spool.workstation)
        try:
            delivered = manager.flush()
            click.echo(f"delivered {delivered} records to {manager.layout.shard_path(spool.workstation)}")
        except StatsManagerError as exc:
            failures += 1
            click.echo(f"not delivered: {exc}", err=True)
        finally:
            manager.close()
    if failures:
        sys.exit(1)


@main.command()
@base_path_option
@click.option("--restore", "restore_id", metavar="RESET_ID", help="Undo the reset with this id instead.")
@click.option("--list", "list_only", is_flag=True, help="List earlier resets.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(base_path: Path, restore_id: str | None, list_only: bool, yes: bool) -> None:
    """Reset statistics to zero; shards are archived under Stats/archive, not deleted."""
    from . import reset as reset_module

    layout = layout_for(base_path)
    if list_only:
        for reset_id in reset_module.list_resets(layout):
            click.echo(reset_id)
        return
    if restore_id:
        epoch = reset_module.restore(layout, restore_id)
        click.echo(f"restored the statistics from before reset {restore_id} (epoch {epoch.reset_id})")
    else:
        if not yes:
            click.confirm(f"Reset all statistics in {layout.stats_dir} to zero?", abort=True)
        result = reset_module.reset(layout)
        click.echo(f"reset {result.reset_id}: {result.shards} shards archived in {result.archive}")
        click.echo(f"undo with: ufstats reset --restore {result.reset_id}")
    try:
        run_merge(layout)
    except StatsManagerError as exc:
        click.echo(f"view not rewritten: {exc}", err=True)


@main.command()
@click.option(
    "--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Local folder to use as the base path (default: a new temporary folder).",
)
@click.option("--workstations", type=click.IntRange(1, 16), default=4, show_default=True, help="Simulated PCs, one process each.")
@click.option("--sessions", type=click.IntRange(1, 500), default=25, show_default=True, help="Sessions each PC analyses and packs.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the simulated day.")
def demo(folder: Path | None, workstations: int, sessions: int, seed: int) -> None:
    """Simulate a day of work on several PCs at once, then merge and show it."""
    from .demo import run_demo

    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="ufstats-demo-"))
    elif folder.exists() and any(folder.iterdir()):
        raise click.UsageError(f"--folder {folder} is not empty; give a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    click.echo(f"Demo folder: {folder}")
    click.echo(f"Recording: {workstations} workstations x {sessions} sessions, one process each ...")
    expected = run_demo(folder, workstations, sessions, seed)
    result = run_merge(layout_for(folder))
    click.echo(result.summary())
    click.echo(f"View written: {Layout(folder).view_file}")
    click.echo("")
    ctx = click.get_current_context()
    ctx.invoke(show, base_path=folder, as_json=False)
    totals = StatsManager(folder, workstation="reader", spool=False).get_global_stats()
    counted = (totals["total_orders_analyzed"], totals["total_orders_packed"], totals["total_sessions"])
    if counted != expected:
        raise click.ClickException(f"demo totals {counted} differ from what was recorded {expected}")
    click.echo("")
    click.echo(f"All {workstations * sessions * 2} records counted exactly once.")
    click.echo(f"Try: ufstats history packing --base-path {folder} --limit 5")
