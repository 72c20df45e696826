"""Optional settings in `ufstats.toml` files, and where each effective value comes from.

Keys: `base_path`, `workstation`, `history_limit`, `spool_dir`. For each key
the first of these that sets it wins:

1. the command-line option (`--base-path`, `--history-limit`);
2. the environment variable (`UFSTATS_BASE_PATH`, `UFSTATS_HOST`,
   `UFSTATS_HISTORY_LIMIT`, `UFSTATS_SPOOL_DIR`; an empty one is unset);
3. `ufstats.toml` in the base folder (the shared `0UFulfilment` folder);
4. the user's file: `%APPDATA%\\ufstats\\ufstats.toml` on Windows,
   `$XDG_CONFIG_HOME/ufstats/ufstats.toml` (default `~/.config/...`) elsewhere;
5. the built-in default.

Every PC reads the base folder's file, so it may set only `history_limit`
and `spool_dir`: a `workstation` there would make all PCs write one shard,
and a `base_path` there would point away from the folder holding it.
Relative paths in the user's file are taken relative to that file's folder;
the base folder's file accepts only absolute paths, because a relative
spool_dir there would put the local spool on the file server. `~` is
expanded everywhere.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _platform
from .errors import InvalidArgumentError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

log = logging.getLogger("ufstats")

CONFIG_FILE_NAME = "ufstats.toml"
KEYS = ("base_path", "workstation", "history_limit", "spool_dir")
ENVIRONMENT = {
    "base_path": "UFSTATS_BASE_PATH",
    "workstation": "UFSTATS_HOST",
    "history_limit": "UFSTATS_HISTORY_LIMIT",
    "spool_dir": "UFSTATS_SPOOL_DIR",
}
BASE_FILE_KEYS = ("history_limit", "spool_dir")
DEFAULT_HISTORY_LIMIT = 1000


@dataclass(frozen=True)
class Setting:
    """An effective value and where it came from ("command line", "default", a variable or a file)."""

    value: Any
    source: str


def user_config_file() -> Path:
    """Return the path of this user's `ufstats.toml` (it need not exist)."""
    if _platform.IS_WINDOWS and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "ufstats" / CONFIG_FILE_NAME
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "ufstats" / CONFIG_FILE_NAME


def base_config_file(base_path: str | os.PathLike[str]) -> Path:
    """Return the path of the base folder's `ufstats.toml` (it need not exist)."""
    return Path(base_path) / CONFIG_FILE_NAME


def _path_value(value: Any, relative_to: Path | None) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        return None
    path = Path(value).expanduser()
    if relative_to is not None and not path.is_absolute():
        path = relative_to / path
    return path


def check_value(key: str, value: Any, relative_to: Path | None = None) -> tuple[Any, str | None]:
    """Return (converted value, None), or (None, what is wrong with the value)."""
    if key in ("base_path", "spool_dir"):
        path = _path_value(value, relative_to)
        return (path, None) if path is not None else (None, "must be a non-empty folder path in quotes")
    if key == "workstation":
        problem = _platform.workstation_problem(value) if isinstance(value, str) else "must be a string in quotes"
        return (value, None) if problem is None else (None, problem)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None, "must be a whole number >= 0 (0 keeps all)"
    return value, None


def read_config_file(
    path: Path,
    allowed_keys: tuple[str, ...] = KEYS,
    unreadable_ok: bool = False,
    *,
    absolute_paths: bool = False,
    lenient: bool = False,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """Read and check one `ufstats.toml`; return its converted values ({} if there is no file).

    `absolute_paths` rejects relative folder paths (used for the base
    folder's file: a relative spool_dir there would put the local spool on
    the file server). With `lenient`, each problem below is logged as a
    warning naming the file, key and value, and the key (or, for a file that
    cannot be parsed, the whole file) is ignored, so its default applies.
    With a `problems` list, each problem is appended to it instead of being
    logged or raised, and ignored in the same way (`ufstats check` uses this).

    Raises:
        InvalidArgumentError: the file is not valid TOML, or has an unknown
            key, a key not allowed in this file, or an invalid value (unless
            `lenient`). Also raised when the file cannot be read, unless
            `unreadable_ok` or `lenient` is set.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if problems is not None:
            problems.append(f"Configuration file {path} cannot be read: {exc}")
            return {}
        if unreadable_ok or lenient:
            log.warning("ignoring configuration file %s: cannot be read: %s", path, exc)
            return {}
        raise InvalidArgumentError(f"Configuration file {path} cannot be read: {exc}") from exc
    try:
        document = tomllib.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        problem = f"Configuration file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        return _ignore_file(problem, lenient, problems)
    except tomllib.TOMLDecodeError as exc:
        return _ignore_file(f"Configuration file {path} is not valid TOML: {exc}", lenient, problems)
    values: dict[str, Any] = {}
    for key, value in document.items():
        problem = _key_problem(path, key, value, allowed_keys, absolute_paths)
        converted = None
        if problem is None:
            converted, reason = check_value(key, value, relative_to=path.parent)
            if reason:
                problem = f"Configuration file {path}: invalid {key} = {value!r}: {reason}"
        if problem is None:
            values[key] = converted
        elif problems is not None:
            problems.append(problem)
        elif lenient:
            log.warning("%s; ignoring this key and using the default", problem)
        else:
            raise InvalidArgumentError(problem)
    return values


def _ignore_file(problem: str, lenient: bool, problems: list[str] | None) -> dict[str, Any]:
    if problems is not None:
        problems.append(problem)
        return {}
    if not lenient:
        raise InvalidArgumentError(problem)
    log.warning("%s; ignoring the file and using the defaults", problem)
    return {}


def _key_problem(path: Path, key: str, value: Any, allowed_keys: tuple[str, ...], absolute_paths: bool) -> str | None:
    """Return why `key = value` cannot be used in the file at `path`, or None."""
    if key not in KEYS:
        return f"Configuration file {path}: unknown key {key!r} (value {value!r}); known keys: {', '.join(KEYS)}"
    if key not in allowed_keys:
        return (
            f"Configuration file {path}: key {key!r} (value {value!r}) cannot be set in the base folder's "
            f"file, which every PC reads; set it in the user file {user_config_file()} or with "
            f"{ENVIRONMENT[key]}"
        )
    if absolute_paths and key in ("base_path", "spool_dir") and isinstance(value, str) and value.strip():
        if not Path(value).expanduser().is_absolute():
            return (
                f"Configuration file {path}: invalid {key} = {value!r}: must be an absolute path in this "
                "file, because a relative one would point into the shared base folder; give a full local "
                "path such as C:\\ufstats\\spool, or set it in the user file"
            )
    return None


def config_problems(base_path: str | os.PathLike[str] | None) -> list[str]:
    """Return every problem in the user's file and in the base folder's file, each naming the file.

    Returns [] when both are valid or absent. The base folder's file is
    skipped when `base_path` is None or cannot be reached.
    """
    problems: list[str] = []
    read_config_file(user_config_file(), problems=problems)
    if base_path is not None:
        try:
            reachable = Path(base_path).is_dir()
        except OSError:
            reachable = False
        if reachable:
            read_config_file(base_config_file(base_path), BASE_FILE_KEYS, absolute_paths=True, problems=problems)
    return problems


def _from_environment(key: str) -> Setting | None:
    name = ENVIRONMENT[key]
    raw = os.environ.get(name)
    if not raw:
        return None
    converted, problem = check_value(key, raw)
    if problem:
        raise InvalidArgumentError(f"Invalid environment variable {name}={raw!r}: {key} {problem}")
    return Setting(converted, f"environment variable {name}")


def _default(key: str) -> Setting:
    if key == "workstation":
        return Setting(_platform.safe_workstation_name(_platform.machine_name()), "default (this computer's name)")
    if key == "history_limit":
        return Setting(DEFAULT_HISTORY_LIMIT, "default")
    if key == "spool_dir":
        return Setting(_platform.local_state_dir() / "spool", "default (local state folder)")
    return Setting(None, "not set")


def effective_settings(
    command_line: dict[str, Any] | None = None,
    base_path: str | os.PathLike[str] | None = None,
    unreadable_ok: bool = False,
    keys: tuple[str, ...] = KEYS,
    lenient: bool = False,
) -> dict[str, Setting]:
    """Return the effective `Setting` of `keys` and of base_path, in the order of the module docstring.

    `command_line` maps keys to option values (None: option not given).
    `base_path`, if given, is a command-line base path; it is also where the
    base folder's file is looked for. A base folder that cannot be reached
    counts as having no file. With `lenient`, problems in the files are
    logged as warnings and the affected keys keep their defaults (see
    `read_config_file`); environment variables are still checked strictly.

    Raises:
        InvalidArgumentError: a file (unless `lenient`) or an environment
            variable has an invalid key or value.
    """
    from_command_line = dict(command_line or {})
    if base_path is not None:
        from_command_line["base_path"] = Path(base_path)
    user_file = user_config_file()
    user_values = read_config_file(user_file, unreadable_ok=unreadable_ok, lenient=lenient)

    # The base folder's file cannot set base_path, so base_path is resolved first.
    settings = {"base_path": _resolve("base_path", from_command_line, {}, None, user_values, user_file)}
    base_values: dict[str, Any] = {}
    base_file: Path | None = None
    folder = settings["base_path"].value
    if folder is not None:
        base_file = base_config_file(folder)
        try:
            reachable = Path(folder).is_dir()
        except OSError:
            reachable = False
        if reachable:
            base_values = read_config_file(
                base_file, BASE_FILE_KEYS, unreadable_ok=unreadable_ok, absolute_paths=True, lenient=lenient
            )
    for key in keys:
        if key != "base_path":
            settings[key] = _resolve(key, from_command_line, base_values, base_file, user_values, user_file)
    return settings


def _resolve(
    key: str,
    from_command_line: dict[str, Any],
    base_values: dict[str, Any],
    base_file: Path | None,
    user_values: dict[str, Any],
    user_file: Path,
) -> Setting:
    if from_command_line.get(key) is not None:
        return Setting(from_command_line[key], "command line")
    from_environment = _from_environment(key)
    if from_environment is not None:
        return from_environment
    if key in base_values:
        return Setting(base_values[key], f"file {base_file}")
    if key in user_values:
        return Setting(user_values[key], f"file {user_file}")
    return _default(key)
