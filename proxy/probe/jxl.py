"""A JPEG XL's declared size, orientation, alpha, depth and colour profile, read by libjxl itself.

A JPEG XL header is a bit stream (variable-length fields, then an entropy-coded ICC profile), so
rather than a reader of our own this asks libjxl, the library imagecodecs ships and decodes with,
for its basic information and colour encoding: a decoder that stops there reads no pixel.

The profile asked for is the one of the pixels the decoder hands over (``TARGET_DATA``), which is
what color.py converts from: an embedded ICC profile, or one libjxl writes for the encoded colour
space (Display P3, Rec.2020...), lossy (XYB) images decoding to their original space. The
orientation is the codestream's, as stored: the decoder keeps it (``keeporientation``), and the
``orient`` step turns the small image, as for a JPEG's EXIF.

``AVAILABLE`` is False where imagecodecs' libjxl cannot be found or is older than 0.9 (whose ICC
calls this declares): JPEG XL originals are then refused as an unsupported format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import cffi
import imagecodecs

from .base import MAX_SCAN, SourceInfo, _malformed, _truncated, _valid_orientation

_DECLARATIONS = """
    typedef struct { uint32_t xsize; uint32_t ysize; } JxlPreviewHeader;
    typedef struct {
        uint32_t tps_numerator; uint32_t tps_denominator; uint32_t num_loops; int have_timecodes;
    } JxlAnimationHeader;
    typedef struct {
        int have_container; uint32_t xsize; uint32_t ysize;
        uint32_t bits_per_sample; uint32_t exponent_bits_per_sample;
        float intensity_target; float min_nits; int relative_to_max_display; float linear_below;
        int uses_original_profile; int have_preview; int have_animation; int orientation;
        uint32_t num_color_channels; uint32_t num_extra_channels;
        uint32_t alpha_bits; uint32_t alpha_exponent_bits; int alpha_premultiplied;
        JxlPreviewHeader preview; JxlAnimationHeader animation;
        uint32_t intrinsic_xsize; uint32_t intrinsic_ysize;
        uint8_t padding[100];
    } JxlBasicInfo;
    typedef struct JxlDecoder JxlDecoder;
    uint32_t JxlDecoderVersion(void);
    JxlDecoder* JxlDecoderCreate(const void* memory_manager);
    void JxlDecoderDestroy(JxlDecoder* dec);
    int JxlDecoderSubscribeEvents(JxlDecoder* dec, int events_wanted);
    int JxlDecoderSetKeepOrientation(JxlDecoder* dec, int skip_reorientation);
    int JxlDecoderSetInput(JxlDecoder* dec, const uint8_t* data, size_t size);
    int JxlDecoderProcessInput(JxlDecoder* dec);
    int JxlDecoderGetBasicInfo(const JxlDecoder* dec, JxlBasicInfo* info);
    int JxlDecoderGetICCProfileSize(const JxlDecoder* dec, int target, size_t* size);
    int JxlDecoderGetColorAsICCProfile(const JxlDecoder* dec, int target, uint8_t* icc, size_t size);
    """  # libjxl 0.9+'s decode.h and codestream_header.h, as much as is used
_SUCCESS, _NEED_MORE_INPUT, _BASIC_INFO, _COLOR_ENCODING = 0, 2, 0x40, 0x100
_TARGET_DATA = 1  # JXL_COLOR_PROFILE_TARGET_DATA: the profile of the pixels decoded
_HEAD = 1 << 16  # bytes given first: the headers and the profile come before any frame


def _load() -> tuple[cffi.FFI, Any] | None:
    """imagecodecs' own libjxl (the one its decoder links), if this wheel's layout has it."""
    if not imagecodecs.JPEGXL.available:  # also loads the decoder, and with it libjxl's own libraries
        return None
    package = Path(imagecodecs.__file__).parent
    candidates = sorted((package.parent / "imagecodecs.libs").glob("libjxl-*.so*"))
    if not candidates:
        return None
    ffi = cffi.FFI()
    ffi.cdef(_DECLARATIONS)
    try:
        lib = ffi.dlopen(str(candidates[0]))
    except OSError:
        return None
    return (ffi, lib) if lib.JxlDecoderVersion() >= 9000 else None


_LIBJXL = _load()
AVAILABLE = _LIBJXL is not None


def _jxl(file: BinaryIO) -> SourceInfo | None:
    """The header of the JPEG XL in ``file``, bare codestream or ISO-BMFF container; None where
    libjxl is not available."""
    if _LIBJXL is None:
        return None
    data = file.read(_HEAD)
    info = _header(data)
    if info is None and len(data) == _HEAD:  # boxes (EXIF, XMP) before the codestream: read on
        data += file.read(MAX_SCAN - _HEAD)
        info = _header(data)
    if info is None:
        raise _truncated("jxl")
    return info


def _header(data: bytes) -> SourceInfo | None:
    """What libjxl reads from ``data`` up to the colour encoding; None when it needs more."""
    assert _LIBJXL is not None
    ffi, lib = _LIBJXL
    decoder = lib.JxlDecoderCreate(ffi.NULL)
    try:
        basic = ffi.new("JxlBasicInfo*")
        lib.JxlDecoderSetKeepOrientation(decoder, 1)  # the stored frame, and its orientation
        lib.JxlDecoderSubscribeEvents(decoder, _BASIC_INFO | _COLOR_ENCODING)
        buffer = ffi.from_buffer(data)
        lib.JxlDecoderSetInput(decoder, buffer, len(data))
        while True:
            status = lib.JxlDecoderProcessInput(decoder)
            if status == _BASIC_INFO:
                lib.JxlDecoderGetBasicInfo(decoder, basic)
            elif status == _COLOR_ENCODING:
                return _info(basic, _profile(ffi, lib, decoder))
            elif status == _NEED_MORE_INPUT:
                return None
            else:  # an error, or an event not subscribed to
                raise _malformed("JPEG XL")
    finally:
        lib.JxlDecoderDestroy(decoder)


def _profile(ffi: cffi.FFI, lib: Any, decoder: Any) -> bytes | None:
    size = ffi.new("size_t*")
    if lib.JxlDecoderGetICCProfileSize(decoder, _TARGET_DATA, size) != _SUCCESS or not size[0]:
        return None
    icc = ffi.new("uint8_t[]", size[0])
    if lib.JxlDecoderGetColorAsICCProfile(decoder, _TARGET_DATA, icc, size[0]) != _SUCCESS:
        return None
    return bytes(ffi.buffer(icc, size[0]))


def _info(basic: Any, profile: bytes | None) -> SourceInfo:
    if not basic.xsize or not basic.ysize:
        raise _malformed("JPEG XL")
    return SourceInfo(
        "jxl",
        basic.xsize,
        basic.ysize,
        _valid_orientation(basic.orientation),
        channels=basic.num_color_channels + (basic.alpha_bits > 0),
        depth=basic.bits_per_sample,
        profile=profile,
        alpha=basic.alpha_bits > 0,
    )
