#!/usr/bin/python3
"""Reference MobileNetV2 outputs for the test photos, computed without typenet.

Reads the TF-slim weights ($TYPENET_DATA/weights/mobilenet_v2_1.0_224/*.npy) and the
classifier kernel dequantized from the PTQ .tflite (with tools/tflite_dump.py, an
independent flatbuffer walker), builds MobileNetV2 in PyTorch (float64) with
TensorFlow's SAME padding written out explicitly (stride 2 on even inputs pads 0
top/left and 1 bottom/right), and runs it on the three photos of $TYPENET_DATA/images:
PIL decodes them, the centre square is cropped and shrunk to 224x224 the way
skimage.transform.resize(..., anti_aliasing=True) does (Gaussian blur with sigma =
(scale - 1) / 2, mirrored edges, then bilinear interpolation at pixel centres; this is
how weights/README.md's table was made, and it reproduces that table), and the result
is rounded to uint8 so the C++ test can read back exactly the same input.

Writes tests/models/fixtures/<photo>_input.npy (uint8 224x224x3),
<photo>_features.npy (1280 float32) and <photo>_logits.npy (1001 float32), and
prints the top-5 classes.

Rerun (Debian: python3-numpy python3-torch python3-pil):
    TYPENET_DATA=../shared /usr/bin/python3 tools/mobilenet_v2_reference.py
"""
import os
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = pathlib.Path(os.environ.get("TYPENET_DATA", ROOT.parent / "shared"))
WEIGHTS = DATA / "weights" / "mobilenet_v2_1.0_224"
OUT = ROOT / "tests" / "models" / "fixtures"
PHOTOS = ["chelsea.png", "coffee.png", "grace_hopper.bmp"]
EPS = 1e-3
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

sys.path.insert(0, str(ROOT / "tools"))
import tflite_dump  # noqa: E402


def w(name):
    return torch.from_numpy(np.load(WEIGHTS / (name + ".npy")).astype(np.float64))


def same_pad(x, k, s):
    """TensorFlow SAME padding of an NCHW tensor for a k x k window with stride s."""
    h, wd = x.shape[2], x.shape[3]
    oh, ow = -(-h // s), -(-wd // s)
    ph = max((oh - 1) * s + k - h, 0)
    pw = max((ow - 1) * s + k - wd, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def conv_bn(x, prefix, stride=1, depthwise=False, relu6=True):
    kern = w(prefix + ("_depthwise_depthwise_weights" if depthwise else "_weights"))  # HWIO / [k,k,C,1]
    k = kern.shape[0]
    if depthwise:
        weight = kern.permute(2, 3, 0, 1)  # [C, 1, k, k]
        y = F.conv2d(same_pad(x, k, stride), weight, stride=stride, groups=x.shape[1])
        bn = prefix + "_depthwise_BatchNorm"
    else:
        weight = kern.permute(3, 2, 0, 1)  # [out, in, k, k]
        y = F.conv2d(same_pad(x, k, stride), weight, stride=stride)
        bn = prefix + "_BatchNorm"
    g, b, m, v = (w(bn + s) for s in ("_gamma", "_beta", "_moving_mean", "_moving_variance"))
    y = (y - m[None, :, None, None]) / torch.sqrt(v[None, :, None, None] + EPS) * g[None, :, None, None] \
        + b[None, :, None, None]
    return torch.clamp(y, 0, 6) if relu6 else y


def mobilenet_v2(x):
    """x: NCHW float64 in [0, 1]. Returns (features 1280, logits 1001)."""
    x = x * 2 - 1
    x = conv_bn(x, "Conv", stride=2)
    block = 0
    for t, c, n, s in BLOCKS:
        for i in range(n):
            name = "expanded_conv" if block == 0 else "expanded_conv_%d" % block
            inp = x
            h = x if t == 1 else conv_bn(x, name + "_expand")
            h = conv_bn(h, name, stride=s if i == 0 else 1, depthwise=True)
            h = conv_bn(h, name + "_project", relu6=False)
            x = h + inp if (s == 1 or i > 0) and inp.shape[1] == c else h
            block += 1
    x = conv_bn(x, "Conv_1")
    features = x.mean(dim=(2, 3))[0]
    m = tflite_dump.load(str(DATA / "weights" / "tflite" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"))
    _, op = tflite_dump.classifier_op(m)
    t = m["tensors"][op["inputs"][1]]
    kern = torch.from_numpy(tflite_dump.dequantized(m, t).reshape(1001, 1280))
    bias = w("Logits_Conv2d_1c_1x1_biases")
    logits = kern @ features + bias
    return features, logits


def gaussian_1d(img, sigma, axis):
    """scipy.ndimage.gaussian_filter1d(mode='mirror', truncate=4.0), in NumPy."""
    if sigma <= 0:
        return img
    r = int(4.0 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    n = img.shape[axis]
    period = 2 * (n - 1)
    idx = np.mod(np.arange(-r, n + r), period)
    idx = np.where(idx >= n, period - idx, idx)
    padded = np.take(img, idx, axis=axis)
    out = np.zeros_like(img)
    for j, kv in enumerate(k):
        sl = [slice(None)] * img.ndim
        sl[axis] = slice(j, j + n)
        out += kv * padded[tuple(sl)]
    return out


def bilinear(img, oh, ow):
    """Bilinear interpolation at half-pixel centres, clamped at the edges."""
    ih, iw = img.shape[:2]
    ys = np.clip((np.arange(oh) + 0.5) * ih / oh - 0.5, 0, ih - 1)
    xs = np.clip((np.arange(ow) + 0.5) * iw / ow - 0.5, 0, iw - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, ih - 1), np.minimum(x0 + 1, iw - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    a, b, c, d = img[y0][:, x0], img[y0][:, x1], img[y1][:, x0], img[y1][:, x1]
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)


def preprocess(path):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    h, wd = img.shape[:2]
    s = min(h, wd)
    top, left = (h - s) // 2, (wd - s) // 2
    img = img[top:top + s, left:left + s]
    img = gaussian_1d(img, max(0.0, (s / 224 - 1) / 2), 0)
    img = gaussian_1d(img, max(0.0, (s / 224 - 1) / 2), 1)
    return np.clip(np.round(bilinear(img, 224, 224)), 0, 255).astype(np.uint8)


def main():
    if not WEIGHTS.is_dir():
        sys.exit(f"no weights at {WEIGHTS}: set TYPENET_DATA")
    labels = (DATA / "weights" / "imagenet_labels.txt").read_text().splitlines()
    OUT.mkdir(parents=True, exist_ok=True)
    for photo in PHOTOS:
        u8 = preprocess(DATA / "images" / photo)
        x = torch.from_numpy(u8.astype(np.float64).transpose(2, 0, 1)[None] / 255.0)
        with torch.no_grad():
            features, logits = mobilenet_v2(x)
        stem = photo.rsplit(".", 1)[0]
        np.save(OUT / f"{stem}_input.npy", u8)
        np.save(OUT / f"{stem}_features.npy", features.numpy().astype(np.float32))
        np.save(OUT / f"{stem}_logits.npy", logits.numpy().astype(np.float32))
        p = torch.softmax(logits, 0).numpy()
        top = np.argsort(-p)[:5]
        print(photo + ": " + ", ".join(f"{k} {labels[k]} {p[k]:.3f}" for k in top))


if __name__ == "__main__":
    main()
