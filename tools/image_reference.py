#!/usr/bin/env python3
"""Independent reference values for tests/data/test_image_data.cpp.

Decodes a few of the shared images with other decoders than typenet's (libpng and
libjpeg through torchvision.io, and a NumPy reader for uncompressed BMP) and prints,
per image, its height, width and the sum of each channel. Rerun with

    TYPENET_DATA=../shared /usr/bin/python3 tools/image_reference.py

and paste the output into the test when the selection of files changes.
"""
import os
import struct

import numpy as np
import torchvision.io as tio

ROOT = os.environ.get("TYPENET_DATA", "../shared")
FILES = [
    "data/rock_paper_scissors/test/rock/testrock01-00.png",
    "data/rock_paper_scissors/test/scissors/testscissors01-10.png",
    "data/rock_paper_scissors/train/rock/rock01-000.jpg",
    "data/rock_paper_scissors/train/scissors/testscissors01-000.jpg",
    "images/chelsea.png",
    "images/grace_hopper.bmp",
]


def read_bmp24(path):
    """Uncompressed 24-bit BMP (bottom-up rows, BGR, rows padded to 4 bytes)."""
    b = open(path, "rb").read()
    offset, = struct.unpack_from("<I", b, 10)
    w, h = struct.unpack_from("<ii", b, 18)
    bpp, = struct.unpack_from("<H", b, 28)
    assert bpp == 24
    row = (w * 3 + 3) // 4 * 4
    img = np.zeros((abs(h), w, 3), dtype=np.int64)
    for y in range(abs(h)):
        src = b[offset + y * row: offset + y * row + w * 3]
        px = np.frombuffer(src, dtype=np.uint8).reshape(w, 3)[:, ::-1]
        img[abs(h) - 1 - y if h > 0 else y] = px
    return img


for f in FILES:
    path = os.path.join(ROOT, f)
    if f.endswith(".bmp"):
        img = read_bmp24(path)
    else:
        img = tio.read_image(path, tio.ImageReadMode.RGB).permute(1, 2, 0).numpy().astype(np.int64)
    s = img.reshape(-1, 3).sum(axis=0)
    print(f'    {{"{f}", {img.shape[0]}, {img.shape[1]}, {{{s[0]}, {s[1]}, {s[2]}}}}},')
