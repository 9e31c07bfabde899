#!/usr/bin/python3
"""Write the small .npy/.npz fixtures of tests/io and the values the tests expect from them.

The files are written by NumPy itself (np.save, np.lib.format.write_array, np.savez,
np.savez_compressed), and the expected values are computed here by NumPy, so the C++ reader
(include/typenet/io/npy.hpp, npz.hpp) is checked against an independent implementation.

Rerun (from the repository root, with Debian's python3-numpy):
    /usr/bin/python3 tools/make_io_fixtures.py
It rewrites tests/io/fixtures/*.npy, *.npz and tests/io/fixtures/expected.hpp. The values are
deterministic (fixed seeds); only the timestamps inside the .npz zip headers change on a rerun.
"""
import io
import os
import struct
import zipfile
import zlib

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "io", "fixtures")


def arrays():
    rng = np.random.default_rng(20240611)
    return {
        # name: (array, npy format version)
        "f4_v1": (np.arange(24, dtype=np.float32).reshape(2, 3, 4) * np.float32(0.5) - np.float32(3), (1, 0)),
        "f8_v1": (rng.normal(size=(3, 5)), (1, 0)),
        "f4_fortran": (np.asfortranarray(rng.normal(size=(3, 4, 2)).astype(np.float32)), (1, 0)),
        "f8_fortran": (np.asfortranarray(rng.normal(size=(4, 3))), (1, 0)),
        "f4_v2": (np.array([[1.5, -2.25], [1e-8, 3.4e38], [-0.0, 7.0]], dtype=np.float32), (2, 0)),
        "f4_v3": (np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32), (3, 0)),
        "u1": (np.array([[0, 1, 2, 127], [128, 200, 254, 255]], dtype=np.uint8), (1, 0)),
        "i4": (np.array([-2147483648, -1, 0, 1, 12345, 2147483647], dtype="<i4"), (1, 0)),
        "i8": (np.array([[-(2 ** 40), 2 ** 53 + 1], [-7, 16777217]], dtype="<i8"), (1, 0)),
        "i4_fortran": (np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3) * 10 - 25), (1, 0)),
        "scalar": (np.array(2.5, dtype=np.float32), (1, 0)),
        "empty": (np.zeros((0, 3), dtype=np.float32), (1, 0)),
        "vector": (np.linspace(-1, 1, 5, dtype=np.float32), (1, 0)),
    }


def c_float(x):
    """A C++ float literal for the float32 value x (exact: repr of the double equal to it)."""
    v = float(np.float32(x))
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError("fixtures hold finite values only")
    s = repr(v)
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def expected_entry(key, arr, file_name):
    vals = np.ascontiguousarray(arr).astype(np.float32).ravel(order="C")
    return '    {"%s", "%s", {%s}, {%s}}' % (
        file_name, arr.dtype.str, ", ".join(str(d) for d in arr.shape), ", ".join(c_float(v) for v in vals))


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def write_zip64(path, name, data):
    """A one-entry stored zip whose sizes and offsets all live in zip64 records."""
    name = name.encode()
    crc = zlib.crc32(data)
    ff = 0xFFFFFFFF
    local = struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0x21, crc, ff, ff, len(name), 20)
    local += name + struct.pack("<HHQQ", 1, 16, len(data), len(data)) + data
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0x21, crc, ff, ff, len(name), 28,
                          0, 0, 0, 0, ff)
    central += name + struct.pack("<HHQQQ", 1, 24, len(data), len(data), 0)
    cd_offset = len(local)
    z64_offset = cd_offset + len(central)
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, 1, 1, len(central), cd_offset)
    locator = struct.pack("<IIQI", 0x07064b50, 0, z64_offset, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, ff, ff, 0)
    with open(path, "wb") as f:
        f.write(local + central + z64 + locator + eocd)


def main():
    os.makedirs(OUT, exist_ok=True)
    good = []
    for key, (arr, version) in arrays().items():
        name = key + ".npy"
        with open(os.path.join(OUT, name), "wb") as f:
            np.lib.format.write_array(f, arr, version=version)
        good.append(expected_entry(key, arr, name))

    # Files the reader must refuse.
    np.save(os.path.join(OUT, "bad_pickle.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(os.path.join(OUT, "bad_bigendian.npy"), np.arange(4, dtype=">f4"))
    np.save(os.path.join(OUT, "bad_float16.npy"), np.arange(4, dtype="<f2"))
    np.save(os.path.join(OUT, "bad_structured.npy"), np.zeros(3, dtype=[("x", "<f4"), ("y", "<i4")]))

    # Archives: the same three arrays stored and deflated.
    rng = np.random.default_rng(7)
    members = {
        "weights": rng.normal(size=(4, 3, 2)).astype(np.float32),
        "bias": np.array([0.5, -1.0, 2.0], dtype=np.float64),
        "counts": np.arange(100, dtype="<i4").reshape(10, 10),  # compresses well
    }
    np.savez(os.path.join(OUT, "stored.npz"), **members)
    np.savez_compressed(os.path.join(OUT, "compressed.npz"), **members)
    for name, method in (("stored.npz", zipfile.ZIP_STORED), ("compressed.npz", zipfile.ZIP_DEFLATED)):
        with zipfile.ZipFile(os.path.join(OUT, name)) as z:
            assert all(i.compress_type == method for i in z.infolist()), name
    npz = [expected_entry(k, a, k) for k, a in members.items()]

    # An archive with zip64 records everywhere, as writers emit them for files over 4 GiB:
    # built by hand, then checked with Python's own zipfile reader.
    zip64_member = np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(4)
    write_zip64(os.path.join(OUT, "zip64.npz"), "x.npy", npy_bytes(zip64_member))
    with zipfile.ZipFile(os.path.join(OUT, "zip64.npz")) as z:
        assert z.testzip() is None and z.read("x.npy") == npy_bytes(zip64_member)
    npz64 = [expected_entry("x", zip64_member, "x")]

    # Archives the reader must refuse: a member that is not .npy, a pickled member.
    with zipfile.ZipFile(os.path.join(OUT, "bad_not_npy.npz"), "w") as z:
        z.writestr("a.npy", npy_bytes(np.zeros(2, dtype=np.float32)))
        z.writestr("readme.txt", "hello")
    with zipfile.ZipFile(os.path.join(OUT, "bad_pickle.npz"), "w") as z:
        z.writestr("a.npy", npy_bytes(np.zeros(2, dtype=np.float32)))
        buf = io.BytesIO()
        np.save(buf, np.array([None], dtype=object), allow_pickle=True)
        z.writestr("obj.npy", buf.getvalue())

    with open(os.path.join(OUT, "expected.hpp"), "w") as f:
        f.write("// Generated by tools/make_io_fixtures.py from NumPy %s; do not edit, rerun the script.\n"
                % np.__version__)
        f.write("#pragma once\n\n#include <cstddef>\n#include <vector>\n\nnamespace fixtures {\n\n")
        f.write("/// An array NumPy wrote, and its values in C order as float32.\n")
        f.write("struct Expected {\n    const char* name;\n    const char* dtype;\n"
                "    std::vector<std::size_t> shape;\n    std::vector<float> values;\n};\n\n")
        f.write("/// The .npy files of tests/io/fixtures the reader must accept.\n")
        f.write("inline const std::vector<Expected> npy_files = {\n%s,\n};\n\n" % ",\n".join(good))
        f.write("/// The members of stored.npz and compressed.npz (same arrays in both).\n")
        f.write("inline const std::vector<Expected> npz_members = {\n%s,\n};\n\n" % ",\n".join(npz))
        f.write("/// The member of zip64.npz.\n")
        f.write("inline const std::vector<Expected> zip64_members = {\n%s,\n};\n\n" % ",\n".join(npz64))
        f.write("}  // namespace fixtures\n")


if __name__ == "__main__":
    main()
