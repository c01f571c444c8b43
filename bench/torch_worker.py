"""One benchmark process for PyTorch: python3 bench/torch_worker.py WORKLOAD DIR WARMUP TIMED THREADS

WORKLOAD: conic | fashion | cnn | resnet. The same models, data and loop as
bench/collapse_worker.lua, written as idiomatic PyTorch (nn.Sequential, index batching from one
randperm per epoch, no DataLoader). cnn and resnet (issue 9) are in bench/torch_cnn.py; one
repetition of cnn is 8 SGD steps, of resnet one training step.
Prints one JSON line: times, the OpenBLAS core, torch's CPU capability, threads, VmHWM.
"""
import gzip
import json
import sys
import time

import numpy as np
import torch

from blas_probe import openblas_core, vmhwm_kb

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def cpu_capability():
    """ATen's own vectorisation level (separate from OpenBLAS's core), from torch.__config__."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    workload, folder = sys.argv[1], sys.argv[2]
    warmup, timed, threads = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(1)

    if workload == "conic":
        x = torch.from_numpy(np.load(folder + "/conic_x.npy"))
        y = torch.from_numpy(np.load(folder + "/conic_y.npy").astype(np.int64) - 1)
        layers, prev = [], 16
        for _ in range(5):
            layers += [torch.nn.Linear(prev, 300, bias=False), torch.nn.ReLU()]
            prev = 300
        layers += [torch.nn.BatchNorm1d(300), torch.nn.Linear(300, 4, bias=False)]
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    elif workload == "fashion":
        limit = 20000
        images = read_idx(FASHION + "/train-images-idx3-ubyte.gz", 16).reshape(-1, 784)[:limit]
        labels = read_idx(FASHION + "/train-labels-idx1-ubyte.gz", 8)[:limit]
        x = torch.from_numpy(images.astype(np.float32) / np.float32(255))
        y = torch.from_numpy(labels.astype(np.int64))
        del images, labels
        layers, prev = [], 784
        for _ in range(3):
            layers += [torch.nn.Linear(prev, 512), torch.nn.BatchNorm1d(512), torch.nn.ReLU()]
            prev = 512
        layers += [torch.nn.Linear(512, 10)]
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    elif workload in ("cnn", "resnet"):
        from torch_cnn import run_cnn
        return run_cnn(workload, folder, warmup, timed, threads, report)
    else:
        raise SystemExit("unknown workload " + workload)

    crit = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(2)
    n, bs = x.shape[0], 128
    model.train()

    def epoch():
        perm = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = x[idx], y[idx]  # x, y need no grad: no graph is recorded for the gather
            loss = crit(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * xb.shape[0]
        return loss_sum / n

    for _ in range(warmup):
        epoch()
    times, loss = [], None
    for _ in range(timed):
        t0 = time.perf_counter()
        loss = epoch()
        times.append(time.perf_counter() - t0)
    report(workload, times, loss)


def report(workload, times, loss):
    print(json.dumps({"contender": "pytorch", "workload": workload, "times": times,
                      "blas_core": openblas_core(), "threads": torch.get_num_threads(),
                      "torch_cpu_capability": cpu_capability(),
                      "torch_version": torch.__version__,
                      "vmhwm_kb": vmhwm_kb(), "check": {"loss": loss}}))


if __name__ == "__main__":
    main()
