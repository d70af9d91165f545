"""Credits kept (``PROXY_KEEP_COPYRIGHT=1``): the original's copyright and artist, written into
JPEG and WebP answers; everything else is stripped, as it is by default.

Read from the original's EXIF (Copyright 0x8298, Artist 0x013B), by Pillow, which reads them from
a header without decoding pixels, and from its XMP packet (``dc:rights``, ``dc:creator``), by
pattern, never by an XML parser (no entity, no DTD, no fetch). Written as what the answer's format
carries, as EXIF and as XMP (readers look in one or the other): a JPEG gets APP1 segments after
its JFIF one, a WebP becomes an extended one (VP8X) with EXIF and XMP chunks. Orientation is
never written: the pixels are upright already. AVIF answers are left as they are (its EXIF is an
item of the meta box, which our encoders do not write): the docs say so.
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
