"""The neural-collapse metrics of docs/metrics.md in vectorised numpy (the reference contender of
workload c), and one benchmark process: python3 bench/numpy_metrics.py DIR WARMUP TIMED THREADS

Written to be fast: float64 accumulation as collapse does, class sums and every d-wide product as
BLAS matrix products (one-hot matrices, the Gram of the class means, the projections for nc1),
rows processed in chunks so the float64 temporaries stay in cache-sized blocks and are allocated
once, no d x d matrix (nc1 uses the at most C-1 directions of Sigma_B, like collapse). Prints
one JSON line.
"""
import json
import sys
import time

import numpy as np

from blas_probe import openblas_core, openblas_threads, vmhwm_kb

CHUNK = 256  # rows per block: 256 x 512 float64 = 1 MB per temporary (the fastest here; see README)


def quantile(x, q):
    return float(np.quantile(np.asarray(x, dtype=np.float64), q))


def nc_measure(h, y, classes, W=None, b=None, q=0.05):
    """All metrics of docs/metrics.md for features h [N x d] (any float dtype), labels y in 1..C."""
    N, d = h.shape
    C = classes
    lab = np.asarray(y, dtype=np.int64) - 1
    if lab.min() < 0 or lab.max() >= C:
        raise ValueError("labels outside 1..C")
    counts = np.bincount(lab, minlength=C).astype(np.float64)
    if counts.min() < 2:
        raise ValueError("every class needs at least 2 samples")

    # Work buffers allocated once: per-chunk temporaries made fresh each time cost ~30 % here
    # (1 MB arrays go through mmap/munmap in glibc, page faults every chunk).
    rows = min(CHUNK, N)
    hc = np.empty((rows, d))
    g = np.empty((rows, d))
    r = np.empty((rows, d))
    oh = np.empty((rows, C))
    cd = np.empty((C, d))
    ar = np.arange(rows)

    def load(s):
        m = min(rows, N - s)
        hc[:m] = h[s:s + m]  # float32 -> float64 in place
        lc = lab[s:s + m]
        oh[:m] = 0.0
        oh[ar[:m], lc] = 1.0
        return m, lc

    # pass 1: class sums (one-hot^T @ h per chunk, float64)
    sums = np.zeros((C, d))
    for s in range(0, N, rows):
        m, _ = load(s)
        np.matmul(oh[:m].T, hc[:m], out=cd)
        sums += cd
    mu = sums / counts[:, None]
    mu_g = sums.sum(axis=0) / N
    mt = mu - mu.mean(axis=0)
    G = mt @ mt.T
    evals, evecs = np.linalg.eigh(G)  # ascending
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    geig = np.clip(evals, 0.0, None)
    keep = min(C - 1, d)
    lmax = evals[0]
    rank = 0
    while rank < keep and evals[rank] > 1e-12 * lmax:
        rank += 1
    basis = (mt.T @ evecs[:, :rank]) / np.sqrt(evals[:rank])  # d x rank, orthonormal columns
    if W is not None:
        W = np.asarray(W, dtype=np.float64)
        b = np.zeros(C) if b is None else np.asarray(b, dtype=np.float64)
        wm = np.vstack([W, mu - mu_g]).T  # d x 2C
        beff = W @ mu_g + b
        mnorm2 = ((mu - mu_g) ** 2).sum(axis=1)

    # pass 2: unit centred sums per class, energies, projections, logits
    usum = np.zeros((C, d))
    within = np.zeros(C)
    proj2 = np.zeros(rank)
    sq_centred = 0.0
    agree = correct = 0
    loss_sum = 0.0
    for s in range(0, N, rows):
        m, lc = load(s)
        gm, rm, ohm = g[:m], r[:m], oh[:m]
        np.subtract(hc[:m], mu_g, out=gm)
        np.take(mu, lc, axis=0, out=rm)
        np.subtract(hc[:m], rm, out=rm)
        n2 = np.einsum("ij,ij->i", gm, gm)
        sq_centred += n2.sum()
        within += ohm.T @ np.einsum("ij,ij->i", rm, rm)
        if rank:
            p = rm @ basis
            proj2 += (p * p).sum(axis=0)
        if W is not None:
            z = gm @ wm
            logits = z[:, :C] + beff
            dist = mnorm2 - 2.0 * z[:, C:]
            best = logits.argmax(axis=1)
            near = dist.argmin(axis=1)
            zb = logits[ar[:m], best]
            lse = zb + np.log(np.exp(logits - zb[:, None]).sum(axis=1))
            loss_sum += (lse - logits[ar[:m], lc]).sum()
            agree += int((best == near).sum())
            correct += int((best == lc).sum())
        inv = np.zeros_like(n2)
        np.divide(1.0, np.sqrt(n2), out=inv, where=n2 > 0)
        np.multiply(gm, inv[:, None], out=gm)  # g no longer needed: unit rows in place
        np.matmul(ohm.T, gm, out=cd)
        usum += cd

    out = {}
    sg = usum @ usum.T
    intra = counts / (counts - 1) * (np.diag(sg) / counts ** 2) - 1 / (counts - 1)
    iu = np.triu_indices(C, 1)
    pairs = sg[iu] / (counts[iu[0]] * counts[iu[1]])
    out.update(intra_cos=float(intra.mean()), intra_cos_min=float(intra.min()), intra_cos_q=quantile(intra, q),
               inter_cos=float(pairs.mean()), inter_cos_max=float(pairs.max()), inter_cos_q=quantile(pairs, 1 - q),
               feature_norm=float(np.sqrt(sq_centred / N)), intra_per_class=intra.tolist())
    trG = np.trace(G)
    frob = np.sqrt((G * G).sum())
    trW = within.sum() / N
    out["trace_within"] = float(trW)
    out["variability"] = float(trW / (trG / C))
    out["nc1"] = float((proj2 / (N * evals[:rank])).sum())
    dg = np.diag(G)
    dist2 = dg[iu[0]] + dg[iu[1]] - 2 * G[iu]
    bad = ~(dist2 > 1e-2 * (dg[iu[0]] + dg[iu[1]]))
    if bad.any():  # recompute directly where the Gram form cancels (as collapse does)
        dm = mu[iu[0][bad]] - mu[iu[1][bad]]
        dist2[bad] = (dm * dm).sum(axis=1)
    v = within / counts
    with np.errstate(divide="ignore"):
        cd = np.where(dist2 > 0, (v[iu[0]] + v[iu[1]]) / (2 * dist2), np.inf)
    out["cdnv"] = float(cd.mean())
    rn = np.sqrt(dg)
    out["equinorm"] = float(rn.std() / rn.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where((rn[iu[0]] > 0) & (rn[iu[1]] > 0), G[iu] / (rn[iu[0]] * rn[iu[1]]), 0.0)
    out["equiangular"] = float(np.abs(cos + 1 / (C - 1)).mean())
    out["max_cos"] = float(cos.max())
    ref = (np.eye(C) - 1.0 / C) / np.sqrt(C - 1)
    out["etf_error"] = float(np.sqrt(((G / frob - ref) ** 2).sum()))
    out["etf_spectrum"] = (geig / frob).tolist()
    out["between_spectrum"] = (geig / C).tolist()
    out["between_energy"] = float(((mu - mu_g) ** 2).sum() / C)
    out["mean_sq_norm"] = float(sq_centred / N + mu_g @ mu_g)
    if W is not None:
        wn = np.sqrt((W * W).sum(axis=1))
        out["w_equinorm"] = float(wn.std() / wn.mean()) if wn.mean() > 0 else 0.0
        wf = np.sqrt((W * W).sum())
        wi = 1 / wf if wf > 0 else 0.0
        out["self_duality"] = float(((W * wi - mt / np.sqrt(trG)) ** 2).sum())
        out["ncc_agreement"] = agree / N
        out["accuracy"] = correct / N
        out["loss"] = float(loss_sum / N)
    return out


def main():
    folder = sys.argv[1]
    warmup, timed = int(sys.argv[2]), int(sys.argv[3])
    h = np.load(folder + "/nc_h.npy")
    y = np.load(folder + "/nc_y.npy")
    W = np.load(folder + "/nc_w.npy")
    b = np.load(folder + "/nc_b.npy")
    for _ in range(warmup):
        nc_measure(h, y, 10, W, b)
    times, m = [], None
    for _ in range(timed):
        t0 = time.perf_counter()
        m = nc_measure(h, y, 10, W, b)
        times.append(time.perf_counter() - t0)
    keys = ["nc1", "intra_cos", "inter_cos", "cdnv", "etf_error", "self_duality", "accuracy", "ncc_agreement",
            "loss", "feature_norm", "variability", "equinorm", "equiangular"]
    print(json.dumps({"contender": "numpy", "workload": "metrics", "times": times, "blas_core": openblas_core(),
                      "threads": openblas_threads(), "numpy_version": np.__version__, "vmhwm_kb": vmhwm_kb(),
                      "check": {k: m[k] for k in keys} if m else {}}))


if __name__ == "__main__":
    main()
