"""Test files for Do Not Contact imports, made in memory: zips (also the unsafe kinds), xlsx
workbooks (also with XML entity tricks) and an image. Nothing binary is checked in."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence

LAUGHS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>
</sheetData></worksheet>"""

EXTERNAL = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
<row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row>
</sheetData></worksheet>"""


def zip_bytes(entries: dict[str, bytes | str], *, encrypted: Iterable[str] = ()) -> bytes:
    """A zip of ``entries`` (name → content, written as given, even "../x"); names in
    ``encrypted`` get the "encrypted" flag bit, which is what a reader must refuse on."""
    locked = set(encrypted)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            data = content.encode() if isinstance(content, str) else content
            zf.writestr(info, data)
            if name in locked:
                info.flag_bits |= 0x1
    raw = buffer.getvalue()
    for name in locked:
        raw = _set_flag(raw, name.encode())
    return raw


def _set_flag(raw: bytes, name: bytes) -> bytes:
    """Set bit 0 of the general purpose flags in the local header and the central directory
    record of ``name`` (zipfile writes them before we can)."""
    out = bytearray(raw)
    for signature, flag_at, name_len_at, name_at in (
        (b"PK\x03\x04", 6, 26, 30),
        (b"PK\x01\x02", 8, 28, 46),
    ):
        start = 0
        while (at := out.find(signature, start)) >= 0:
            (length,) = struct.unpack_from("<H", out, at + name_len_at)
            if bytes(out[at + name_at : at + name_at + length]) == name:
                (flags,) = struct.unpack_from("<H", out, at + flag_at)
                struct.pack_into("<H", out, at + flag_at, flags | 1)
            start = at + 4
    return bytes(out)


def xlsx_bytes(rows: Sequence[Sequence[object]], *, second_sheet: Sequence[object] = ()) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    if second_sheet:
        workbook.create_sheet("Other").append(list(second_sheet))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsx_with_sheet_xml(sheet_xml: str) -> bytes:
    """A real workbook whose first sheet's XML is replaced by ``sheet_xml``."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["placeholder"]])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = sheet_xml.encode()
            out.writestr(info.filename, data)
    return buffer.getvalue()


def bomb_zip(expanded: int, name: str = "contacts.csv") -> bytes:
    """A small zip whose one file expands to ``expanded`` bytes of valid-looking lines."""
    line = b"someone@example.com\n"
    return zip_bytes({name: line * (expanded // len(line) + 1)})


def lying_zip(expanded: int) -> bytes:
    """A zip whose headers claim its file is 20 bytes while it expands to ``expanded``."""
    raw = bytearray(bomb_zip(expanded))
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        struct.pack_into("<I", raw, at + size_at, 20)
    return bytes(raw)


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
