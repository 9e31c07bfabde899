#!/usr/bin/python3
"""Reference values for tests/optimizers/test_optimizers.cpp.

Runs SGD (plain, momentum, Nesterov), Adam and AdamW for 5 steps on the quadratic
    loss(w) = sum(c * w**2 / 2 + d * w),  gradient g = c * w + d,
with Keras's formulas written here in NumPy (float64), and checks them against
PyTorch's optimizers where the two libraries compute the same thing (SGD with and
without momentum / Nesterov, AdamW's decoupled decay; Adam up to the placement of
epsilon). Prints the values as C++ initialisers for the test.

Rerun:  /usr/bin/python3 tools/optimizer_reference.py   (Debian's Python, which has the packages)
(Debian: apt-get install python3-numpy python3-torch)
"""
import numpy as np

W0 = np.array([0.5, -1.0, 2.0, 0.0])
C = np.array([1.0, 2.0, 0.5, 3.0])
D = np.array([0.1, -0.2, 0.3, 1.0])
STEPS = 5


def grad(w):
    return C * w + D


def sgd(lr, momentum=0.0, nesterov=False):
    w, v = W0.copy(), np.zeros_like(W0)
    for _ in range(STEPS):
        g = grad(w)
        if momentum == 0.0:
            w = w - lr * g
        else:
            v = momentum * v - lr * g
            w = w + (momentum * v - lr * g if nesterov else v)
    return w


def adam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t in range(1, STEPS + 1):
        g = grad(w)
        if wd:
            w = w - lr * wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    return w


def torch_run(make):
    import torch
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    opt = make([w])
    c, d = torch.tensor(C), torch.tensor(D)
    for _ in range(STEPS):
        opt.zero_grad()
        loss = (c * w * w / 2 + d * w).sum()
        loss.backward()
        opt.step()
    return w.detach().numpy()


cases = {
    "sgd_plain": (sgd(0.1), lambda p: __import__("torch").optim.SGD(p, lr=0.1)),
    "sgd_momentum": (sgd(0.1, 0.9), lambda p: __import__("torch").optim.SGD(p, lr=0.1, momentum=0.9)),
    "sgd_nesterov": (sgd(0.1, 0.9, True), lambda p: __import__("torch").optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adam": (adam(0.1), lambda p: __import__("torch").optim.Adam(p, lr=0.1, eps=1e-7)),
    "adamw": (adam(0.1, wd=0.05), lambda p: __import__("torch").optim.AdamW(p, lr=0.1, eps=1e-7, weight_decay=0.05)),
}

try:
    import torch  # noqa: F401
    have_torch = True
except ImportError:
    have_torch = False

for name, (ours, make) in cases.items():
    if have_torch:
        theirs = torch_run(make)
        diff = np.max(np.abs(ours - theirs))
        # Adam: PyTorch adds epsilon after bias correction, Keras before (epsilon-hat);
        # with epsilon = 1e-7 that moves the weights by ~1e-6 at most in these runs.
        assert diff < (1e-5 if name.startswith("adam") else 1e-9), (name, ours, theirs)
        note = f"PyTorch agrees within {diff:.1e}"
    else:
        note = "PyTorch not installed: not cross-checked"
    print(f"// {name}: {note}")
    print(f"const double {name}[] = {{{', '.join(f'{x:.9g}' for x in ours)}}};")
