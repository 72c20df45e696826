"""Tests of the private SMB share fixture, using plain file operations through the mount.

They also pin down how the smbnetfs client behaves, because the ufstats SMB
integration test relies on it. Behaviour that varies from run to run is
described in comments instead of asserted.
"""

from __future__ import annotations

import errno
import fcntl
import multiprocessing
import os
import socket
import time
from pathlib import Path

import pytest
import smb_support
from smb_support import SmbUnavailable, server_side_path, smb_share

# Makes the fixture available to the tests of this module.
smb_share_path = smb_support.smb_share_path

pytestmark = pytest.mark.slow

WRITER_COUNT = 4
LINES_PER_WRITER = 50
PROCESS_TIMEOUT_SECONDS = 60.0

# smbnetfs puts the server in its negative cache after a failed open, and
# smb_share sets that cache's timeout to 100 ms. Waiting longer than that lets
# the next operation reach the server again.
NEGATIVE_CACHE_WAIT_SECONDS = 0.5


def append_lines(path: str, writer: int, count: int) -> None:
    """Append ``count`` lines, opening the file again in 'a+b' mode for each line."""
    for index in range(count):
        with open(path, "a+b") as file:
            file.write(f"writer={writer} line={index:03d} padding={'x' * 40}\n".encode())


def report_lock_attempt(path: str, kind: str, results: multiprocessing.Queue) -> None:
    """Try an exclusive lock on ``path`` without waiting and put 'acquired' or 'blocked' on ``results``."""
    with open(path, "a+b") as file:
        try:
            if kind == "flock":
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            results.put("blocked")
        else:
            results.put("acquired")


def run_processes(
    context: multiprocessing.context.BaseContext, target, argument_lists: list[tuple]
) -> list[int | None]:
    """Run one process per argument tuple and return their exit codes.

    Waits at most PROCESS_TIMEOUT_SECONDS in total, then kills the processes
    still running, whose exit codes are then negative.
    """
    processes = [context.Process(target=target, args=arguments) for arguments in argument_lists]
    for process in processes:
        process.start()
    deadline = time.monotonic() + PROCESS_TIMEOUT_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


def lock_attempt_result(path: Path, kind: str) -> str:
    """Return 'acquired' or 'blocked' for a lock attempt on ``path`` from another process."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    exit_codes = run_processes(context, report_lock_attempt, [(str(path), kind, results)])
    assert exit_codes == [0]
    return results.get(timeout=PROCESS_TIMEOUT_SECONDS)


def live_processes_mentioning(text: str) -> list[str]:
    """Return the command lines of running (not zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in command_line and state != "Z":
            found.append(command_line)
    return found


def skip_unless_share_can_start() -> None:
    """Skip the test when smb_share would raise SmbUnavailable before starting smbd."""
    for name in ("smbd", "smbpasswd", "smbnetfs"):
        if smb_support.find_executable(name) is None:
            pytest.skip(f"{name} not found; run .ci/install-smb")
    if (
        smb_support.find_executable("fusermount3") is None
        and smb_support.find_executable("fusermount") is None
    ):
        pytest.skip("fusermount3 and fusermount not found; run .ci/install-smb")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        pytest.skip("/dev/fuse is missing or not readable and writable")
    if os.geteuid() != 0:
        pytest.skip("smbd needs root")


def test_missing_binary_raises_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(smb_support, "SBIN_DIRECTORIES", ())

    with pytest.raises(SmbUnavailable, match="smbd not found"), smb_share(tmp_path / "smb"):
        pass


def test_long_workdir_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too long"), smb_share(tmp_path / ("d" * 100)):
        pass


def test_startup_timeout_leaves_no_processes(tmp_path_factory: pytest.TempPathFactory) -> None:
    skip_unless_share_can_start()
    workdir = tmp_path_factory.mktemp("smb")

    # A zero timeout expires while smbd or smbnetfs is still starting.
    with pytest.raises(SmbUnavailable, match="in time"), smb_share(workdir, timeout=0.0):
        pass

    assert live_processes_mentioning(str(workdir)) == []
    assert not os.path.ismount(workdir / "mnt")


def test_port_in_use_raises_unavailable(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    skip_unless_share_can_start()
    workdir = tmp_path_factory.mktemp("smb")

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        monkeypatch.setattr(smb_support, "find_free_loopback_port", lambda: listener.getsockname()[1])

        # smbd cannot bind the port. The other listener must not pass for smbd.
        expected_message = "smbd (exited during startup|did not listen)"
        with pytest.raises(SmbUnavailable, match=expected_message), smb_share(workdir, timeout=5.0):
            pass

    assert live_processes_mentioning(str(workdir)) == []
    assert not os.path.ismount(workdir / "mnt")


def test_share_root_is_empty_mounted_directory(smb_share_path: Path) -> None:
    assert smb_share_path.is_dir()
    assert os.listdir(smb_share_path) == []
    assert smb_share_path.parent.name.startswith("127.0.0.1:")
    assert os.path.ismount(smb_share_path.parent.parent)


def test_mkdir_reaches_server(smb_share_path: Path) -> None:
    folder = smb_share_path / "0UFulfilment" / "Stats" / "shards"

    folder.mkdir(parents=True)

    assert folder.is_dir()
    assert (server_side_path(smb_share_path) / "0UFulfilment" / "Stats" / "shards").is_dir()


def test_append_from_four_processes(smb_share_path: Path) -> None:
    shard = smb_share_path / "shared.jsonl"
    context = multiprocessing.get_context("spawn")

    exit_codes = run_processes(
        context,
        append_lines,
        [(str(shard), writer, LINES_PER_WRITER) for writer in range(WRITER_COUNT)],
    )

    assert exit_codes == [0] * WRITER_COUNT
    expected = sorted(
        f"writer={writer} line={index:03d} padding={'x' * 40}"
        for writer in range(WRITER_COUNT)
        for index in range(LINES_PER_WRITER)
    )
    through_mount = shard.read_text().splitlines()
    on_server = (server_side_path(smb_share_path) / "shared.jsonl").read_text().splitlines()
    assert len(through_mount) == WRITER_COUNT * LINES_PER_WRITER
    assert sorted(through_mount) == expected
    assert sorted(on_server) == expected
    # The processes share one kernel inode on this mount, which serializes
    # their appends. Workstations on different machines each have their own
    # client, so this test does not cover appends from several machines.


def test_replace_over_existing_file(smb_share_path: Path) -> None:
    target = smb_share_path / "global_stats.json"
    temporary = smb_share_path / "global_stats.json.tmp"
    target.write_bytes(b'{"version": 1}')
    temporary.write_bytes(b'{"version": 2}')

    os.replace(temporary, target)

    assert target.read_bytes() == b'{"version": 2}'
    assert not temporary.exists()
    assert (server_side_path(smb_share_path) / "global_stats.json").read_bytes() == b'{"version": 2}'
    # NOTE: the replace is not atomic for other readers. smbd's debug log
    # shows the client deleting the target and then renaming, as two
    # requests. In one run of 200 replaces, a second process calling os.stat
    # in a loop got FileNotFoundError 9 times. How often varies, so it is not
    # asserted.


def test_replace_fails_while_target_open(smb_share_path: Path) -> None:
    target = smb_share_path / "view.json"
    temporary = smb_share_path / "view.json.tmp"
    target.write_bytes(b"old")
    temporary.write_bytes(b"new")

    with open(target, "rb"), pytest.raises(OSError) as raised:
        os.replace(temporary, target)

    # The client deletes the target before renaming, and the server rejects
    # that delete with a sharing violation, which smbnetfs reports as EBUSY.
    assert raised.value.errno == errno.EBUSY
    assert target.read_bytes() == b"old"
    assert temporary.read_bytes() == b"new"


def test_append_only_mode_fails_with_eio(smb_share_path: Path) -> None:
    path = smb_share_path / "append-only.txt"

    with pytest.raises(OSError) as raised, open(path, "ab") as file:
        file.write(b"never written\n")

    assert raised.value.errno == errno.EIO

    # smbnetfs retries for about 4 s before it reports the error, and the
    # failed open may leave an empty file behind.
    time.sleep(NEGATIVE_CACHE_WAIT_SECONDS)
    assert not path.exists() or path.stat().st_size == 0
    with open(path, "a+b") as file:
        file.write(b"written\n")
    assert path.read_bytes() == b"written\n"


def test_fsync_succeeds_and_write_reaches_server(smb_share_path: Path) -> None:
    path = smb_share_path / "fsync.txt"
    server_copy = server_side_path(smb_share_path) / "fsync.txt"

    with open(path, "a+b") as file:
        file.write(b"line\n")
        file.flush()
        os.fsync(file.fileno())
        # smbnetfs sends each write to the server when the kernel passes it
        # on, before close. fsync succeeds but sends no SMB2 FLUSH: with smbd
        # at debug level 10, fsync added no request to its log. So fsync
        # proves nothing about durability on the server.
        assert server_copy.read_bytes() == b"line\n"


@pytest.mark.parametrize("kind", ["flock", "lockf"])
def test_lock_excludes_local_processes_only(smb_share_path: Path, kind: str) -> None:
    path = smb_share_path / f"{kind}.lock"
    server_copy = server_side_path(smb_share_path) / f"{kind}.lock"

    with open(path, "a+b") as file:
        if kind == "flock":
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)

        # The kernel keeps the lock for the mount, so another process on this
        # machine is blocked. The lock never reaches the server, so a process
        # that locks the served file directly gets the lock.
        assert lock_attempt_result(path, kind) == "blocked"
        assert lock_attempt_result(server_copy, kind) == "acquired"
