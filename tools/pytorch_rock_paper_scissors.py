#!/usr/bin/python3
"""The rock-paper-scissors workflow in PyTorch, for a side-by-side comparison with
examples/rock_paper_scissors (same weights, same preprocessing, same settings).

The backbone is MobileNetV2 from the same TF-slim .npy weights with TensorFlow's
SAME padding (tools/mobilenet_v2_reference.py's layers, in float32, inference mode,
batch norm folded into the convolutions as any fast inference path does). Images:
decoded with PIL, /255, bilinear resize to 224 (no antialias, as tf.image.resize),
the backbone applied once per image (cached features), then Dropout(0.5) +
Linear(1280, 3) trained with Adam(1e-3), cross-entropy on logits (the correct form of
the reference's loss), batch 64, 5 epochs. Re-split: concatenate train and test,
shuffle once with the seed, 600 validation / 400 test / rest train; plus the honest
figure (original train -> original test).

Run it as peers.sh runs PyTorch (OpenBLAS, glibc malloc kept from returning memory):
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \\
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \\
    TYPENET_DATA=../shared /usr/bin/python3 tools/pytorch_rock_paper_scissors.py [--seed S] [--threads 2]
Prints the phase times and one RESULT {json} line.
"""
import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = pathlib.Path(os.environ.get("TYPENET_DATA", ROOT.parent / "shared"))
WEIGHTS = DATA / "weights" / "mobilenet_v2_1.0_224"
CLASSES = ["rock", "paper", "scissors"]
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def w(name):
    return torch.from_numpy(np.load(WEIGHTS / (name + ".npy")).astype(np.float32))


def folded(prefix, depthwise):
    kern = w(prefix + ("_depthwise_depthwise_weights" if depthwise else "_weights"))
    bn = prefix + ("_depthwise_BatchNorm" if depthwise else "_BatchNorm")
    g, b, m, v = (w(bn + s) for s in ("_gamma", "_beta", "_moving_mean", "_moving_variance"))
    scale = g / torch.sqrt(v + 1e-3)
    weight = (kern.permute(2, 3, 0, 1) if depthwise else kern.permute(3, 2, 0, 1)).contiguous()
    weight = weight * scale[:, None, None, None]
    return weight, b - m * scale


class Backbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.units = []

        def unit(prefix, stride=1, depthwise=False, relu6=True):
            wt, bias = folded(prefix, depthwise)
            self.units.append((wt, bias, stride, depthwise, relu6))
            return len(self.units) - 1

        self.stem = unit("Conv", 2)
        self.blocks = []
        block = 0
        for t, c, n, s in BLOCKS:
            for i in range(n):
                name = "expanded_conv" if block == 0 else "expanded_conv_%d" % block
                e = unit(name + "_expand") if t != 1 else None
                d = unit(name, s if i == 0 else 1, depthwise=True)
                p = unit(name + "_project", relu6=False)
                self.blocks.append((e, d, p, (s == 1 or i > 0)))
                block += 1
        self.head = unit("Conv_1")

    def run(self, k, x):
        wt, bias, stride, depthwise, relu6 = self.units[k]
        kk = wt.shape[-1]
        h, wd = x.shape[2], x.shape[3]
        oh, ow = -(-h // stride), -(-wd // stride)
        ph, pw = max((oh - 1) * stride + kk - h, 0), max((ow - 1) * stride + kk - wd, 0)
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        y = F.conv2d(x, wt, bias, stride=stride, groups=x.shape[1] if depthwise else 1)
        return torch.clamp(y, 0, 6) if relu6 else y

    def forward(self, x):
        x = self.run(self.stem, x * 2 - 1)
        for e, d, p, maybe_residual in self.blocks:
            h = x if e is None else self.run(e, x)
            h = self.run(p, self.run(d, h))
            x = h + x if maybe_residual and h.shape == x.shape else h
        return self.run(self.head, x).mean(dim=(2, 3))


def files(split):
    out = []
    for label, cls in enumerate(CLASSES):
        for f in sorted((DATA / "data" / "rock_paper_scissors" / split / cls).iterdir()):
            out.append((f, label))
    return out


def load_image(path):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    t = torch.from_numpy(img.transpose(2, 0, 1)[None].copy())
    return F.interpolate(t, size=(224, 224), mode="bilinear", align_corners=False)[0]


def features(backbone, items, batch=64):
    out = []
    with torch.no_grad():
        for i in range(0, len(items), batch):
            x = torch.stack([load_image(p) for p, _ in items[i:i + batch]])
            out.append(backbone(x))
    return torch.cat(out)


def train_head(xtr, ytr, seed, epochs=5, batch=64):
    torch.manual_seed(seed)
    head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(1280, 3))
    opt = torch.optim.Adam(head.parameters(), lr=1e-3, eps=1e-7)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        head.train()
        order = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(head(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head


def evaluate(head, x, y):
    head.eval()
    with torch.no_grad():
        logits = head(x)
        loss = F.cross_entropy(logits, y).item()
        pred = logits.argmax(1)
    cm = np.zeros((3, 3), dtype=int)
    for a, p in zip(y.tolist(), pred.tolist()):
        cm[a, p] += 1
    return loss, float((pred == y).float().mean()), cm.tolist()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t = {}
    t0 = time.time()
    train, test = files("train"), files("test")
    backbone = Backbone().eval()
    t["load"] = time.time() - t0
    s = time.time()
    all_items = train + test
    feats = features(backbone, all_items)
    labels = torch.tensor([l for _, l in all_items])
    t["features"] = time.time() - s
    s = time.time()
    perm = np.random.RandomState(args.seed).permutation(len(all_items))
    val_i, test_i, train_i = perm[:600], perm[600:1000], perm[1000:]
    head = train_head(feats[train_i], labels[train_i], args.seed)
    loss, acc, cm = evaluate(head, feats[test_i], labels[test_i])
    t["train_and_evaluate"] = time.time() - s
    s = time.time()
    n_train = len(train)
    head2 = train_head(feats[:n_train], labels[:n_train], args.seed)
    hloss, hacc, hcm = evaluate(head2, feats[n_train:], labels[n_train:])
    t["honest"] = time.time() - s
    t["total"] = time.time() - t0
    print(f"re-split test: loss {loss:.4f} accuracy {acc:.4f} confusion {cm}")
    print(f"original splits: loss {hloss:.4f} accuracy {hacc:.4f} confusion {hcm}")
    print("seconds:", {k: round(v, 2) for k, v in t.items()})
    print("RESULT " + json.dumps({"tool": "pytorch", "seed": args.seed, "test_loss": loss, "test_accuracy": acc,
                                  "confusion_matrix": cm, "original_splits": {"test_loss": hloss, "test_accuracy": hacc,
                                                                              "confusion_matrix": hcm},
                                  "seconds": t}))


if __name__ == "__main__":
    sys.exit(main())
