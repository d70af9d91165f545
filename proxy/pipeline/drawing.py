"""Drawing an SVG with resvg, in a child process bounded in time and memory.

resvg (Rust, through the ``resvg`` binding) holds the GIL while it draws and cannot be
interrupted; it aborts its process when an allocation fails (a pattern tile of 10^5 x 10^5
pixels, an embedded image declaring gigapixels), a hostile document can keep it drawing for
minutes (a self-intersecting path of a million segments, patterns of patterns), and nesting deep
enough overflows its stack. None of that may happen to a worker. So, unless ``ISOLATED`` is off
(tests/conftest.py turns it off for the unit tests, which start no process), each drawing forks:
the child limits its address space to its size at the fork plus ``memory_budget`` and its CPU
time to what is left of the deadline, draws, writes resvg's PNG to a pipe and exits; the worker's
thread waits on the pipe with the GIL released and kills the child at the transform's deadline.
A fork costs 7 ms for a worker of 90 MB, 18 ms at 340 MB (measured: docs/performance.md).

    the child ran out of memory (resvg aborts, or Python's MemoryError)  413
    it was still drawing at the deadline (killed), or over its CPU time  503, as any transform then
    resvg refused the document, or the child died otherwise (a signal)   415

resvg is given the document pipeline/svg.py wrote, a resources directory that does not exist (a
relative path can resolve to no file, though svg.py leaves none), and one font: the bundled
DejaVu Sans Bold, never the system's, so that text is drawn alike on every machine.
"""

from __future__ import annotations

import gc
import math
import os
import resource
import select
import signal
import time
from pathlib import Path

import imagecodecs
import resvg

from ..errors import Overloaded, SourceTooLarge, UnsupportedImage
from ..limits import Limits
from .pixels import Image, has_alpha

FONT = Path(__file__).parent.parent / "data" / "DejaVuSans-Bold.ttf"
FAMILY = "DejaVu Sans"  # the font's family: the only one resvg knows
DRAW_SECONDS = 20.0  # without a deadline (the CLI, tests): Settings.transform_deadline's default
_NOWHERE = "/nonexistent/svg-resources"
_FONT_DATA = FONT.read_bytes()
_UNDRAWABLE, _NO_MEMORY = 3, 4  # the child's exit codes, besides 0

ISOLATED = True  # draw in a forked child; False draws in this process (unit tests only)

Transform = tuple[float, float, float, float, float, float]  # x' = a x + b y + c, y' = d x + e y + f


def memory_budget(canvas: tuple[int, int]) -> int:
    """Bytes a drawing may allocate: 512 MiB for the document and what it embeds, and four
    canvases' worth of RGBA (the canvas, group and filter layers, the PNG)."""
    return (512 << 20) + 16 * canvas[0] * canvas[1]


def draw(document: str, transform: Transform, canvas: tuple[int, int], limits: Limits) -> Image:
    """``document`` drawn through ``transform`` onto a transparent ``canvas`` (width, height):
    RGB(A) order, 8 bits, colours in sRGB as SVG's are; RGB where every pixel is opaque."""
    png = _isolated(document, transform, canvas, limits) if ISOLATED else _png(document, transform, canvas)
    try:
        image: Image = imagecodecs.png_decode(png)
    except (ValueError, imagecodecs.PngError):
        raise UnsupportedImage("could not draw the SVG") from None
    return image if has_alpha(image) else image[..., :3]  # alpha only where a pixel is not opaque


def _png(document: str, transform: Transform, canvas: tuple[int, int]) -> bytes:
    """resvg's drawing, as the PNG it makes (its only output)."""
    options = resvg.usvg.Options.default()  # no system fonts: only those loaded here
    options.resources_dir = _NOWHERE
    options.load_font_data(_FONT_DATA)
    options.font_family = FAMILY
    tree = resvg.usvg.Tree.from_str(document, options)
    return bytes(resvg.render(tree, transform, bg_size=canvas))


def _isolated(document: str, transform: Transform, canvas: tuple[int, int], limits: Limits) -> bytes:
    deadline = limits.deadline if limits.deadline is not None else time.monotonic() + DRAW_SECONDS
    if deadline <= time.monotonic():
        limits.check_deadline()
    budget = memory_budget(canvas)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(read, write, document, transform, canvas, budget, deadline - time.monotonic())
    os.close(write)
    try:
        png, finished = _collect(read, deadline)
    finally:
        os.close(read)
    if not finished:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if not finished or os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGXCPU):
        raise Overloaded("drawing the SVG took too long; try again later", reason="deadline")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    if code == _NO_MEMORY or os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGABRT:
        raise SourceTooLarge(f"the SVG needs more than {budget >> 20} MiB to draw")
    if code != 0:
        raise UnsupportedImage("could not draw the SVG")
    return png


def _collect(fd: int, deadline: float) -> tuple[bytes, bool]:
    """What the child writes, until it closes the pipe (True) or the deadline passes (False)."""
    chunks: list[bytes] = []
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    while (left := deadline - time.monotonic()) > 0:
        if not poll.poll(math.ceil(left * 1000)):
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"", False


def _child(
    read: int,
    write: int,
    document: str,
    transform: Transform,
    canvas: tuple[int, int],
    budget: int,
    seconds: float,
) -> None:
    """Draw within the limits, write the PNG to ``write``, and exit: nothing of the worker runs."""
    code = _UNDRAWABLE
    try:
        gc.disable()  # a collection would touch, and so copy, every page of the worker's objects
        os.close(read)
        null = os.open(os.devnull, os.O_RDWR)  # resvg's and Rust's complaints are not the log's
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.closerange(3, write)  # the worker's sockets and files, which the child has no use for
        os.closerange(write + 1, 1 << 16)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(number, signal.SIG_DFL)
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        size = pages * os.sysconf("SC_PAGE_SIZE") + budget
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
        cpu = max(1, math.ceil(seconds))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        png = _png(document, transform, canvas)
        view = memoryview(png)
        while view:
            view = view[os.write(write, view) :]
        code = 0
    except MemoryError:
        code = _NO_MEMORY
    except BaseException:  # resvg's refusals are pyo3 PanicExceptions, BaseExceptions
        code = _UNDRAWABLE
    finally:
        os._exit(code)


def isolated_overhead() -> float:
    """Seconds a fork, a child exiting and its wait take in this process: what isolation adds
    to each drawing (bench/transform.py may report it)."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return time.perf_counter() - started
