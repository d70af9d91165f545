"""Scaled WebP decoding: libwebp shrinks while it decodes, as libjpeg does, if it is asked to.

Neither OpenCV nor imagecodecs asks, so a large WebP source was decoded whole, then resized. Asked,
libwebp rescales each row as it leaves the decoder, and with its loop filter on a second thread a
small result from a large WebP takes markedly less time (figures: docs/performance.md).

The ``webp`` bindings (cffi, libwebp 1.3.2 compiled in) export ``WebPDecode`` but declare only
some fields of its options, not ``use_scaling``. Their module was compiled against libwebp's own
header, so the struct in memory has the header's layout: this module declares the whole of it
(decode.h) in an FFI of its own, checks that both declarations agree on every field they share
and on the size, and passes its pointer to their ``WebPDecode``. Should a release of the bindings
change the layout, ``AVAILABLE`` is False and OpenCV decodes, as before.
"""

from __future__ import annotations

from typing import Any

import cffi
import numpy as np
import numpy.typing as npt
from webp._webp import ffi as bindings  # the compiled module the ``webp`` package wraps
from webp._webp import lib

DECLARATIONS = """
    typedef struct {
        int width; int height; int has_alpha; int has_animation; int format; uint32_t pad[5];
    } WebPBitstreamFeatures;
    typedef struct { uint8_t* rgba; int stride; size_t size; } WebPRGBABuffer;
    typedef struct {
        uint8_t* y; uint8_t* u; uint8_t* v; uint8_t* a;
        int y_stride; int u_stride; int v_stride; int a_stride;
        size_t y_size; size_t u_size; size_t v_size; size_t a_size;
    } WebPYUVABuffer;
    typedef struct {
        int colorspace; int width; int height; int is_external_memory;
        union { WebPRGBABuffer RGBA; WebPYUVABuffer YUVA; } u;
        uint32_t pad[4];
        uint8_t* private_memory;
    } WebPDecBuffer;
    typedef struct {
        int bypass_filtering; int no_fancy_upsampling;
        int use_cropping; int crop_left; int crop_top; int crop_width; int crop_height;
        int use_scaling; int scaled_width; int scaled_height;
        int use_threads; int dithering_strength; int flip; int alpha_dithering_strength;
        uint32_t pad[5];
    } WebPDecoderOptions;
    typedef struct {
        WebPBitstreamFeatures input; WebPDecBuffer output; WebPDecoderOptions options;
    } WebPDecoderConfig;
    """  # the structs of libwebp 1.3.2's decode.h, whole
_FFI = cffi.FFI()
_FFI.cdef(DECLARATIONS)
_STRUCTS = (
    "WebPBitstreamFeatures",
    "WebPRGBABuffer",
    "WebPDecBuffer",
    "WebPDecoderOptions",
    "WebPDecoderConfig",
)


def agrees(ours: cffi.FFI, theirs: Any) -> bool:
    """Whether two declarations lay the structs out alike: the same size, and every field that
    ``theirs`` declares at the same offset in ``ours``."""
    try:
        return all(
            ours.sizeof(struct) == theirs.sizeof(struct)
            and all(
                ours.offsetof(struct, name) == field.offset for name, field in theirs.typeof(struct).fields
            )
            for struct in _STRUCTS
        )
    except (cffi.FFIError, KeyError, TypeError):  # a field or a struct one of them does not declare
        return False


AVAILABLE = agrees(_FFI, bindings)
_OK = 0  # VP8_STATUS_OK


def decode(data: bytes, size: tuple[int, int] | None = None) -> npt.NDArray[np.uint8] | None:
    """The still WebP in ``data`` as BGR pixels, BGRA when its bitstream says it has alpha (as
    OpenCV decides), scaled to ``size`` (width, height) while decoding when given; None when
    libwebp refuses the data.

    libwebp's loop filter runs on a second thread (``use_threads``), which OpenCV does not ask
    for, as OpenCV's resize runs on all cores: sooner, with the same pixels (figures:
    docs/performance.md)."""
    config = _FFI.new("WebPDecoderConfig *")
    theirs: Any = bindings.cast("WebPDecoderConfig *", int(_FFI.cast("uintptr_t", config)))
    source = bindings.from_buffer(data)
    if (
        not lib.WebPInitDecoderConfig(theirs)
        or lib.WebPGetFeatures(source, len(data), bindings.addressof(theirs, "input")) != _OK
    ):
        return None
    width, height = size or (config.input.width, config.input.height)
    if (width, height) != (config.input.width, config.input.height):
        config.options.use_scaling = 1
        config.options.scaled_width, config.options.scaled_height = width, height
    config.options.use_threads = 1
    alpha = bool(config.input.has_alpha)
    pixels = np.empty((height, width, 4 if alpha else 3), np.uint8)
    config.output.colorspace = lib.MODE_BGRA if alpha else lib.MODE_BGR
    config.output.is_external_memory = 1  # straight into ``pixels``, no copy
    config.output.u.RGBA.rgba = _FFI.cast("uint8_t *", pixels.ctypes.data)
    config.output.u.RGBA.stride = pixels.strides[0]
    config.output.u.RGBA.size = pixels.nbytes
    return pixels if lib.WebPDecode(source, len(data), theirs) == _OK else None
