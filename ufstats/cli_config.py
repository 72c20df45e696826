"""`ufstats config`: the effective settings and where each comes from."""

from __future__ import annotations

from pathlib import Path

import click

from . import config
from .cli import json_option, print_json, print_table


@click.command("config")
@click.option(
    "--base-path", "base_path", envvar="UFSTATS_BASE_PATH", default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The shared 0UFulfilment folder whose ufstats.toml to read (default: $UFSTATS_BASE_PATH, else the user file).",
)
@json_option
def config_command(base_path: Path | None, as_json: bool) -> None:
    """Show the effective settings and where each one came from.

    Order, first wins: command-line option, environment variable,
    ufstats.toml in the base folder, the user's ufstats.toml, default.
    """
    settings = config.effective_settings(base_path=base_path)
    # effective_settings labels a given base path "command line", but it may come from the variable.
    if base_path is not None:
        source = click.get_current_context().get_parameter_source("base_path")
        if source == click.core.ParameterSource.ENVIRONMENT:
            settings["base_path"] = config.Setting(base_path, "environment variable UFSTATS_BASE_PATH")
    folder = settings["base_path"].value
    files = {"user": str(config.user_config_file())}
    if folder is not None:
        files["base"] = str(config.base_config_file(folder))
    if as_json:
        print_json(
            {
                "settings": {
                    key: {"value": None if s.value is None else _plain(s.value), "source": s.source}
                    for key, s in settings.items()
                },
                "files": {name: {"path": path, "exists": Path(path).is_file()} for name, path in files.items()},
            }
        )
        return
    rows = [[key, "-" if s.value is None else str(s.value), s.source] for key, s in settings.items()]
    print_table(["key", "value", "source"], rows)
    click.echo("")
    for name, path in files.items():
        state = "found" if Path(path).is_file() else "not found"
        click.echo(f"{name} file: {path} ({state})")


def _plain(value: object) -> object:
    return str(value) if isinstance(value, Path) else value
