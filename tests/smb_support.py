"""Start a private Samba server and mount its share through smbnetfs (FUSE).

The tests use this to write through a real SMB3 client and server, as the
workstations do against the Windows file server. ``.ci/install-smb`` installs
the packages. When something needed is missing, ``smb_share`` raises
``SmbUnavailable`` and the ``smb_share_path`` fixture skips the test.

Observed with Debian 12 packages (samba 4.17.12, smbnetfs 0.6.3, fuse3) when
this module was written. The smbnetfs client differs from a Windows client:

* Opening with ``O_WRONLY | O_APPEND`` (Python mode ``'ab'``) fails with EIO,
  after about 4 s of retries, and may leave an empty file behind.
  ``O_RDWR | O_APPEND`` (mode ``'a+b'``) works.
* smbnetfs does not forward fsync, flock or fcntl locks to the server. fsync
  returns success. Locks are local to the mounting kernel, so they exclude
  processes on this machine only.
* ``os.replace`` onto an existing file deletes the target and then renames,
  as two SMB requests (seen in smbd's debug log), so it is not atomic for
  other readers. While another handle is open on the target, the delete gets
  a sharing violation and ``os.replace`` fails with EBUSY.
* After a failed open, smbnetfs puts the server in its negative cache, and
  every operation on the share, listing included, fails with EIO until the
  entry expires (3 s by default). The mount here sets ``neg_cache_timeout``
  to 100 ms so that one expected failure does not break the operations after
  it. Turning the cache off (``neg_cache "false"`` in the configuration file
  or ``-o neg_cache=false``) makes smbnetfs 0.6.3 hang before it mounts.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARE_NAME = "share"
DEFAULT_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0

# Samba puts Unix domain sockets under the lock directory, as
# <lock>/msg.sock/<pid>, and Linux limits a socket path to 107 bytes.
MAX_SOCKET_PATH_BYTES = 107
SOCKET_NAME_RESERVE = len("/msg.sock/") + 10

# smbd and smbpasswd are installed in /usr/sbin, which a non-login PATH may lack.
SBIN_DIRECTORIES = ("/usr/sbin", "/sbin")


class SmbUnavailable(RuntimeError):
    """A needed binary, device or service is missing, so no SMB share can be mounted."""


def server_side_path(share_root: Path) -> Path:
    """Return the local directory that smbd serves for a share root yielded by ``smb_share``.

    Tests read it to check what reached the server, bypassing the client.
    """
    return share_root.parent.parent.parent / SHARE_NAME


def find_executable(name: str) -> str | None:
    """Return the path of ``name`` on PATH or in the sbin directories, or None."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRECTORIES])
    return shutil.which(name, path=search_path)


def require_executable(name: str) -> str:
    path = find_executable(name)
    if path is None:
        raise SmbUnavailable(f"{name} not found; run .ci/install-smb to install samba, smbnetfs and fuse3")
    return path


def find_free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    NOTE: another process can take the port between this call and smbd's
    bind. smbd then aborts, and ``smb_share`` raises SmbUnavailable.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_summary(path: Path) -> str:
    """Return the first error line of a log file, else its last non-empty line.

    smbd logs a timestamp line before each message and, on a panic, a
    backtrace after the failure, so the last line alone rarely shows what
    went wrong.
    """
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except FileNotFoundError:
        return f"{path} not found"
    messages = [line for line in lines if line and not line.startswith("[")]
    for message in messages:
        lowered = message.lower()
        if "failed" in lowered or "error" in lowered:
            return message
    if messages:
        return messages[-1]
    return f"{path} is empty"


def has_exited(process: subprocess.Popen) -> bool:
    """Check whether ``process`` has exited without reaping it.

    The unreaped process keeps its pid, so its process group id cannot be
    reused until ``stop_process_group`` reaps it.
    """
    if process.returncode is not None:
        return True
    status = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return status is not None


def stop_process_group(process: subprocess.Popen, signal_number: int = signal.SIGTERM) -> None:
    """Stop ``process`` and every process left in its process group, then reap it.

    ``process`` must have been started with ``start_new_session=True``, so its
    pid is also its process group id. Sends ``signal_number`` to the leader
    alone, so that it can shut its children down itself, waits up to
    STOP_TIMEOUT_SECONDS, then sends SIGKILL to the whole group.
    """
    if process.returncode is not None:
        return
    group_id = process.pid
    if not has_exited(process):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal_number)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while not has_exited(process) and time.monotonic() < deadline:
            time.sleep(0.05)

    # The leader is not reaped yet, so the group id still belongs to our processes.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group_id, signal.SIGKILL)
    process.wait()


def write_smbd_config(workdir: Path, port: int, share_path: Path, smbd_log: Path) -> Path:
    """Write an smb.conf whose state lives under ``workdir`` and whose server listens on 127.0.0.1 only."""
    directories = {}
    for name in ("lock", "state", "cache", "pid", "private", "ncalrpc"):
        directory = workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        directories[name] = directory

    config_path = workdir / "smb.conf"
    config_path.write_text(
        f"""[global]
    server role = standalone server
    interfaces = 127.0.0.1
    bind interfaces only = yes
    smb ports = {port}
    disable netbios = yes
    server min protocol = SMB3
    lock directory = {directories["lock"]}
    state directory = {directories["state"]}
    cache directory = {directories["cache"]}
    pid directory = {directories["pid"]}
    private dir = {directories["private"]}
    ncalrpc dir = {directories["ncalrpc"]}
    passdb backend = tdbsam:{directories["private"] / "passdb.tdb"}
    log file = {smbd_log}
    max log size = 0
    map to guest = never
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes

[{SHARE_NAME}]
    path = {share_path}
    read only = no
    create mask = 0644
    directory mask = 0755
    map archive = no
"""
    )
    return config_path


def add_samba_user(smbpasswd: str, config_path: Path, user: str, password: str) -> None:
    """Add ``user`` to the private passdb of ``config_path``."""
    result = subprocess.run(
        [smbpasswd, "-c", str(config_path), "-a", "-s", user],
        input=f"{password}\n{password}\n",
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        reason = output[-1] if output else f"exit code {result.returncode}"
        raise SmbUnavailable(f"smbpasswd failed to add user {user}: {reason}")


def listens_on(pid: int, port: int) -> bool:
    """Check whether process ``pid`` has a socket listening on TCP ``port`` of 127.0.0.1.

    Compares the socket inodes in /proc/net/tcp with the process's file
    descriptors, so another program listening on the same port does not count.
    """
    listening_state = "0A"
    listen_address = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == listen_address and fields[3] == listening_state:
            inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return False
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):
                if os.readlink(descriptor) in inodes:
                    return True
    return False


def wait_for_port(process: subprocess.Popen, port: int, deadline: float, smbd_log: Path) -> None:
    """Wait until smbd listens on 127.0.0.1:``port``."""
    while True:
        if has_exited(process):
            raise SmbUnavailable(f"smbd exited during startup: {log_summary(smbd_log)}")
        if listens_on(process.pid, port):
            return
        if time.monotonic() > deadline:
            raise SmbUnavailable(f"smbd did not listen on 127.0.0.1:{port} in time: {log_summary(smbd_log)}")
        time.sleep(0.1)


def write_smbnetfs_config(home: Path, user: str, password: str) -> Path:
    """Write the smbnetfs and libsmbclient configuration under ``home``/.smb."""
    config_directory = home / ".smb"
    config_directory.mkdir(parents=True, exist_ok=True)

    # libsmbclient reads $HOME/.smb/smb.conf.
    (config_directory / "smb.conf").write_text("[global]\n    client min protocol = SMB3\n")

    config_path = config_directory / "smbnetfs.conf"
    # smbnetfs ignores 'auth' lines unless only the owner can read the file.
    config_path.touch(mode=0o600)
    config_path.chmod(0o600)
    config_path.write_text(
        f"""auth "{user}" "{password}"
smb_query_browsers "false"
use_libsecret "false"
neg_cache_timeout 100
"""
    )
    return config_path


def wait_for_mount(
    process: subprocess.Popen, mount_point: Path, share_root: Path, deadline: float, smbnetfs_log: Path
) -> None:
    """Wait until the share's root can be listed through the mount."""
    last_error: OSError | None = None
    while True:
        if has_exited(process):
            raise SmbUnavailable(f"smbnetfs exited during startup: {log_summary(smbnetfs_log)}")
        if os.path.ismount(mount_point):
            try:
                os.listdir(share_root)
                return
            except OSError as error:
                last_error = error
        if time.monotonic() > deadline:
            if last_error is not None:
                detail = f"listing it failed: {last_error}"
            else:
                detail = f"{mount_point} is not mounted; smbnetfs log: {log_summary(smbnetfs_log)}"
            raise SmbUnavailable(f"smbnetfs mount of {share_root} did not appear in time; {detail}")
        time.sleep(0.2)


def unmount(fusermount: str, mount_point: Path) -> None:
    """Unmount a FUSE mount, lazily when a plain unmount fails (for example while busy)."""
    if not os.path.ismount(mount_point):
        return
    for arguments in (["-u"], ["-u", "-z"]):
        result = subprocess.run(
            [fusermount, *arguments, str(mount_point)],
            capture_output=True,
            timeout=STOP_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode == 0:
            return


@contextlib.contextmanager
def smb_share(workdir: Path, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Iterator[Path]:
    """Start a private smbd on 127.0.0.1, mount its share with smbnetfs and yield the share's root.

    Everything the server and client write, configuration and logs included,
    stays under ``workdir``. The yielded path looks like
    ``workdir/mnt/127.0.0.1:<port>/share``. Files written through it appear in
    ``workdir/share`` (see ``server_side_path``). The logs are
    ``workdir/smbd.log`` and ``workdir/smbnetfs.log``. On exit the mount is
    removed and both process groups are stopped, also when startup fails.

    Raises SmbUnavailable with a one-line reason when a binary, /dev/fuse or
    root rights are missing, or when smbd or the mount does not come up within
    ``timeout`` seconds each.
    """
    workdir = Path(workdir).resolve()
    lock_directory = workdir / "lock"
    if len(os.fsencode(lock_directory)) + SOCKET_NAME_RESERVE > MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"workdir {workdir} is too long for Samba's socket paths; "
            f"use a path of at most {MAX_SOCKET_PATH_BYTES - SOCKET_NAME_RESERVE - len('/lock')} bytes"
        )

    smbd = require_executable("smbd")
    smbpasswd = require_executable("smbpasswd")
    smbnetfs = require_executable("smbnetfs")
    fusermount = find_executable("fusermount3") or find_executable("fusermount")
    if fusermount is None:
        raise SmbUnavailable("fusermount3 and fusermount not found; run .ci/install-smb to install fuse3")
    if not os.path.exists("/dev/fuse"):
        raise SmbUnavailable("/dev/fuse not found, so no FUSE file system can be mounted")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise SmbUnavailable("/dev/fuse is not readable and writable by this user")
    if os.geteuid() != 0:
        raise SmbUnavailable(
            f"smbd needs root to switch to the client's user, but the effective uid is {os.geteuid()}"
        )

    share_path = workdir / SHARE_NAME
    mount_point = workdir / "mnt"
    home = workdir / "home"
    smbd_log = workdir / "smbd.log"
    smbnetfs_log = workdir / "smbnetfs.log"
    for directory in (share_path, mount_point, home):
        directory.mkdir(parents=True, exist_ok=True)

    port = find_free_loopback_port()
    config_path = write_smbd_config(workdir, port, share_path, smbd_log)
    # smbpasswd only adds existing Unix users, and smbd runs as root here.
    user = pwd.getpwuid(os.geteuid()).pw_name
    password = secrets.token_hex(16)
    add_samba_user(smbpasswd, config_path, user, password)
    smbnetfs_config = write_smbnetfs_config(home, user, password)
    share_root = mount_point / f"127.0.0.1:{port}" / SHARE_NAME

    smbd_process: subprocess.Popen | None = None
    smbnetfs_process: subprocess.Popen | None = None
    try:
        with open(workdir / "smbd.out", "wb") as smbd_output:
            smbd_process = subprocess.Popen(
                [smbd, "--foreground", "--no-process-group", f"--configfile={config_path}"],
                stdin=subprocess.DEVNULL,
                stdout=smbd_output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(smbd_process, port, time.monotonic() + timeout, smbd_log)

        environment = dict(os.environ, HOME=str(home))
        with open(smbnetfs_log, "wb") as smbnetfs_output:
            smbnetfs_process = subprocess.Popen(
                [smbnetfs, str(mount_point), "-f", "-o", f"config={smbnetfs_config}"],
                stdin=subprocess.DEVNULL,
                stdout=smbnetfs_output,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=home,
                start_new_session=True,
            )
        wait_for_mount(smbnetfs_process, mount_point, share_root, time.monotonic() + timeout, smbnetfs_log)

        yield share_root
    finally:
        unmount(fusermount, mount_point)
        if smbnetfs_process is not None:
            stop_process_group(smbnetfs_process)
        if smbd_process is not None:
            stop_process_group(smbd_process)


@pytest.fixture
def smb_share_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Yield the root of a freshly mounted private SMB share, or skip when none can be mounted."""
    # tmp_path_factory gives a short path, which Samba's socket paths need.
    workdir = tmp_path_factory.mktemp("smb")
    with contextlib.ExitStack() as stack:
        try:
            share_root = stack.enter_context(smb_share(workdir))
        except SmbUnavailable as error:
            pytest.skip(f"SMB share unavailable: {error}")
        yield share_root
