"""Valid PNG files built by hand, so tests need no imaging library."""

import os
import struct
import zlib


def png_bytes(width: int = 2, height: int = 2, *, noise: bool = False) -> bytes:
    """An RGB PNG with a colour gradient. ``noise=True`` fills it with random pixels, which do not compress: a 1000x900
    image is then about 2.7 MB, for exercising multipart uploads with a file browsers still render."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    def gradient(y: int) -> bytes:
        return b"".join(
            bytes((255 * x // width, 90 + 140 * y // height, 255 - 200 * x // width)) for x in range(width)
        )

    raw = b"".join(b"\x00" + (os.urandom(3 * width) if noise else gradient(y)) for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )
