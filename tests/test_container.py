"""The Dockerfile, built and run: with no configuration the image serves the bundled samples on
$PORT, as a user that is not root, its HEALTHCHECK passes, and what it declares (EXPOSE, VOLUME,
PORT, USER) agrees.

Built offline (WHEELS) with podman on a debootstrapped bookworm, and run by chroot in a created
container's root as the image's USER, with its ENV, WORKDIR and CMD read from its config: why so,
in tests/support/containers.py. debootstrap's tarball is kept in pytest's cache (it takes ~45 s);
the image is built afresh each run. .ci/run installs podman and debootstrap; without them, or
without root, these tests fail and say so: they do not skip.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support.containers import (
    ImageConfig,
    Podman,
    build_context,
    debootstrap_base,
    in_root,
    missing_tools,
)
from .support.images import decode
from .support.servers import REPO, Server, free_port, wait_until_serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE = "localhost/debian-python:bookworm"
IMAGE = "localhost/image-origin:test"
WORKERS = 2


@dataclass(frozen=True)
class Built:
    podman: Podman
    config: ImageConfig
    root: Path  # the created container's root, writable, as the running container's would be

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


@pytest.fixture(scope="module")
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    missing = missing_tools()
    if missing:
        pytest.fail(f"building the image needs {', '.join(missing)}: .ci/run installs podman and debootstrap")
    base = debootstrap_base(request.config.cache.mkdir("container-base"))
    podman = Podman(tmp_path_factory.mktemp("podman"))
    try:
        context = build_context(tmp_path_factory.mktemp("context"))
        podman("import", "--quiet", "-", BASE, stdin=base)
        # --format docker: the OCI format has no HEALTHCHECK, and podman would drop it.
        # --layers=false: one layer a stage, not one a step (nothing here would reuse them).
        podman(
            "build", "--pull=never", "--isolation=chroot", "--format=docker", "--layers=false",
            f"--build-arg=BASE={BASE}", "--build-arg=WHEELS=wheels", f"--tag={IMAGE}", str(context),
            timeout=900,
        )  # fmt: skip
        shutil.rmtree(context)  # 130 MB of wheels, in the image now
        config = ImageConfig.inspect(podman, IMAGE)
        container = podman("create", "--pull=never", "--no-healthcheck", IMAGE)
        yield Built(podman, config, Path(podman("mount", container)))
    finally:
        podman.close()


def run(built: Built, **env: str) -> Server:
    """The image's CMD as `docker run -e PORT=<free port> -e GUNICORN_WORKERS=2 -e ...` runs it."""
    port = free_port()
    env = {"PORT": str(port), "GUNICORN_WORKERS": str(WORKERS), **env}
    log = Path(tempfile.mkstemp(prefix="container-", suffix=".log")[1])
    out = Path(tempfile.mkstemp(prefix="container-", suffix=".out")[1])
    with log.open("wb") as stderr, out.open("wb") as stdout:
        process = subprocess.Popen(
            in_root(built.root, built.config, built.config.command, env), stdout=stdout, stderr=stderr
        )
    return wait_until_serving(Server(process, port, log, out), WORKERS, timeout=60)


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[Server]:
    """The image run with no configuration."""
    server = run(built)
    yield server
    server.stop()


def test_the_port_volume_and_user_it_declares_agree(built: Built) -> None:
    config = built.config
    assert config.exposed == {f"{config.env['PORT']}/tcp"}, "EXPOSE is PORT's default"
    assert config.volumes == {config.env["PROXY_CACHE_DIR"]}, "the cache directory is the VOLUME"
    uid, gid = config.ids()
    assert uid != 0 and gid != 0
    volume = built.path(config.env["PROXY_CACHE_DIR"]).stat()
    assert (volume.st_uid, volume.st_gid) == (uid, gid), "the user owns the volume, so it can write it"


def test_it_holds_only_what_runs(built: Built) -> None:
    names = {path.name for path in built.path(built.config.workdir).iterdir()}
    assert {"proxy", "samples", "gunicorn.conf.py"} <= names
    assert not names & {"tests", "bench", "docs", ".git", ".venv", "cache_dir", "wheels", "Dockerfile"}
    assert not list(built.root.glob("tmp/**/*.whl")), "the wheels stayed in the build stage"


def test_it_serves_the_bundled_samples_on_port(built: Built, server: Server) -> None:
    status, headers, body = server.request("GET", "/image/rocket.jpg?w=100")
    assert status == 200, body
    assert headers["content-type"] == "image/jpeg"
    assert decode(body).shape[1] == 100
    # On every interface, which `docker run -p` needs; only loopback is asked here.
    assert f"Listening at: http://0.0.0.0:{server.port}" in server.log_text()
    uid, _ = built.config.ids()
    stored = [path for path in built.path(built.config.env["PROXY_CACHE_DIR"]).rglob("*") if path.is_file()]
    assert stored and {path.stat().st_uid for path in stored} == {uid}, "the variant is in the volume"


def test_the_demo_has_its_playground_and_a_configured_image_none(built: Built, server: Server) -> None:
    status, headers, _ = server.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")  # as `make serve`
    configured = run(built, PROXY_IMAGE_ROOT="/app/samples")  # originals named: production
    try:
        assert configured.request("GET", "/")[0] == 404
        assert configured.request("GET", "/image/rocket.jpg?w=50")[0] == 200
    finally:
        configured.stop()


def test_master_and_workers_run_as_the_images_user(built: Built, server: Server) -> None:
    uid, gid = built.config.ids()
    processes = [server.process.pid, *server.workers()]
    assert len(processes) == 1 + WORKERS
    for pid in processes:
        assert b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes()
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        assert status["Uid"].split() == [str(uid)] * 4, f"real, effective, saved, fs uid of {pid}"
        assert status["Gid"].split() == [str(gid)] * 4
        assert status["Groups"].split() == [str(gid)]


def test_its_healthcheck_passes_and_fails_when_nothing_answers(built: Built, server: Server) -> None:
    command = built.config.health_command()

    def check(port: int) -> subprocess.CompletedProcess[str]:
        # Run as docker runs it: in the container, as its user, with its environment.
        argv = in_root(built.root, built.config, command, {"PORT": str(port)})
        return subprocess.run(argv, capture_output=True, text=True, timeout=built.config.health_timeout + 5)

    passed = check(server.port)
    assert passed.returncode == 0, passed.stderr
    assert check(free_port()).returncode != 0
    status, _, body = server.request("GET", "/healthz")
    assert status == 200, body


def test_the_docs_show_what_the_image_declares(built: Built) -> None:
    page = (REPO / "docs" / "deployment.md").read_text()
    section = page.split("\n## Container image\n", 1)[1].split("\n## ", 1)[0]
    uid, gid = built.config.ids()
    port = built.config.env["PORT"]
    assert f"-p {port}:{port}" in section
    assert built.config.env["PROXY_CACHE_DIR"] in section
    assert f"{uid}:{gid}" in section
