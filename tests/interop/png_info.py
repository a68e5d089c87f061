"""Decodes a PNG from stdin with Python's own zlib (not wxgate's code) and prints
{"width", "height"} as JSON, failing on a bad signature, a bad chunk CRC, or image data
that does not inflate to the size the header promises."""
import json
import struct
import sys
import zlib

data = sys.stdin.buffer.read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("not a PNG signature")
pos, header, idat = 8, None, b""
while pos < len(data):
    (length,) = struct.unpack(">I", data[pos:pos + 4])
    kind = data[pos + 4:pos + 8]
    body = data[pos + 8:pos + 8 + length]
    (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
    if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
        sys.exit(f"bad CRC in {kind!r}")
    if kind == b"IHDR":
        header = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    elif kind == b"IEND":
        break
    pos += 12 + length
if header is None:
    sys.exit("no IHDR")
width, height, depth, colour = header[:4]
channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
expected = height * (1 + (width * channels * depth + 7) // 8)
pixels = zlib.decompress(idat)
if len(pixels) != expected:
    sys.exit(f"image data of {len(pixels)} bytes, the header promises {expected}")
print(json.dumps({"width": width, "height": height}))
