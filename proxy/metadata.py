"""Credits kept (``PROXY_KEEP_COPYRIGHT=1``): the original's copyright and artist, written into
JPEG and WebP answers; everything else is stripped, as it is by default.

Read from the original's EXIF (Copyright 0x8298, Artist 0x013B), by Pillow, which reads them from
a header without decoding pixels, and from its XMP packet (``dc:rights``, ``dc:creator``), by
pattern, never by an XML parser (no entity, no DTD, no fetch). Written as what the answer's format
carries, as EXIF and as XMP (readers look in one or the other): a JPEG gets APP1 segments after
its JFIF one, a WebP becomes an extended one (VP8X) with EXIF and XMP chunks, and an AVIF still an
``Exif`` item (EXIF only: HEIF keeps XMP as another item, not written here). Orientation is never
written: the pixels are upright already. libavif (Pillow's, imagecodecs') and Chromium read such
an AVIF; the older libavif in OpenCV's wheels refuses one whose Exif item refers to the image
(``cdsc``, as HEIF says an item describing another must), but nothing here reads an answer back.
"""

from __future__ import annotations

import html
import re
import struct
from typing import NamedTuple

from PIL import Image

COPYRIGHT, ARTIST = 0x8298, 0x013B
_XMP_HEAD = b"http://ns.adobe.com/xap/1.0/\x00"
_SCAN = 1 << 20  # bytes of the original searched for an XMP packet


class Credit(NamedTuple):
    copyright: str | None
    artist: str | None

    def __bool__(self) -> bool:
        return bool(self.copyright or self.artist)


def credit_of(path: str) -> Credit:
    """The original's copyright and artist, from its EXIF, else its XMP; empty when it has none."""
    copyright = artist = None
    try:
        with Image.open(path) as image:
            tags = image.getexif()
            copyright, artist = _text(tags.get(COPYRIGHT)), _text(tags.get(ARTIST))
    except Exception:  # a header Pillow cannot read (HEIF, JPEG XL): the XMP may still say
        pass
    if copyright is None or artist is None:
        with open(path, "rb") as file:
            head = file.read(_SCAN)
        rights, creator = _xmp_field(head, "rights"), _xmp_field(head, "creator")
        copyright, artist = copyright or rights, artist or creator
    return Credit(copyright, artist)


def credited(data: bytes, credit: Credit) -> bytes:
    """``data`` (an answer's bytes) with ``credit`` written in, where its format carries it."""
    if not credit:
        return data
    exif, xmp = _exif(credit), _xmp(credit)
    if data.startswith(b"\xff\xd8"):
        return _into_jpeg(data, exif, xmp)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _into_webp(data, exif, xmp)
    if data[4:8] == b"ftyp" and data[8:12] == b"avif":
        return _into_avif(data, exif)
    return data


# --- reading ----------------------------------------------------------------------------------


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", " ").strip()
    return text[:1000] or None


def _xmp_field(head: bytes, name: str) -> str | None:
    """The first ``rdf:li`` of ``dc:<name>`` in an XMP packet, unescaped; None without one."""
    found = re.search(rb"<dc:" + name.encode() + rb">(.*?)</dc:" + name.encode() + rb">", head, re.S)
    item = re.search(rb"<rdf:li[^>]*>(.*?)</rdf:li>", found.group(1), re.S) if found else None
    if item is None:
        return None
    return _text(html.unescape(item.group(1).decode("utf-8", "replace")))  # &amp;, &#169;: no parser


# --- writing ----------------------------------------------------------------------------------


def _exif(credit: Credit) -> bytes:
    """A little-endian TIFF block with IFD0 holding Artist and Copyright (ASCII), in tag order."""
    entries = [(tag, value.encode("utf-8") + b"\x00") for tag, value in ((ARTIST, credit.artist),
               (COPYRIGHT, credit.copyright)) if value]  # fmt: skip
    table_end = 8 + 2 + 12 * len(entries) + 4
    ifd, extra = struct.pack("<H", len(entries)), b""
    for tag, value in entries:
        if len(value) <= 4:
            ifd += struct.pack("<HHI", tag, 2, len(value)) + value.ljust(4, b"\x00")
        else:
            ifd += struct.pack("<HHII", tag, 2, len(value), table_end + len(extra))
            extra += value + (b"\x00" if len(value) % 2 else b"")
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + extra


def _xmp(credit: Credit) -> bytes:
    def escaped(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    fields = ""
    if credit.copyright:
        rights = f'<rdf:li xml:lang="x-default">{escaped(credit.copyright)}</rdf:li>'
        fields += f"<dc:rights><rdf:Alt>{rights}</rdf:Alt></dc:rights>"
    if credit.artist:
        fields += f"<dc:creator><rdf:Seq><rdf:li>{escaped(credit.artist)}</rdf:li></rdf:Seq></dc:creator>"
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">{fields}'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def _into_jpeg(data: bytes, exif: bytes, xmp: bytes) -> bytes:
    """APP1 Exif and XMP segments after SOI and any APP0 (JFIF first, as its readers expect)."""
    at = 2
    if data[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", data[4:6])[0]
    segments = b""
    for body in (b"Exif\x00\x00" + exif, _XMP_HEAD + xmp):
        segments += b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    return data[:at] + segments + data[at:]


def _into_webp(data: bytes, exif: bytes, xmp: bytes) -> bytes:
    """The WebP as an extended file (VP8X) with EXIF and XMP chunks after its image."""
    chunks = []
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append((kind, data[at + 8 : at + 8 + size]))
        at += 8 + size + (size & 1)
    if chunks and chunks[0][0] == b"VP8X":
        flags = chunks[0][1][0] | 0x08 | 0x04
        header = bytes([flags]) + chunks[0][1][1:]
        chunks = [(b"VP8X", header), *(c for c in chunks[1:] if c[0] not in (b"EXIF", b"XMP "))]
    else:
        width, height, alpha = _webp_size(chunks)
        flags = 0x08 | 0x04 | (0x10 if alpha else 0)
        header = (
            bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        )
        chunks = [(b"VP8X", header), *chunks]
    chunks += [(b"EXIF", exif), (b"XMP ", xmp)]
    body = b"".join(kind + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) & 1 else b"")
                    for kind, payload in chunks)  # fmt: skip
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _webp_size(chunks: list[tuple[bytes, bytes]]) -> tuple[int, int, bool]:
    """A simple WebP's canvas and whether it has alpha, from its VP8 or VP8L chunk."""
    kind, payload = chunks[0]
    if kind == b"VP8L":
        bits = int.from_bytes(payload[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    width, height = struct.unpack("<HH", payload[6:10])
    return width & 0x3FFF, height & 0x3FFF, False


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """The ISOBMFF boxes between ``start`` and ``end``: (type, offset, size), 32-bit sizes only."""
    found, at = [], start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size < 8 or at + size > end:
            raise ValueError("not a box")
        found.append((kind, at, size))
        at += size
    return found


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _into_avif(data: bytes, exif: bytes) -> bytes:
    """An AVIF still with an ``Exif`` item (HEIF's way: an item of the meta box, described by an
    ``infe``, located by ``iloc`` in an ``mdat`` appended at the end, and tied to the primary item
    by an ``iref`` ``cdsc``), as libavif writes one. The meta box grows, so every extent ``iloc``
    locates moves by as much. Anything unexpected (a sequence, 64-bit sizes, an ``iloc`` version or
    layout this does not know) leaves the file as it was: credits are a courtesy, never a risk."""
    try:
        return _avif_with_exif(data, exif)
    except (ValueError, struct.error):
        return data


def _avif_with_exif(data: bytes, exif: bytes) -> bytes:
    top = _boxes(data, 0, len(data))
    kinds = [kind for kind, _, _ in top]
    if b"moov" in kinds or kinds.count(b"meta") != 1:
        raise ValueError("not a still")
    _, meta_at, meta_size = next(box for box in top if box[0] == b"meta")
    children = _boxes(data, meta_at + 12, meta_at + meta_size)
    body = {kind: data[at + 8 : at + size] for kind, at, size in children}
    if not {b"pitm", b"iloc", b"iinf"} <= set(body):
        raise ValueError("no items")
    primary = struct.unpack(">H", body[b"pitm"][4:6])[0] if body[b"pitm"][0] == 0 else None
    if primary is None:
        raise ValueError("a 32-bit item id")
    iinf = body[b"iinf"]
    version = iinf[0]
    count_size = 2 if version == 0 else 4
    count = int.from_bytes(iinf[4 : 4 + count_size], "big")
    _, iinf_at, _ = next(box for box in children if box[0] == b"iinf")
    entries = _boxes(data, iinf_at + 12 + count_size, iinf_at + 8 + len(iinf))
    ids = [struct.unpack(">H", data[at + 12 : at + 14])[0] for kind, at, _ in entries if kind == b"infe"]
    exif_id = max(ids, default=0) + 1
    if exif_id > 0xFFFF:
        raise ValueError("too many items")
    infe = _box(b"infe", b"\x02\x00\x00\x00" + struct.pack(">HH", exif_id, 0) + b"Exif" + b"\x00")
    new_iinf = iinf[:4] + (count + 1).to_bytes(count_size, "big") + iinf[4 + count_size :] + infe
    cdsc = _box(b"cdsc", struct.pack(">HHH", exif_id, 1, primary))
    new_iref = body[b"iref"] + cdsc if b"iref" in body else b"\x00\x00\x00\x00" + cdsc
    if b"iref" in body and body[b"iref"][0] != 0:
        raise ValueError("32-bit references")

    def iloc(shift: int, at: int) -> bytes:
        return _shifted_iloc(body[b"iloc"], shift, exif_id, at, 10 + len(exif))

    rebuilt = []
    for kind, _, _ in children:
        if kind == b"iinf":
            rebuilt.append((kind, new_iinf))
            if b"iref" not in body:
                rebuilt.append((b"iref", new_iref))
        elif kind == b"iref":
            rebuilt.append((kind, new_iref))
        else:
            rebuilt.append((kind, body[kind]))
    sized = b"".join(_box(kind, payload if kind != b"iloc" else iloc(0, 0)) for kind, payload in rebuilt)
    growth = (12 + len(sized)) - meta_size
    end = len(data) + growth  # where the appended mdat starts
    children_bytes = b"".join(
        _box(kind, payload if kind != b"iloc" else iloc(growth, end + 8)) for kind, payload in rebuilt
    )
    meta = _box(b"meta", data[meta_at + 8 : meta_at + 12] + children_bytes)
    payload = struct.pack(">I", 6) + b"Exif\x00\x00" + exif  # the TIFF header 6 bytes in, as cameras write it
    return data[:meta_at] + meta + data[meta_at + meta_size :] + _box(b"mdat", payload)


def _shifted_iloc(iloc: bytes, shift: int, new_id: int, offset: int, length: int) -> bytes:
    """``iloc``'s body with every file offset moved by ``shift`` and an item ``new_id`` added, of
    one extent at ``offset`` of ``length`` bytes."""
    version = iloc[0]
    if version > 1:
        raise ValueError("32-bit item ids")
    sizes = iloc[4] << 8 | iloc[5]
    offset_size, length_size, base_size, index_size = (
        sizes >> 12,
        (sizes >> 8) & 15,
        (sizes >> 4) & 15,
        sizes & 15,
    )
    if offset_size not in (4, 8) or length_size not in (4, 8) or base_size not in (0, 4, 8):
        raise ValueError("an iloc layout not handled")
    index_size = index_size if version == 1 else 0
    count = struct.unpack(">H", iloc[6:8])[0]
    out, at = bytearray(iloc[:6] + struct.pack(">H", count + 1)), 8

    def field(size: int, moved: bool) -> None:
        nonlocal at
        value = int.from_bytes(iloc[at : at + size], "big") if size else 0
        out.extend((value + shift if moved else value).to_bytes(size, "big") if size else b"")
        at += size

    for _ in range(count):
        out.extend(iloc[at : at + 2])  # item_ID
        at += 2
        method = 0
        if version == 1:
            method = struct.unpack(">H", iloc[at : at + 2])[0] & 15
            out.extend(iloc[at : at + 2])
            at += 2
        out.extend(iloc[at : at + 2])  # data_reference_index
        at += 2
        in_file = method == 0
        field(base_size, in_file and base_size > 0)
        extents = struct.unpack(">H", iloc[at : at + 2])[0]
        out.extend(iloc[at : at + 2])
        at += 2
        for _ in range(extents):
            field(index_size, False)
            field(offset_size, in_file and base_size == 0)
            field(length_size, False)
    out.extend(struct.pack(">H", new_id))
    if version == 1:
        out.extend(b"\x00\x00")  # construction method 0: in the file
    out.extend(b"\x00\x00" + bytes(base_size) + struct.pack(">H", 1) + bytes(index_size))
    out.extend(offset.to_bytes(offset_size, "big") + length.to_bytes(length_size, "big"))
    return bytes(out)
