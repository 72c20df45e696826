"""Bad input to record_* and the constructor: rejected before anything is written."""

from __future__ import annotations

import json
import math
import uuid
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path, PurePosixPath

import pytest

from ufstats import StatsManager
from ufstats.errors import InvalidArgumentError, InvalidRecordError, StatsManagerError
from ufstats.validation import MAX_EVENT_BYTES, MAX_ID_LENGTH, check_count, check_id, to_json_value


@pytest.fixture
def manager(base_path):
    stats = StatsManager(base_path, workstation="PC-1", spool=False)
    yield stats
    stats.close()


def shard_bytes(manager: StatsManager) -> bytes:
    shard = manager.layout.shard_path(manager.workstation)
    return shard.read_bytes() if shard.exists() else b""


def last_metadata(manager: StatsManager) -> dict:
    line = shard_bytes(manager).splitlines()[-1]
    return json.loads(line)["metadata"]


def assert_rejected(manager: StatsManager, call, argument: str, shown: str) -> InvalidRecordError:
    """Run a record_* call that must fail, and check the error and the unchanged shard."""
    before = shard_bytes(manager)
    with pytest.raises(InvalidRecordError) as caught:
        call()
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, StatsManagerError)
    assert f"Invalid {argument}=" in str(error)
    assert shown in str(error)
    assert shard_bytes(manager) == before
    assert manager.pending_count() == 0
    return error


# Ids ---------------------------------------------------------------------------

BAD_IDS = [
    ("", "must not be empty"),
    ("   ", "must not be empty"),
    ("\t\n", "must not be empty"),
    ("x" * (MAX_ID_LENGTH + 1), f"the maximum is {MAX_ID_LENGTH}"),
    ("A\x00B", "control character"),
    ("A\nB", "control character"),
    ("A\x1bB", "control character"),
    ("A\u200bB", "control character"),  # zero-width space (format character)
    ("A\ud800B", "control character"),  # lone surrogate
    (123, "not int"),
    (1.5, "not float"),
    (b"CLIENT", "not bytes"),
    (None, "not NoneType"),
    (["A"], "not list"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_IDS)
@pytest.mark.parametrize("argument", ["client_id", "session_id"])
def test_analysis_bad_ids(manager, argument, value, reason):
    arguments = {"client_id": "M", "session_id": "S1", "orders_count": 1}
    arguments[argument] = value
    error = assert_rejected(manager, lambda: manager.record_analysis(**arguments), argument, reason)
    assert error.argument == argument
    assert error.value == value or (isinstance(value, float) and math.isnan(value))


@pytest.mark.parametrize(("value", "reason"), [item for item in BAD_IDS if item[0] is not None])
@pytest.mark.parametrize("argument", ["client_id", "session_id", "worker_id"])
def test_packing_bad_ids(manager, argument, value, reason):
    arguments = {"client_id": "M", "session_id": "S1", "worker_id": "W", "orders_count": 1, "items_count": 2}
    arguments[argument] = value
    assert_rejected(manager, lambda: manager.record_packing(**arguments), argument, reason)


def test_id_at_max_length_accepted(manager):
    manager.record_analysis("x" * MAX_ID_LENGTH, "S1", 1)
    assert len(shard_bytes(manager).splitlines()) == 1


def test_worker_id_none_accepted(manager):
    manager.record_packing("M", "S1", None, 1, 2)
    assert json.loads(shard_bytes(manager)).get("worker_id") is None
    assert manager.get_packing_history()[0]["worker_id"] is None


def test_id_error_names_position():
    with pytest.raises(InvalidRecordError, match="at position 3"):
        check_id("client_id", "ABC\x07")


def test_id_unicode_accepted(manager):
    manager.record_analysis("Клієнт №1", "сесія 1", 1)
    assert manager.get_client_stats("Клієнт №1")["orders_analyzed"] == 1


# Counts ------------------------------------------------------------------------

BAD_COUNTS = [
    (True, "not bool"),
    (False, "not bool"),
    (1.0, "not float"),
    (2.5, "not float"),
    (float("nan"), "not float"),
    (-1, "must not be negative"),
    ("3", "not str"),
    (None, "not NoneType"),
    (Decimal(3), "not Decimal"),
]


@pytest.mark.parametrize(("value", "reason"), BAD_COUNTS)
def test_analysis_bad_counts(manager, value, reason):
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", value), "orders_count", reason)


@pytest.mark.parametrize(("value", "reason"), BAD_COUNTS)
@pytest.mark.parametrize("argument", ["orders_count", "items_count"])
def test_packing_bad_counts(manager, argument, value, reason):
    arguments = {"client_id": "M", "session_id": "S1", "worker_id": "W", "orders_count": 1, "items_count": 2}
    arguments[argument] = value
    assert_rejected(manager, lambda: manager.record_packing(**arguments), argument, reason)


def test_count_zero_accepted(manager):
    manager.record_packing("M", "S1", "W", 0, 0)
    assert manager.get_global_stats()["total_sessions"] == 1


def test_count_numpy_integers_accepted(manager):
    numpy = pytest.importorskip("numpy")
    manager.record_packing("M", "S1", "W", numpy.int64(4), numpy.uint8(7))
    manager.record_analysis("M", "S2", numpy.int32(5))
    line = json.loads(shard_bytes(manager).splitlines()[0])
    assert line["orders_count"] == 4
    assert line["items_count"] == 7
    assert manager.get_global_stats()["total_orders_analyzed"] == 5


def test_count_numpy_rejections(manager):
    numpy = pytest.importorskip("numpy")
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", numpy.int64(-2)), "orders_count", "negative")
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", numpy.float64(2)), "orders_count", "float64")
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", numpy.bool_(True)), "orders_count", "bool")


def test_count_int_subclass_stored_as_int(manager):
    from enum import IntEnum

    class Size(IntEnum):
        SMALL = 3

    check_count("orders_count", Size.SMALL)
    manager.record_analysis("M", "S1", Size.SMALL)
    assert json.loads(shard_bytes(manager))["orders_count"] == 3


# Metadata ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [[("a", 1)], "text", 5, ("a",), {"a"}])
def test_metadata_not_mapping(manager, value):
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", 1, value), "metadata", "must be a dict or None")


@pytest.mark.parametrize("key", [("a", "b"), b"key", frozenset()])
def test_metadata_unsupported_keys(manager, key):
    assert_rejected(
        manager, lambda: manager.record_analysis("M", "S1", 1, {key: 1}), "metadata key",
        "must be strings, numbers, booleans or None",
    )


def test_metadata_keys_as_json_dump_writes_them(manager):
    metadata = {1: "a", None: "b", 1.5: "c", True: "d", False: "e", math.inf: "f", -(2**70): "g", "plain": "h"}
    manager.record_analysis("M", "S1", 1, metadata)
    stored = json.loads(shard_bytes(manager))["metadata"]
    assert stored == json.loads(json.dumps(metadata))


def test_metadata_keys_that_collide(manager):
    error = assert_rejected(
        manager, lambda: manager.record_analysis("M", "S1", 1, {1: "a", "1": "b"}), "metadata key",
        "becomes '1' in JSON, which is another key too",
    )
    assert error.value == "1"


def test_metadata_nested_unsupported_key(manager):
    error = assert_rejected(
        manager, lambda: manager.record_analysis("M", "S1", 1, {"outer": {(2, 3): "x"}}),
        "metadata['outer'] key", "(2, 3)",
    )
    assert error.value == (2, 3)


def test_metadata_empty_is_none(manager):
    manager.record_analysis("M", "S1", 1, {})
    assert "metadata" not in json.loads(shard_bytes(manager))


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


UNENCODABLE = [
    (Opaque(), "metadata['value']", "Opaque"),
    (b"\x00\x01", "metadata['value']", "bytes"),
    (complex(1, 2), "metadata['value']", "complex"),
    ([1, object()], "metadata['value'][1]", "object"),
    ({"deep": {"er": lambda: 0}}, "metadata['value']['deep']['er']", "function"),
    ("bad \ud800 text", "metadata['value']", "lone surrogate at position 4"),
]


@pytest.mark.parametrize(("value", "argument", "shown"), UNENCODABLE)
def test_metadata_unencodable(manager, value, argument, shown):
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", 1, {"value": value}), argument, shown)


def test_metadata_surrogate_key(manager):
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", 1, {"k\udc00": 1}), "metadata key", "lone surrogate")


def test_metadata_self_reference(manager):
    looping: dict = {}
    looping["self"] = looping
    with pytest.raises(InvalidRecordError, match="nested deeper than 32 levels") as caught:
        manager.record_analysis("M", "S1", 1, looping)
    assert str(caught.value).startswith("Invalid metadata['self']['self']")
    assert shard_bytes(manager) == b""


def test_metadata_standard_conversions(manager):
    moment = datetime(2024, 3, 1, 12, 30, tzinfo=timezone.utc)
    identifier = uuid.UUID("12345678-1234-5678-1234-567812345678")
    metadata = {
        "aware": moment,
        "naive": datetime(2024, 3, 1, 12, 30),
        "day": date(2024, 3, 1),
        "clock": time(8, 15),
        "money": Decimal("10.10"),
        "money_nan": Decimal("NaN"),
        "money_inf": Decimal("-Infinity"),
        "path": Path("/srv/reports/a.csv"),
        "pure": PurePosixPath("x/y"),
        "uuid": identifier,
        "set": {3, 1, 2},
        "mixed_set": {1},
        "tuple": (1, "a", None),
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "nested": {"list": [float("nan"), 1.5, {"when": date(2024, 1, 2)}]},
        "plain": [True, None, "s", 2, 2.5],
    }
    manager.record_analysis("M", "S1", 1, metadata)
    stored = last_metadata(manager)
    assert stored["aware"] == "2024-03-01T12:30:00+00:00"
    assert stored["naive"] == "2024-03-01T12:30:00"
    assert stored["day"] == "2024-03-01"
    assert stored["clock"] == "08:15:00"
    assert stored["money"] == "10.10"
    assert stored["money_nan"] is None
    assert stored["money_inf"] is None
    assert stored["path"] == str(Path("/srv/reports/a.csv"))
    assert stored["pure"] == "x/y"
    assert stored["uuid"] == "12345678-1234-5678-1234-567812345678"
    assert stored["set"] == [1, 2, 3]
    assert stored["mixed_set"] == [1]
    assert stored["tuple"] == [1, "a", None]
    assert stored["nan"] is None
    assert stored["inf"] is None
    assert stored["ninf"] is None
    assert stored["nested"] == {"list": [None, 1.5, {"when": "2024-01-02"}]}
    assert stored["plain"] == [True, None, "s", 2, 2.5]
    assert manager.get_analysis_history()[0]["metadata"] == stored


def test_metadata_unsortable_set_kept():
    converted = to_json_value({1, "a"})
    assert sorted(converted, key=str) == [1, "a"]


def test_metadata_numpy_values(manager):
    numpy = pytest.importorskip("numpy")
    metadata = {
        "int": numpy.int64(7),
        "float": numpy.float32(1.5),
        "nan": numpy.float64("nan"),
        "inf": numpy.float64("inf"),
        "bool": numpy.bool_(True),
        "str": numpy.str_("x"),
        "array": numpy.array([[1, 2], [3, 4]]),
        "float_array": numpy.array([1.0, numpy.nan]),
        "day": numpy.datetime64("2024-01-02"),
        "nat": numpy.datetime64("NaT"),
    }
    manager.record_analysis("M", "S1", 1, metadata)
    stored = last_metadata(manager)
    assert stored["int"] == 7
    assert stored["float"] == 1.5
    assert stored["nan"] is None
    assert stored["inf"] is None
    assert stored["bool"] is True
    assert stored["str"] == "x"
    assert stored["array"] == [[1, 2], [3, 4]]
    assert stored["float_array"] == [1.0, None]
    assert stored["day"] == "2024-01-02"
    assert stored["nat"] is None


def test_metadata_pandas_values(manager):
    pandas = pytest.importorskip("pandas")
    metadata = {
        "stamp": pandas.Timestamp("2024-05-01 10:00", tz="Europe/Kyiv"),
        "naive_stamp": pandas.Timestamp("2024-05-01 10:00"),
        "na": pandas.NA,
        "nat": pandas.NaT,
        "series": pandas.Series([1, 2]),
        "nullable": pandas.array([1, None], dtype="Int64")[1],
    }
    manager.record_analysis("M", "S1", 1, metadata)
    stored = last_metadata(manager)
    assert stored["stamp"] == "2024-05-01T10:00:00+03:00"
    assert stored["naive_stamp"] == "2024-05-01T10:00:00"
    assert stored["na"] is None
    assert stored["nat"] is None
    assert stored["series"] == [1, 2]
    assert stored["nullable"] is None


def test_metadata_pandas_frame_rejected(manager):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"a": [1]})
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", 1, {"frame": frame}), "metadata['frame']", "DataFrame")


def test_record_over_size_limit(manager):
    near = "x" * (MAX_EVENT_BYTES - 1000)
    manager.record_analysis("M", "S1", 1, {"note": near})
    assert_rejected(
        manager,
        lambda: manager.record_analysis("M", "S2", 1, {"note": "x" * MAX_EVENT_BYTES}),
        "metadata",
        f"the maximum is {MAX_EVENT_BYTES}",
    )
    assert manager.get_global_stats()["total_orders_analyzed"] == 1


def test_record_size_counts_escapes(manager):
    # Control characters expand sixfold (\u0001) when encoded as JSON.
    text = "\x01" * (MAX_EVENT_BYTES // 6 + 10)
    assert len(text) < MAX_EVENT_BYTES
    assert_rejected(manager, lambda: manager.record_analysis("M", "S1", 1, {"t": text}), "metadata", "bytes")


# Constructor -------------------------------------------------------------------

BAD_WORKSTATIONS = [
    "",
    "..",
    ".",
    "../PC-1",
    "..\\PC-1",
    "a/b",
    "a\\b",
    "/etc/passwd",
    "C:evil",
    "\\\\server\\share",
    "CON",
    "con",
    "nul.txt",
    "COM1",
    "LPT9.log",
    "PC-1.",
    "-PC",
    "PC 1",
    "PC\x00",
    "x" * 65,
    "ПК-1",
]


@pytest.mark.parametrize("workstation", BAD_WORKSTATIONS)
def test_workstation_rejected(base_path, workstation):
    with pytest.raises(InvalidArgumentError) as caught:
        StatsManager(base_path, workstation=workstation)
    assert isinstance(caught.value, ValueError)
    assert f"workstation={workstation!r}" in str(caught.value)
    assert not (base_path / "Stats" / "shards").exists() or not any((base_path / "Stats" / "shards").iterdir())


@pytest.mark.parametrize("workstation", [123, None.__class__, b"PC"])
def test_workstation_type_rejected(base_path, workstation):
    with pytest.raises(InvalidArgumentError, match="must be a string"):
        StatsManager(base_path, workstation=workstation)


@pytest.mark.parametrize("workstation", BAD_WORKSTATIONS[1:12])
def test_workstation_env_rejected(base_path, monkeypatch, workstation):
    monkeypatch.setenv("UFSTATS_HOST", workstation)
    with pytest.raises(InvalidArgumentError, match="UFSTATS_HOST"):
        StatsManager(base_path)


@pytest.mark.parametrize("workstation", ["PC-1", "pc_2", "A", "x" * 64, "WH1.PACK-3", "CONSOLE", "com10"])
def test_workstation_accepted(base_path, workstation):
    stats = StatsManager(base_path, workstation=workstation)
    try:
        stats.record_analysis("M", "S1", 1)
        shard = stats.layout.shard_path(workstation)
        assert shard.parent == base_path / "Stats" / "shards"
        assert shard.exists()
    finally:
        stats.close()


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        ({"max_retries": 0}, "max_retries=0"),
        ({"max_retries": -3}, "max_retries=-3"),
        ({"max_retries": 2.0}, "max_retries=2.0"),
        ({"max_retries": True}, "max_retries=True"),
        ({"max_retries": "5"}, "max_retries='5'"),
        ({"retry_delay": -0.1}, "retry_delay=-0.1"),
        ({"retry_delay": float("nan")}, "retry_delay=nan"),
        ({"retry_delay": float("inf")}, "retry_delay=inf"),
        ({"retry_delay": None}, "retry_delay=None"),
        ({"lock_timeout": -1}, "lock_timeout=-1"),
        ({"lock_timeout": float("nan")}, "lock_timeout=nan"),
        ({"lock_timeout": float("inf")}, "lock_timeout=inf"),
        ({"lock_timeout": 1e300}, "lock_timeout=1e+300"),
        ({"lock_timeout": "5"}, "lock_timeout='5'"),
    ],
)
def test_constructor_numbers_rejected(base_path, arguments, shown):
    with pytest.raises(InvalidArgumentError) as caught:
        StatsManager(base_path, workstation="PC-1", **arguments)
    assert isinstance(caught.value, ValueError)
    assert f"Invalid {shown}" in str(caught.value)


def test_constructor_numbers_accepted(base_path):
    stats = StatsManager(base_path, 1, 0, workstation="PC-1", lock_timeout=0)
    stats.close()
    stats = StatsManager(base_path, max_retries=3, retry_delay=0.5, workstation="PC-1", lock_timeout=2.5)
    stats.close()


@pytest.mark.parametrize("value", ["", "   ", b"/tmp", 5, None])
def test_base_path_rejected(value):
    with pytest.raises(InvalidArgumentError, match="base_path"):
        StatsManager(value, workstation="PC-1")


@pytest.mark.parametrize(
    "metadata",
    [
        {"duration_seconds": 321.5, "station": "A-1", "late": False, "note": None, "count": 3},
        {"big": 2**63, "ok": 1},
        {"small": -(2**63) - 1},
        {"nan": math.nan},
        {"inf": -math.inf},
        {"name": "Київ"},
        {"Київ": 1},
        {"text": "bad \ud800 surrogate"},
        {"nested": {"a": 1}},
        {"items": [1, 2]},
        {"flag": True, "enum": uuid.UUID(int=5)},
    ],
)
def test_metadata_plain_path_matches_conversion(metadata):
    from ufstats.validation import check_metadata

    try:
        expected = to_json_value(metadata)
    except InvalidRecordError as exc:
        with pytest.raises(InvalidRecordError) as raised:
            check_metadata(metadata)
        assert str(raised.value) == str(exc)
        return
    assert json.dumps(check_metadata(metadata)) == json.dumps(expected)


def test_metadata_str_subclass_converted():
    from ufstats.validation import check_metadata

    class Code(str):
        pass

    converted = check_metadata({"code": Code("X1")})
    assert type(converted["code"]) is str


def test_metadata_str_enum_as_json_dump_writes_it(manager):
    import enum

    class Colour(str, enum.Enum):
        RED = "red"

    metadata = {Colour.RED: 1, "colour": Colour.RED}
    manager.record_analysis("M", "S1", 1, metadata)
    assert json.loads(shard_bytes(manager))["metadata"] == json.loads(json.dumps(metadata))
