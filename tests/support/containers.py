"""The Dockerfile's image built and run where no container can start: podman builds it on a
debootstrapped Debian, and the image's command runs by chroot in a created container's root.

Why this way: CI machines reach Debian's archive and PyPI but no container registry (so no
python:3.11-slim to build FROM), and their OCI runtimes refuse to start a container (crun and
runc fail setting its rlimits). podman's build needs no runtime with ``--isolation=chroot``, and a
container that is created and mounted, never started, gives a writable root for chroot to run in,
as the image's own user, with its environment and working directory, read from its config.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .servers import REPO

# The base stands in for python:3.11-slim-bookworm: the same Debian, python3 at /usr/bin rather
# than /usr/local/bin, which the Dockerfile's venv makes no difference to.
DEBOOTSTRAP = ("debootstrap", "--variant=minbase", "--include=python3,python3-venv", "bookworm")
MIRROR = "http://deb.debian.org/debian"
TOOLS = ("podman", "debootstrap", "chroot", "mount", "tar", "git")
# debootstrap and chroot live in /usr/sbin, which a CI user's PATH may not name.
PATH = f"{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"


def tool(name: str) -> str:
    return shutil.which(name, path=PATH) or name


def run(argv: Sequence[str], stdin: Path | None = None, timeout: float = 120) -> str:
    """``argv``'s stdout; an error with the end of its output if it fails."""
    with open(stdin or os.devnull, "rb") as given:
        done = subprocess.run(
            [tool(argv[0]), *argv[1:]],
            stdin=given,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "PATH": PATH},
        )
    if done.returncode != 0:
        said = (done.stdout[-3000:] + done.stderr[-3000:]).decode(errors="replace")
        named = " ".join([word for word in argv if not word.startswith("-")][:3])  # not its flags
        raise RuntimeError(f"{named} ... failed ({done.returncode}):\n{said}")
    return done.stdout.decode().strip()


def missing_tools() -> list[str]:
    """What this machine lacks to build and run the image: ``.ci/run`` installs it all."""
    missing = [name for name in TOOLS if shutil.which(name, path=PATH) is None]
    if os.geteuid() != 0:
        missing.append("root (debootstrap, podman's storage and chroot need it)")
    return missing


def debootstrap_base(cache: Path) -> Path:
    """A tarball of a minimal Debian bookworm with python3 and its venv module, made once (~45 s)
    and kept in ``cache`` under a name that changes with the recipe."""
    recipe = hashlib.sha256(repr((DEBOOTSTRAP, MIRROR)).encode()).hexdigest()[:16]
    tarball = cache / f"debian-{recipe}.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=cache))
    try:
        root = scratch / "root"
        run([*DEBOOTSTRAP, str(root), MIRROR], timeout=900)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):  # the .debs, the indexes
            shutil.rmtree(root / leftover)
        partial = scratch / "base.tar"
        run(["tar", "-C", str(root), "-cf", str(partial), "."])
        partial.replace(tarball)  # whole or not at all: an interrupted run leaves no half tarball
    finally:
        _unmount_under(scratch)  # a failed debootstrap can leave its /proc and /sys mounted
        shutil.rmtree(scratch, ignore_errors=True)
    return tarball


def build_context(directory: Path) -> Path:
    """The checkout's files (git's tracked and untracked, not its ignored) copied to ``directory``
    with the wheels of requirements.txt in ``wheels/``: the repository never holds a wheels/.
    .dockerignore, copied with them, decides what the build sees."""
    listed = run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file may be deleted in the work tree
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, directory / name)
    # The image's Python and platform, not this venv's: binary wheels only, as an offline build
    # has no compiler; manylinux2014 for the wheels older than manylinux_2_28.
    machine = platform.machine()
    platforms = [f"--platform=manylinux_2_28_{machine}", f"--platform=manylinux2014_{machine}"]
    run(
        [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
         "--only-binary=:all:", "--python-version=3.11", *platforms,
         "-r", str(directory / "requirements.txt"), "-d", str(directory / "wheels")],
        timeout=600,
    )  # fmt: skip
    return directory


class Podman:
    """podman on a storage of its own under ``scratch``, removed by ``close()``."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self.flags = [
            f"--root={scratch / 'storage'}",
            f"--runroot={scratch / 'run'}",
            f"--tmpdir={scratch / 'tmp'}",
            f"--storage-driver={_storage_driver(scratch)}",
            # No container is ever started: nothing to ask systemd for, no journal to write to.
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
        ]

    def __call__(self, *args: str, stdin: Path | None = None, timeout: float = 120) -> str:
        return run(["podman", *self.flags, *args], stdin, timeout)

    def close(self) -> None:
        # The storage is this run's alone, so it is unmounted and deleted as files: `podman
        # system reset` takes ~10 s over the same, syncing the disk as it deletes each layer.
        subprocess.run(["podman", *self.flags, "unmount", "--all"], capture_output=True)
        _unmount_under(self.scratch)
        shutil.rmtree(self.scratch, ignore_errors=True)


def _storage_driver(scratch: Path) -> str:
    """overlay where the kernel mounts it here (a build in half the time), else vfs, which
    copies every layer whole but works on any file system."""
    probe = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=scratch))
    lower, upper, work, merged = (probe / name for name in ("lower", "upper", "work", "merged"))
    for directory in (lower, upper, work, merged):
        directory.mkdir()
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    mounted = subprocess.run(
        [tool("mount"), "-t", "overlay", "overlay", "-o", options, str(merged)], capture_output=True
    )
    if mounted.returncode == 0:
        subprocess.run([tool("umount"), str(merged)], check=True)
    shutil.rmtree(probe)
    return "overlay" if mounted.returncode == 0 else "vfs"


def _unmount_under(path: Path) -> None:
    """Unmount whatever is mounted at or below ``path``, deepest first, so that deleting it
    cannot reach through a mount."""
    prefix = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1].encode().decode("unicode_escape") for line in mounts]
    for point in sorted((p for p in points if p == prefix or p.startswith(prefix + "/")), reverse=True):
        subprocess.run([tool("umount"), "--lazy", point], capture_output=True)


@dataclass(frozen=True)
class ImageConfig:
    """What the image says about running it (``podman image inspect``), as docker would use it."""

    user: str
    env: dict[str, str]
    workdir: str
    command: list[str]  # Entrypoint, then Cmd
    exposed: set[str]
    volumes: set[str]
    healthcheck: list[str]  # docker's form: ["CMD", argv...], ["CMD-SHELL", line], or []
    health_timeout: float  # s

    @classmethod
    def inspect(cls, podman: Podman, image: str) -> ImageConfig:
        found = json.loads(podman("image", "inspect", image))[0]
        config, health = found["Config"], found.get("Healthcheck") or {}
        return cls(
            user=config.get("User", ""),
            env=dict(item.split("=", 1) for item in config.get("Env") or []),
            workdir=config.get("WorkingDir") or "/",
            command=[*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])],
            exposed=set(config.get("ExposedPorts") or {}),
            volumes=set(config.get("Volumes") or {}),
            healthcheck=list(health.get("Test") or []),
            health_timeout=health.get("Timeout", 30 * 10**9) / 1e9,
        )

    def ids(self) -> tuple[int, int]:
        """USER as uid and gid: numeric, as an orchestrator needs it to tell it is not root."""
        uid, _, gid = self.user.partition(":")
        if not (uid.isdigit() and gid.isdigit()):
            raise ValueError(f"USER {self.user!r} is not numeric uid:gid")
        return int(uid), int(gid)

    def health_command(self) -> list[str]:
        kind, *rest = self.healthcheck or ["NONE"]
        if kind == "CMD":
            return rest
        if kind == "CMD-SHELL":
            return ["/bin/sh", "-c", *rest]
        raise ValueError(f"no HEALTHCHECK in the image (podman build needs --format docker): {kind}")


def in_root(
    root: Path, config: ImageConfig, argv: Sequence[str], env: Mapping[str, str] | None = None
) -> list[str]:
    """``argv`` as a container of the image would run it in ``root``: as its USER, with only its
    ENV (and ``env``, as ``docker run -e``), from its WORKDIR."""
    uid, gid = config.ids()
    variables = [f"{name}={value}" for name, value in {**config.env, **(env or {})}.items()]
    # Every step execs the next, so the process started is ``argv``'s own.
    enter = 'cd "$1" && shift && exec "$@"'
    return [
        tool("chroot"), f"--userspec={uid}:{gid}", f"--groups={gid}", str(root),
        "env", "-i", *variables, "sh", "-c", enter, "sh", config.workdir, *argv,
    ]  # fmt: skip
