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

from . import __version__, config
from .errors import StatsManagerError
from .layout import Layout
from .legacy import import_legacy
from .manager import StatsManager
from .merge import run_merge
from .parallel_scan import default_processes
from .progress import progress_bar, quiet_option
from .reader import StatsReader
from .schedule import IntervalType, run_every

log = logging.getLogger("ufstats")


class UfstatsGroup(click.Group):
    """A command group that turns library errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StatsManagerError as exc:
            raise click.ClickException(str(exc)) from exc
        except BrokenPipeError:
            # The reader of our output went away (`ufstats show | head`):
            # stop quietly, and keep Python from complaining at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or 'file'}: {exc.strerror or exc}") from exc


def _base_path_from_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path:
    if value is not None:
        return value
    configured = config.effective_settings()["base_path"].value
    if configured is None:
        raise click.MissingParameter(
            ctx=ctx,
            param=param,
            message=(
                "Give the 0UFulfilment folder with --base-path, UFSTATS_BASE_PATH "
                f"or base_path in {config.user_config_file()}"
            ),
        )
    return Path(configured)


def base_path_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--base-path` (else `UFSTATS_BASE_PATH`, else base_path of the user's ufstats.toml) to a command."""
    return click.option(
        "--base-path",
        "base_path",
        envvar="UFSTATS_BASE_PATH",
        default=None,
        callback=_base_path_from_config,
        type=click.Path(file_okay=False, path_type=Path),
        help="The shared 0UFulfilment folder (default: $UFSTATS_BASE_PATH, else base_path in the user's ufstats.toml).",
    )(function)


def json_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def layout_for(base_path: Path) -> Layout:
    layout = Layout.for_base_path(base_path)
    layout.require_base_path()
    return layout


def warn_if_no_stats(layout: Layout) -> None:
    """Print a warning on stderr when the base folder has no `Stats` folder (a wrong --base-path, say)."""
    try:
        found = layout.stats_dir.is_dir()
    except OSError:
        found = False
    if not found:
        click.echo(f"warning: no statistics found in {layout.base_path}; check --base-path", err=True)


def warn_if_config_invalid(base_path: Path) -> None:
    """Print one warning line on stderr per problem in the user's or the base folder's ufstats.toml.

    Reading commands use no setting from these files, so they go on working.
    The warning shows a broken shared file before merge fails on it.
    """
    for problem in config.config_problems(base_path):
        click.echo(f"warning: {problem}", err=True)


def reader_for(base_path: Path) -> StatsReader:
    """Return a read-only reader (it creates no folder), warning about missing statistics or invalid settings files."""
    reader = StatsReader(base_path)
    reader.layout.require_base_path()
    warn_if_no_stats(reader.layout)
    warn_if_config_invalid(base_path)
    return reader


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


def _check_processes(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(f"{value} is less than 1; give 1 or more processes")
    return value


@main.command()
@base_path_option
@click.option(
    "--history-limit", type=click.IntRange(min=0), default=None,
    help="Newest records of each kind kept in the view's history lists; 0 keeps all. Totals always count "
    "everything. [default: history_limit of ufstats.toml, else 1000]",
)
@click.option("--force", is_flag=True, help="Replace a global_stats.json that ufstats did not write (a copy is kept).")
@click.option(
    "--every", "interval", type=IntervalType(), default=None, metavar="INTERVAL",
    help="Merge again every INTERVAL (e.g. 30s, 5m, 1h) until stopped by Ctrl+C or SIGTERM; "
    "one line per merge on stderr.",
)
@click.option(
    "--processes", type=int, default=None, callback=_check_processes, metavar="N",
    help="Processes that read shards side by side. Whole shards are shared out, and there is at most "
    "one process per 32 MiB of shards, so small folders use one. [default: the number of CPUs, at most 4]",
)
@quiet_option
@json_option
def merge(
    base_path: Path,
    history_limit: int | None,
    force: bool,
    interval: int | None,
    processes: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Combine all shards into Stats/global_stats.json (the v1 view).

    Run it on the file server's schedule (see docs/scheduling.md), or keep it
    running with --every; it is safe to run at any time.
    """
    layout = layout_for(base_path)
    if history_limit is None:
        history_limit = config.effective_settings(base_path=base_path)["history_limit"].value
    if processes is None:
        processes = default_processes()
    if interval is not None:
        if as_json:
            raise click.UsageError("--json cannot be combined with --every; the log lines go to stderr")
        # A folder where no PC has recorded yet fails each round with a log
        # line and the loop goes on, so the service works once records come.
        run_every(
            interval,
            lambda: run_merge(layout, history_limit=history_limit, force=force, processes=processes),
            lambda line: click.echo(line, err=True),
        )
        return
    with progress_bar("Reading shards", quiet) as update:
        result = run_merge(layout, history_limit=history_limit, force=force, progress=update, processes=processes)
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
    # A kept copy is already reported by the "kept a copy" warning that merge logs.
    click.echo(result.summary())
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
@quiet_option
def import_legacy_command(file: Path, base_path: Path, zone_name: str | None, quiet: bool) -> None:
    """Import a v1 global_stats.json into a shard; FILE itself is not changed.

    Importing the same file again changes nothing. Run `ufstats merge`
    afterwards to rewrite the view.
    """
    layout = layout_for(base_path)
    with progress_bar("Converting history", quiet) as update:
        result = import_legacy(layout, file, zone_name, progress=update)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.already_imported:
        click.echo(f"{file} was already imported into {result.shard}; nothing changed.")
        return
    click.echo(
        f"imported {result.analysis_events} analysis and {result.packing_events} packing records "
        f"({result.schema} file) into {result.shard}"
    )


def record_filter_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--from`, `--to` and `--client` (records to include) to a command."""
    function = click.option("--client", "client_id", help="Only records of this client id.")(function)
    function = click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last day to include (the record's local date).")(function)
    return click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First day to include (the record's local date).")(function)


@main.command()
@base_path_option
@click.option("--html", "output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write.")
@record_filter_options
def report(base_path: Path, output: Path, date_from: str | None, date_to: str | None, client_id: str | None) -> None:
    """Write a self-contained HTML report: totals, per day, per client, per worker.

    Example: ufstats report --html stats.html --from 2026-04-01 --client M
    """
    from .report import write_report
    from .selection import RecordFilter

    record_filter = RecordFilter.from_arguments(date_from, date_to, client_id)
    warn_if_config_invalid(base_path)
    selection = write_report(layout_for(base_path), output, record_filter)
    click.echo(f"wrote {output}: {len(selection.records)} records ({record_filter.describe()})")


@main.command()
@base_path_option
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True, help="File format.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.option(
    "--delimiter", type=click.Choice([",", ";"]), default=",", show_default=True,
    help="CSV field separator; ';' also writes decimal commas, as Excel expects with comma-decimal settings.",
)
@record_filter_options
def export(
    base_path: Path, file_format: str, output: Path, delimiter: str,
    date_from: str | None, date_to: str | None, client_id: str | None,
) -> None:
    """Export analysis and packing records, one row each, as CSV or Parquet.

    Example: ufstats export --format csv --output april.csv --from 2026-04-01 --to 2026-04-30
    """
    from .export import export_records
    from .selection import RecordFilter

    record_filter = RecordFilter.from_arguments(date_from, date_to, client_id)
    warn_if_config_invalid(base_path)
    result = export_records(layout_for(base_path), output, file_format, record_filter, delimiter)
    click.echo(f"wrote {output}: {result.rows} records, {len(result.columns)} columns")
    if any(result.carried):
        analysed, packed, sessions = result.carried
        click.echo(
            f"note: {analysed} orders analysed, {packed} orders packed and {sessions} sessions counted by "
            "imported v1 files have no records and are not in the file (they are in `ufstats show`)",
            err=True,
        )


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
    click.echo(f"The demo folder is kept; delete {folder} when you are done with it.")


# Commands defined in other modules; imported here because they use the helpers above.
from .cli_config import config_command  # noqa: E402
from .cli_maintenance import check, flush, reset  # noqa: E402
from .cli_stats import daily, workers  # noqa: E402

main.add_command(check)
main.add_command(flush)
main.add_command(reset)
main.add_command(workers)
main.add_command(daily)
main.add_command(config_command)
