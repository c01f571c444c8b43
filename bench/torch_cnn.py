"""The CNN workloads of issue 9 for PyTorch (called by bench/torch_worker.py).

Inputs (bench/prep.lua): cnn_x.npy float32 [1024 x 3 x 32 x 32] (standard normal), cnn_y.npy
int32 [1024] in 1..10. Both workloads: cross-entropy, SGD lr 0.01, momentum 0.9, weight decay
5e-4, train mode, zero_grad(set_to_none=True), batches of 128 taken in order (no shuffle).

cnn     the issue's 3-block conv net: 3 x [Conv2d(cin, c, 3, padding 1) (bias), BatchNorm2d(c),
        ReLU, MaxPool2d(2, 2)] with c = 32, 64, 128, then Flatten and Linear(128 * 4 * 4 -> 10).
        One repetition = 8 SGD steps (the 8 batches of the 1024 inputs).
resnet  the CIFAR ResNet18 of spec/fixtures/make_cnn_fixtures.py at width 16 (3x3 stem without
        max-pool, BasicBlocks [2, 2, 2, 2] of widths 16/32/64/128, global average pooling,
        BatchNorm1d(128), Linear(128 -> 10)). One repetition = one training step on the first
        batch of 128.
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "fixtures"))


def cnn_model():
    layers, cin = [], 3
    for c in (32, 64, 128):
        layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2, 2)]
        cin = c
    layers += [nn.Flatten(), nn.Linear(128 * 4 * 4, 10)]
    return nn.Sequential(*layers)


def resnet_model():
    from make_cnn_fixtures import ResNet18  # the fixture's architecture (its import sets float64)
    torch.set_default_dtype(torch.float32)
    return ResNet18(16)


def run_cnn(workload, folder, warmup, timed, threads, report):
    x = torch.from_numpy(np.load(os.path.join(folder, "cnn_x.npy")))
    y = torch.from_numpy(np.load(os.path.join(folder, "cnn_y.npy")).astype(np.int64) - 1)
    model = cnn_model() if workload == "cnn" else resnet_model()
    model = model.float()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()
    bs, steps = 128, 8 if workload == "cnn" else 1

    def rep():
        loss_sum = 0.0
        for k in range(steps):
            xb, yb = x[k * bs:(k + 1) * bs], y[k * bs:(k + 1) * bs]
            loss = crit(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
        return loss_sum / steps

    for _ in range(warmup):
        rep()
    times, loss = [], None
    for _ in range(timed):
        t0 = time.perf_counter()
        loss = rep()
        times.append(time.perf_counter() - t0)
    report(workload, times, loss)
