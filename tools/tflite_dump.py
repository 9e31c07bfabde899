#!/usr/bin/python3
"""Independent reading of a .tflite file: prints the facts tests/io/test_tflite_data.cpp asserts.

The C++ reader (include/typenet/io/tflite.hpp) is checked against this script, so the script
shares no code with it: it walks the flatbuffer with `struct` alone, from TensorFlow's public
schema (tensorflow/lite/schema/schema.fbs). Needs Debian's python3-numpy only for the bias check.

Rerun (from the repository root):
    /usr/bin/python3 tools/tflite_dump.py ../shared/weights/tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite
    /usr/bin/python3 tools/tflite_dump.py ../shared/weights/tflite/mobilenet_v2_1.0_224_quant.tflite
Add `--facts` for just the facts the test asserts, `--tensors` to list every tensor, `--bias NPY`
to compare the dequantized classifier bias with a float .npy bias.
"""
import struct
import sys

OPS = {0: "ADD", 1: "AVERAGE_POOL_2D", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
       9: "FULLY_CONNECTED", 22: "RESHAPE", 25: "SOFTMAX", 40: "MEAN", 114: "QUANTIZE"}
TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8"}
ACT = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PAD = {0: "SAME", 1: "VALID"}


class Buf:
    def __init__(self, data):
        self.d = data

    def u8(self, p): return self.d[p]
    def i8(self, p): return struct.unpack_from("<b", self.d, p)[0]
    def u16(self, p): return struct.unpack_from("<H", self.d, p)[0]
    def i32(self, p): return struct.unpack_from("<i", self.d, p)[0]
    def u32(self, p): return struct.unpack_from("<I", self.d, p)[0]

    # A table at position t: its vtable is at t - soffset(t).
    def field_pos(self, t, i):
        vt = t - self.i32(t)
        vsize = self.u16(vt)
        slot = 4 + 2 * i
        if slot >= vsize:
            return None
        off = self.u16(vt + slot)
        return t + off if off else None

    def scalar(self, t, i, fmt, default=0):
        p = self.field_pos(t, i)
        return default if p is None else struct.unpack_from("<" + fmt, self.d, p)[0]

    def ref(self, t, i):
        p = self.field_pos(t, i)
        return None if p is None else p + self.u32(p)

    def vec(self, t, i, fmt):
        v = self.ref(t, i)
        if v is None:
            return []
        n = self.u32(v)
        size = struct.calcsize("<" + fmt)
        return [struct.unpack_from("<" + fmt, self.d, v + 4 + k * size)[0] for k in range(n)]

    def tables(self, t, i):
        v = self.ref(t, i)
        if v is None:
            return []
        n = self.u32(v)
        return [v + 4 + 4 * k + self.u32(v + 4 + 4 * k) for k in range(n)]

    def string(self, t, i):
        v = self.ref(t, i)
        if v is None:
            return ""
        return self.d[v + 4: v + 4 + self.u32(v)].decode("utf-8")

    def bytes_(self, t, i):
        v = self.ref(t, i)
        if v is None:
            return b""
        return self.d[v + 4: v + 4 + self.u32(v)]


def load(path):
    with open(path, "rb") as f:
        b = Buf(f.read())
    root = b.u32(0)
    model = {"ident": b.d[4:8].decode("latin1"), "version": b.scalar(root, 0, "I")}
    codes = []
    for oc in b.tables(root, 1):
        dep = b.scalar(oc, 0, "b")
        new = b.scalar(oc, 3, "i")
        codes.append(max(dep, new))
    model["codes"] = codes
    buffers = [b.bytes_(bt, 0) for bt in b.tables(root, 4)]
    model["buffers"] = buffers
    sg = b.tables(root, 2)[0]
    model["num_subgraphs"] = len(b.tables(root, 2))
    tensors = []
    for t in b.tables(sg, 0):
        q = b.ref(t, 4)
        quant = None
        if q is not None:
            quant = {"scale": b.vec(q, 2, "f"), "zero_point": b.vec(q, 3, "q"),
                     "dim": b.scalar(q, 6, "i")}
        tensors.append({"name": b.string(t, 3), "shape": b.vec(t, 0, "i"),
                        "type": TYPES.get(b.scalar(t, 1, "b"), "?"), "buffer": b.scalar(t, 2, "I"),
                        "quant": quant})
    model["tensors"] = tensors
    model["inputs"] = b.vec(sg, 1, "i")
    model["outputs"] = b.vec(sg, 2, "i")
    ops = []
    for o in b.tables(sg, 3):
        code = codes[b.scalar(o, 0, "I")]
        op = {"op": OPS.get(code, str(code)), "inputs": b.vec(o, 1, "i"), "outputs": b.vec(o, 2, "i")}
        otype = b.scalar(o, 3, "B")
        opt = b.ref(o, 4)
        if opt is not None:
            if otype in (1, 2):  # Conv2DOptions, DepthwiseConv2DOptions
                op["padding"] = PAD[b.scalar(opt, 0, "b")]
                op["stride"] = (b.scalar(opt, 2, "i"), b.scalar(opt, 1, "i"))  # (h, w)
                if otype == 1:
                    op["act"] = ACT[b.scalar(opt, 3, "b")]
                else:
                    op["depth_multiplier"] = b.scalar(opt, 3, "i")
                    op["act"] = ACT[b.scalar(opt, 4, "b")]
            elif otype == 5:  # Pool2DOptions
                op["padding"] = PAD[b.scalar(opt, 0, "b")]
                op["stride"] = (b.scalar(opt, 2, "i"), b.scalar(opt, 1, "i"))
                op["filter"] = (b.scalar(opt, 4, "i"), b.scalar(opt, 3, "i"))
                op["act"] = ACT[b.scalar(opt, 5, "b")]
            elif otype in (8, 11):  # FullyConnectedOptions, AddOptions
                op["act"] = ACT[b.scalar(opt, 0, "b")]
            elif otype == 9:  # SoftmaxOptions
                op["beta"] = b.scalar(opt, 0, "f")
            elif otype == 17:  # ReshapeOptions
                op["new_shape"] = b.vec(opt, 0, "i")
            elif otype == 27:  # ReducerOptions
                op["keep_dims"] = bool(b.scalar(opt, 0, "B"))
        ops.append(op)
    model["ops"] = ops
    return model


def fmt_quant(q):
    if q is None:
        return "none"
    s = q["scale"]
    z = q["zero_point"]
    shown = lambda v: ("[%s]" % ", ".join(repr(x) for x in v)) if len(v) <= 3 else \
        "[%d values: %r, %r, ..., %r]" % (len(v), v[0], v[1], v[-1])
    return "scale=%s zero_point=%s dim=%d" % (shown(s), shown(z), q["dim"])


def classifier_op(m):
    """The operator whose weight tensor has 1001 output channels."""
    for k, op in enumerate(m["ops"]):
        if op["op"] in ("CONV_2D", "FULLY_CONNECTED") and m["tensors"][op["inputs"][1]]["shape"][0] == 1001:
            return k, op
    raise SystemExit("no classifier found")


def dequantized(m, t):
    import numpy as np
    dt = {"int8": "i1", "uint8": "u1", "int32": "<i4"}[t["type"]]
    q = np.frombuffer(m["buffers"][t["buffer"]], dtype=dt).astype(np.float64)
    scale = np.array(t["quant"]["scale"], dtype=np.float32).astype(np.float64)
    zp = np.array(t["quant"]["zero_point"], dtype=np.float64)
    if len(scale) > 1:  # per channel along quantized_dimension
        shape = t["shape"]
        d = t["quant"]["dim"]
        inner = int(np.prod(shape[d + 1:]))
        ch = (np.arange(q.size) // inner) % shape[d]
        return scale[ch] * (q - zp[ch])
    return scale[0] * (q - zp[0])


def facts(m):
    """The facts tests/io/test_tflite_data.cpp asserts, one per line."""
    import numpy as np
    ops = m["ops"]
    print("operators", len(ops), "tensors", len(m["tensors"]), "buffers", len(m["buffers"]),
          "buffer bytes", sum(len(b) for b in m["buffers"]))
    print("sequence", " ".join(op["op"] for op in ops))
    print("stride-2 ops", [k for k, op in enumerate(ops) if op.get("stride") == (2, 2)])
    print("first conv", next((k, op) for k, op in enumerate(ops) if op["op"] == "CONV_2D"))
    k, op = classifier_op(m)
    w = m["tensors"][op["inputs"][1]]
    b = m["tensors"][op["inputs"][2]]
    print("classifier op", k, "weights tensor", op["inputs"][1], w["shape"], w["type"], "bias tensor",
          op["inputs"][2], b["shape"], b["type"])
    for name, t in (("weights", w), ("bias", b)):
        q = t["quant"]
        print(" %s scales %d first %r last %r zero_point first %r last %r dim %d" % (
            name, len(q["scale"]), q["scale"][0], q["scale"][-1], q["zero_point"][0], q["zero_point"][-1], q["dim"]))
        v = dequantized(m, t)
        print(" %s dequantized: sum %r, [0] %r, [1] %r, [-1] %r" % (name, float(v.sum()), v[0], v[1], v[-1]))
    first = m["tensors"][ops[[o["op"] for o in ops].index("CONV_2D")]["inputs"][1]]
    v = dequantized(m, first)
    print("first conv weights", first["shape"], first["type"], "scales", len(first["quant"]["scale"]),
          "dequantized sum %r [0] %r [-1] %r" % (float(v.sum()), v[0], v[-1]))
    t0 = m["tensors"][m["inputs"][0]]
    print("input", t0["name"], t0["shape"], t0["type"], t0["quant"]["scale"], t0["quant"]["zero_point"])


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    m = load(args[0])
    if "--facts" in args:
        facts(m)
        return
    print("identifier", m["ident"], "version", m["version"], "subgraphs", m["num_subgraphs"])
    print("operator_codes", [OPS.get(c, c) for c in m["codes"]])
    print("buffers", len(m["buffers"]), "tensors", len(m["tensors"]), "operators", len(m["ops"]))
    print("inputs", m["inputs"], "outputs", m["outputs"])
    counts = {}
    for op in m["ops"]:
        counts[op["op"]] = counts.get(op["op"], 0) + 1
    print("op counts", counts)
    print("op sequence", " ".join(op["op"] for op in m["ops"]))
    for k, op in enumerate(m["ops"]):
        extra = {key: v for key, v in op.items() if key not in ("op", "inputs", "outputs")}
        print("op %d %s in=%s out=%s %s" % (k, op["op"], op["inputs"], op["outputs"], extra))
    interesting = set(m["inputs"] + m["outputs"])
    for k in (0, 1, len(m["ops"]) - 1):
        interesting.update(i for i in m["ops"][k]["inputs"] + m["ops"][k]["outputs"] if i >= 0)
    for op in m["ops"]:
        if op["op"] in ("FULLY_CONNECTED",) or (op["op"] == "CONV_2D" and
                                                  m["tensors"][op["inputs"][1]]["shape"][0] == 1001):
            interesting.update(i for i in op["inputs"] + op["outputs"] if i >= 0)
    listing = range(len(m["tensors"])) if "--tensors" in args else sorted(interesting)
    for i in listing:
        t = m["tensors"][i]
        print("tensor %d %r shape=%s type=%s buffer=%d (%d bytes) quant: %s" % (
            i, t["name"], t["shape"], t["type"], t["buffer"], len(m["buffers"][t["buffer"]]),
            fmt_quant(t["quant"])))
    if "--bias" in args:
        import numpy as np
        ref = np.load(args[args.index("--bias") + 1]).astype(np.float64)
        for op in m["ops"]:
            w = m["tensors"][op["inputs"][1]] if len(op["inputs"]) > 1 else None
            if w is None or w["shape"][0] != 1001 or len(op["inputs"]) < 3:
                continue
            bt = m["tensors"][op["inputs"][2]]
            q = np.frombuffer(m["buffers"][bt["buffer"]], dtype="<i4").astype(np.float64)
            scale = np.array(bt["quant"]["scale"], dtype=np.float64)
            zp = np.array(bt["quant"]["zero_point"], dtype=np.float64)
            deq = (q - zp) * scale
            err = np.abs(deq - ref)
            print("bias %r: max |dequantized - float| = %.3g, max |float| = %.3g, first %r vs %r" % (
                bt["name"], err.max(), np.abs(ref).max(), deq[:3].tolist(), ref[:3].tolist()))


if __name__ == "__main__":
    main()
