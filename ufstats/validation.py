"""Checks of `record_*` arguments, and conversion of metadata to JSON values.

Everything here runs before anything is written, so a bad call raises
`InvalidRecordError` (a `ValueError`) and leaves no trace in the shards.

Metadata conversion rules (documented in the README):

- ``datetime``, ``date``, ``time`` and pandas ``Timestamp``: ISO 8601 string;
- ``Decimal``: string, so no digits are lost;
- ``Path``, ``UUID`` and other path-like values: string;
- numpy and pandas scalars: the matching Python ``int``, ``float`` or ``bool``;
- numpy arrays, tuples and sets: lists (sets sorted when possible);
- NaN, positive and negative infinity, ``None``, pandas ``NA`` and ``NaT``: ``null``;
- dict keys that are numbers, booleans or ``None``: the strings that
  ``json.dump`` writes for them (``1`` to ``"1"``, ``True`` to ``"true"``), as
  v1 stored them; two keys that become one string are rejected;
- integers outside the signed 64-bit range: `InvalidRecordError`, because
  Parquet, DuckDB and spreadsheets cannot hold them;
- anything else that JSON cannot hold: `InvalidRecordError`.
"""

from __future__ import annotations

import math
import os
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import msgspec

from .errors import InvalidRecordError
from .events import NO_METADATA

MAX_ID_LENGTH = 200
MAX_EVENT_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32
# Upper bound of orders_count and items_count in one record. A real session
# has at most some thousands, so the bound catches a wrong value (a timestamp,
# an id) before it swamps every total. Sums of records stay far inside the
# signed 64-bit range that exports and readers of the view use.
MAX_COUNT = 1_000_000_000
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_id(argument: str, value: object, *, optional: bool = False) -> None:
    """Check a client, session or worker id."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        kind = "a string or None" if optional else "a string"
        raise InvalidRecordError(argument, value, f"must be {kind}, not {type(value).__name__}")
    if not value.strip():
        raise InvalidRecordError(argument, value, "must not be empty or only spaces")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRecordError(
            argument, value, f"is {len(value)} characters long, the maximum is {MAX_ID_LENGTH}"
        )
    if value.isprintable():
        return  # Fast path: printable text has no character of category Cc, Cf or Cs.
    for position, character in enumerate(value):
        if unicodedata.category(character) in ("Cc", "Cf", "Cs"):
            raise InvalidRecordError(
                argument,
                value,
                f"contains an invisible or control character {character!r} at position {position}; "
                "remove it",
            )


def check_count(argument: str, value: object) -> None:
    """Check an orders or items count: an int (not bool) from 0 to MAX_COUNT."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return
    if isinstance(value, bool) or not _is_integer(value):
        raise InvalidRecordError(
            argument, value, f"must be a non-negative integer, not {type(value).__name__}"
        )
    if int(value) < 0:  # type: ignore[call-overload]
        raise InvalidRecordError(argument, value, "must not be negative")
    if int(value) > MAX_COUNT:  # type: ignore[call-overload]
        raise InvalidRecordError(
            argument, value, f"is above the maximum of {MAX_COUNT:,} per record; check the value"
        )


def _is_integer(value: object) -> bool:
    if isinstance(value, int):
        return True
    # numpy integer scalars are not int subclasses but are exact integers.
    return type(value).__module__ == "numpy" and _numpy_integer(value)


def _numpy_integer(value: object) -> bool:
    try:
        import numpy
    except ImportError:
        return False
    return isinstance(value, numpy.integer)


def to_json_value(value: Any, path: str = "metadata", depth: int = 0) -> Any:
    """Convert a metadata value into plain JSON types by the rules above."""
    if depth > MAX_METADATA_DEPTH:
        raise InvalidRecordError(path, value, f"is nested deeper than {MAX_METADATA_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        _check_encodable(path, value)
        # The text itself, as json.dump writes it: str() of a (str, Enum) member is "Class.NAME".
        return str.__str__(value)
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidRecordError(
                path, value, "is outside the signed 64-bit integer range; store it as a string"
            )
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            text = _key_text(key, path)
            if text in result:
                raise InvalidRecordError(
                    f"{path} key", key, f"becomes {text!r} in JSON, which is another key too; rename one of them"
                )
            result[text] = to_json_value(item, f"{path}[{key!r}]", depth + 1)
        return result
    if isinstance(value, (list, tuple)):
        return [to_json_value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = list(value)
        try:
            items.sort()
        except TypeError:
            pass  # Mixed types cannot be sorted; keep iteration order.
        return [to_json_value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
    if type(value).__module__.startswith("pandas") and _is_pandas_missing(value):
        return None  # pandas NaT is a datetime subclass whose isoformat() is "NaT".
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return None if not value.is_finite() else str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return _convert_library_scalar(value, path, depth)


def _key_text(key: object, path: str) -> str:
    """Return a metadata key as the string that `json.dump` (and so v1) writes for it."""
    if isinstance(key, str):
        _check_encodable(f"{path} key", key)
        return str.__str__(key)
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        if math.isnan(key):
            return "NaN"
        if math.isinf(key):
            return "Infinity" if key > 0 else "-Infinity"
        return float.__repr__(key)
    raise InvalidRecordError(
        f"{path} key", key,
        f"metadata keys must be strings, numbers, booleans or None, not {type(key).__name__}",
    )


def _check_encodable(path: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRecordError(
            path, text, f"contains a lone surrogate at position {exc.start}, which UTF-8 cannot encode"
        ) from None


def _convert_library_scalar(value: Any, path: str, depth: int) -> Any:
    """Convert numpy and pandas values without importing either library."""
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        if _is_pandas_missing(value):
            return None
        if hasattr(value, "isoformat"):
            return value.isoformat()
    if module in ("numpy", "pandas"):
        if hasattr(value, "tolist"):
            # numpy scalars and arrays turn into Python scalars and lists.
            return to_json_value(value.tolist(), path, depth + 1)
        if hasattr(value, "item"):
            return to_json_value(value.item(), path, depth + 1)
    raise InvalidRecordError(
        path,
        value,
        f"a {type(value).__module__}.{type(value).__qualname__} cannot be stored as JSON; "
        "convert it to a string or number first",
    )


def _is_pandas_missing(value: Any) -> bool:
    try:
        import pandas
    except ImportError:
        return False
    try:
        return bool(pandas.isna(value))
    except (TypeError, ValueError):
        return False


def check_metadata(metadata: object) -> dict[str, Any] | None:
    """Check and convert the metadata argument; return None for empty metadata."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidRecordError(
            "metadata", metadata, f"must be a dict or None, not {type(metadata).__name__}"
        )
    if not metadata:
        return None
    if type(metadata) is dict and _is_plain(metadata):
        return metadata
    return to_json_value(metadata)


def _is_plain(metadata: dict[Any, Any]) -> bool:
    """Return True if `to_json_value` would return an equal dict: one level of plain values.

    Records usually carry a few numbers and strings; checking them here
    costs a third of the recursive conversion. Anything else goes through it.
    """
    for key, value in metadata.items():
        if type(key) is not str:
            return False
        kind = type(value)
        if kind is float:
            if value != value or value in (math.inf, -math.inf):
                return False
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                return False
        elif kind is str:
            if not value.isascii():
                return False
        elif value is not None and kind is not bool:
            return False
        if not key.isascii():
            return False
    return True


def check_encoded_size(line: bytes) -> None:
    """Reject an encoded event line larger than MAX_EVENT_BYTES."""
    if len(line) > MAX_EVENT_BYTES:
        raise InvalidRecordError(
            "metadata",
            f"<{len(line)} bytes encoded>",
            f"the record encodes to {len(line)} bytes, the maximum is {MAX_EVENT_BYTES}; "
            "store large data in a file and put its path in metadata",
        )


def encode_metadata(metadata: dict[str, Any] | None) -> msgspec.Raw:
    """Encode converted metadata once, for storage in an event (empty Raw for none)."""
    if metadata is None:
        return NO_METADATA
    return msgspec.Raw(msgspec.json.encode(metadata))
