"""PyTorch's side of `mosaic bench train-step`: steps/s of one nanoTabPFN training step
(forward + backward of nanoTabPFN's loss, zero_grad before each; no optimizer update) on a batch
of random tables, with the model class of tools/fixtures/nanotabpfn_fixtures.py.

Run with Debian's /usr/bin/python3 (torch 1.13). Prints one line: `pytorch steps/s X`.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from nanotabpfn_fixtures import NanoTabPFNModel  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--mlp", type=int, default=128)
    p.add_argument("--outputs", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rows", type=int, default=300)
    p.add_argument("--train", type=int, default=200)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(5)
    model = NanoTabPFNModel(a.embed, a.heads, a.mlp, a.layers, a.outputs)
    model.train()
    x = torch.randn(a.batch, a.rows, a.features)
    y_train = torch.randint(0, a.classes, (a.batch, a.train)).float()
    y_test = torch.randint(0, a.classes, (a.batch, a.rows - a.train))

    def step():
        model.zero_grad(set_to_none=True)
        logits = model(x, y_train, a.train)
        loss = F.cross_entropy(logits.reshape(-1, a.outputs), y_test.reshape(-1))
        loss.backward()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(f"pytorch steps/s {a.steps / dt:.4f} ({a.steps} steps in {dt:.2f} s, "
          f"{a.threads} threads, torch {torch.__version__})")


if __name__ == "__main__":
    main()
