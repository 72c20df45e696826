"""`ufstats export`: one row per analysis or packing record, as CSV or Parquet.

Columns are `RECORD_COLUMNS` followed by the metadata flattened into
`metadata.<key>` columns (nested keys joined with dots, lists written as
JSON text), sorted by name. Rows are oldest first.

Adjustment events are not exported: they are counter differences carried
from v1 files, with no date, session or worker. Export sums therefore equal
the merged totals only when no v1 file with a capped history was imported;
`ExportResult.carried` contains the difference.

CSV is written for Excel: UTF-8 with a byte order mark (so Cyrillic names
open intact), CRLF line ends, and a choice of delimiter. With ";" (what
Excel expects where the decimal separator is a comma, e.g. in Ukrainian
settings) decimals are written with a comma as well. Parquet needs pyarrow
(`pip install ufstats[parquet]`).

Parquet integer columns are signed 64-bit. A metadata column holding an
integer outside that range (stored before ufstats rejected such values) is
written as text; an orders or items count outside it stops the export with
an `OutputFileError` naming the record.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_atomically
from .errors import InvalidArgumentError, OutputFileError
from .events import Event, decode_metadata
from .layout import Layout
from .output import output_target
from .selection import RecordFilter, select_records
from .validation import INT64_MAX, INT64_MIN

log = logging.getLogger("ufstats")

RECORD_COLUMNS = [
    "type", "timestamp", "date", "client_id", "session_id", "worker_id",
    "orders_count", "items_count", "workstation", "id",
]
FORMATS = ("csv", "parquet")
DELIMITERS = (",", ";")


def _flatten(value: Any, prefix: str, row: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}", row)
    elif isinstance(value, list):
        row[prefix] = json.dumps(value, ensure_ascii=False)
    else:
        # NOTE: a key that itself contains a dot can land on the same column
        # as a nested key ({"a.b": 1} and {"a": {"b": 2}}); the later one wins.
        row[prefix] = value


def record_row(event: Event) -> dict[str, Any]:
    """Return one export row (column name to value) for an analysis or packing event."""
    row: dict[str, Any] = {
        "type": event.type,
        "timestamp": event.timestamp,
        "date": event.timestamp[:10],
        "client_id": event.client_id,
        "session_id": event.session_id,
        "worker_id": event.worker_id,
        "orders_count": event.orders_count,
        "items_count": event.items_count,
        "workstation": event.workstation,
        "id": event.id,
    }
    metadata = decode_metadata(event.metadata)
    if metadata is not None:
        _flatten(metadata, "metadata", row)
    return row


@dataclass
class ExportResult:
    """Summary of one export: rows written and counters left out."""

    output: Path
    rows: int
    columns: list[str]
    # Orders analysed, orders packed and sessions that imported v1 files
    # counted without records; they are in `ufstats show` but not in the file.
    carried: list[int]


# Excel runs a cell that starts with one of these as a formula, so a text
# value starting with one is written with a leading apostrophe, which Excel
# shows as plain text. Numbers are not affected.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value: Any, decimal_comma: bool) -> str:
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_PREFIXES) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        text = repr(value)
        return text.replace(".", ",") if decimal_comma else text
    return str(value)


def write_csv(output: Path, columns: list[str], rows: list[dict[str, Any]], delimiter: str = ",") -> None:
    """Write rows as Excel-ready CSV (UTF-8 with BOM, CRLF) to `output` atomically.

    Raises:
        OSError: the file cannot be written.
    """
    decimal_comma = delimiter == ";"
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_csv_text(row.get(column), decimal_comma) for column in columns])
        os.replace(temporary, output)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _fits_int64(value: Any) -> bool:
    return not isinstance(value, int) or INT64_MIN <= value <= INT64_MAX


def _check_counts(output: Path, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for name in ("orders_count", "items_count"):
            if not _fits_int64(row.get(name)):
                raise OutputFileError(
                    f"Cannot write {output} as Parquet: record {row['id']} of workstation {row['workstation']} "
                    f"({row['timestamp']}) has {name}={row[name]}, outside the signed 64-bit range of Parquet "
                    "integers; export with --format csv, or filter that record out with --from/--to/--client"
                )


def _arrow_column(pa: Any, name: str, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if name in ("orders_count", "items_count"):
        return pa.array(values, type=pa.int64())
    if present and all(isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.bool_())
    if not all(_fits_int64(v) for v in present):
        present = []  # Written as text below: no numeric column can hold the value.
    elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.array(values, type=pa.int64())
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    # Strings, or a mix of types: every value as text (JSON for non-strings).
    texts = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
    return pa.array(texts, type=pa.string())


def import_pyarrow() -> tuple[Any, Any]:
    """Return the `pyarrow` and `pyarrow.parquet` modules.

    Raises:
        InvalidArgumentError: pyarrow is not installed.
    """
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise InvalidArgumentError(
            "Invalid --format parquet: pyarrow is not installed. "
            "Install it with `pip install ufstats[parquet]` (or `pip install pyarrow`), or use --format csv."
        ) from None
    return pyarrow, pyarrow.parquet


def write_parquet(output: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Write rows as a Parquet file with typed columns to `output` atomically.

    Raises:
        InvalidArgumentError: pyarrow is not installed.
        OSError: the file cannot be written.
    """
    pa, pq = import_pyarrow()
    _check_counts(output, rows)
    arrays = [_arrow_column(pa, name, [row.get(name) for row in rows]) for name in columns]
    table = pa.Table.from_arrays(arrays, names=columns)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomically(output, sink.getvalue().to_pybytes())


def export_records(
    layout: Layout,
    output: Path,
    file_format: str = "csv",
    record_filter: RecordFilter | None = None,
    delimiter: str = ",",
) -> ExportResult:
    """Read the shards and write the records that pass the filter to `output`.

    Raises:
        InvalidArgumentError: unknown format or delimiter, or pyarrow missing for Parquet.
        StatsFolderError: the base path does not exist or cannot be reached.
        OutputFileError: `output` cannot be written, is "-", or exists and
            is not a regular file (a link is followed to its target). Also
            raised when a count does not fit in a Parquet integer.
    """
    if file_format not in FORMATS:
        raise InvalidArgumentError(f"Invalid format {file_format!r}: use one of {', '.join(FORMATS)}")
    if delimiter not in DELIMITERS:
        raise InvalidArgumentError(f"Invalid delimiter {delimiter!r}: use ',' or ';'")
    if file_format == "parquet":
        import_pyarrow()
    target = output_target(output, "--output")
    selection = select_records(layout, record_filter)
    rows = [record_row(event) for event in selection.records]
    metadata_columns = sorted({key for row in rows for key in row} - set(RECORD_COLUMNS))
    columns = RECORD_COLUMNS + metadata_columns
    try:
        if file_format == "csv":
            write_csv(target, columns, rows, delimiter)
        else:
            write_parquet(target, columns, rows)
    except OSError as exc:
        raise OutputFileError(
            f"Cannot write the export to {output}: {exc.strerror or exc}. Check that the folder exists and is writable."
        ) from exc
    log.info("exported %d records to %s", len(rows), output)
    carried = [a + b for a, b in zip(selection.carried, selection.carried_left_out)]
    return ExportResult(output, len(rows), columns, carried)
