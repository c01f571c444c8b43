"""collapse vs PyTorch vs numpy on this machine (see bench/README.md). Run through bench/run.

For every repetition, setting (threads x OpenBLAS core) and workload, one child process per
contender, rotating which goes first (collapse runs twice in the training workloads: the README's
loop, and the same loop with need_input_grad = false, "collapse_nig"); each child runs warm-up then timed repetitions and
reports its times, the OpenBLAS core it actually ran, its thread count and its VmHWM.
Medians are over all timed repetitions of all children of a cell.
"""
import argparse
import csv
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
PY = "/usr/bin/python3"

WORKLOADS = {
    # name: (description, contender, warmup, timed (full), timed (quick))
    "conic": ("a. conic MLP epoch (10000 x 16, 5 x Linear(300)+ReLU, BN, Adam)", "pytorch", 1, 3, 1),
    "fashion": ("b. Fashion-MNIST epoch (20000 x 784, 3 x [Linear(512), BN, ReLU], SGD)", "pytorch", 1, 2, 1),
    "metrics": ("c. nc.measure on 60000 x 512 float32, C = 10, with a classifier", "numpy", 1, 5, 2),
    "cnn": ("d. 3-block conv net with BN, 8 SGD steps of 128 x 3 x 32 x 32", "pytorch", 1, 3, 1),
    "resnet": ("e. ResNet18 (width 16) training step, 128 x 3 x 32 x 32", "pytorch", 1, 5, 2),
}
# Workloads whose collapse side is not implemented (only the contender runs). Issue 9's cnn and
# resnet are implemented in bench/collapse_worker.lua.
PENDING_COLLAPSE = set()
CORES = {"default": None, "SkylakeX": "SkylakeX"}
TARGETS = {  # (workload, threads, core) -> max ratio collapse (README loop) / contender; issue 10 at 1 thread
    ("conic", 1, "default"): 0.45, ("conic", 1, "SkylakeX"): 0.45,
    ("conic", 2, "default"): 0.5, ("conic", 2, "SkylakeX"): 0.5,
    ("fashion", 1, "default"): 0.6, ("fashion", 1, "SkylakeX"): 0.6,
    ("metrics", 1, "default"): 0.25, ("metrics", 1, "SkylakeX"): 0.25,
    ("metrics", 2, "default"): 0.3, ("metrics", 2, "SkylakeX"): 0.3,
    ("cnn", 1, "default"): 0.8, ("cnn", 1, "SkylakeX"): 0.8,
    ("resnet", 1, "default"): 0.8, ("resnet", 1, "SkylakeX"): 0.8,
}
MEM_TARGETS_CNN = {"cnn": 0.6, "resnet": 0.6}  # peak memory of collapse / PyTorch (issue 9)
MEM_TARGET = 0.5  # peak memory of collapse / PyTorch in workload b


def child_env(threads, core):
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_VERBOSE", "GOTO_NUM_THREADS"):
        env.pop(k, None)
    if core:
        env["OPENBLAS_CORETYPE"] = core
    t = str(threads)
    env.update(OPENBLAS_NUM_THREADS=t, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t)
    return env


def contenders(workload):
    rival = WORKLOADS[workload][1]
    if workload in PENDING_COLLAPSE:
        return [rival]
    # the second collapse contender (need_input_grad = false) exists for the MLP epochs only
    return ["collapse", "collapse_nig", rival] if workload in ("conic", "fashion") else ["collapse", rival]


def default_core_for_rivals():
    """collapse chooses its kernel when OPENBLAS_CORETYPE is unset; the rivals' OpenBLAS does not.
    Where collapse chose one (a CPU this OpenBLAS does not know), the rivals get the same core in
    the "default" cells, so every contender of a cell runs the same kernel."""
    code = 'local i = require("collapse").blas_info(); print(i.core .. " " .. i.selected_by)'
    out = subprocess.run([os.path.join(ROOT, "scripts", "lua"), "-e", code], env=child_env(1, None), cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] if out[1:] == ["collapse"] else None


def command(contender, workload, cache, warmup, timed, threads):
    args = [workload, cache, str(warmup), str(timed), str(threads)]
    if contender in ("collapse", "collapse_nig"):
        loop = ["no_input_grad"] if contender == "collapse_nig" else []
        return [os.path.join(ROOT, "scripts", "lua"), os.path.join(BENCH, "collapse_worker.lua")] + args + loop
    if contender == "pytorch":
        return [PY, os.path.join(BENCH, "torch_worker.py")] + args
    return [PY, os.path.join(BENCH, "numpy_metrics.py")] + args[1:]


def run_child(cmd, env, log):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        log.write(f"FAILED ({p.returncode}): {' '.join(cmd)}\n{p.stderr}\n")
        raise SystemExit(f"bench: child failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    rec = json.loads(line)
    rec["process_seconds"] = wall
    return rec


def fmt_ratio(r, target):
    if target is None:
        return f"{r:.2f}"
    return f"{r:.2f} {'ok' if r <= target else 'MISS'} (<= {target})"


def main():
    ap = argparse.ArgumentParser(prog="bench/run")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, fewer timed epochs")
    ap.add_argument("--reps", type=int, help="processes per contender and cell (default 7, quick 1)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--cores", default="default,SkylakeX")
    ap.add_argument("--workloads", default="conic,fashion,metrics")  # also: cnn, resnet (issue 9)
    ap.add_argument("--out", default=os.path.join(BENCH, "results"))
    a = ap.parse_args()
    reps = a.reps or (1 if a.quick else 7)
    threads = [int(t) for t in a.threads.split(",")]
    cores = a.cores.split(",")
    workloads = a.workloads.split(",")
    os.makedirs(a.out, exist_ok=True)
    cache = os.path.join(a.out, "inputs")
    os.makedirs(cache, exist_ok=True)
    log = open(os.path.join(a.out, "last-run.log"), "w")

    with open(os.path.join(BENCH, "prep.lua"), "rb") as f:
        stamp_want = hashlib.sha256(f.read()).hexdigest()
    stamp_file = os.path.join(cache, "prep.sha256")
    have = open(stamp_file).read().strip() if os.path.exists(stamp_file) else ""
    if have != stamp_want:
        print("bench: writing the shared inputs (conic data, random features) ...", flush=True)
        subprocess.run([os.path.join(ROOT, "scripts", "lua"), os.path.join(BENCH, "prep.lua"), cache], check=True,
                       cwd=ROOT, env=child_env(1, None))
        with open(stamp_file, "w") as f:
            f.write(stamp_want + "\n")

    cells = {}  # (workload, threads, core) -> {contender: [records]}
    rival_default = default_core_for_rivals()
    if rival_default:
        print(f"bench: collapse chose OpenBLAS core {rival_default} by itself; the rivals get it too in 'default' cells")
    t_start = time.time()
    for rep in range(reps):
        for th in threads:
            for core in cores:
                for w in workloads:
                    desc, rival, warm, full, quick = WORKLOADS[w]
                    timed = quick if a.quick else full
                    order = contenders(w)
                    k = (rep + th + len(core)) % len(order)
                    order = order[k:] + order[:k]
                    for c in order:
                        asked = CORES[core] or (rival_default if c == rival else None)
                        rec = run_child(command(c, w, cache, warm, timed, th), child_env(th, asked), log)
                        cells.setdefault((w, th, core), {}).setdefault(c, []).append(rec)
                        log.write(json.dumps({"rep": rep, "threads": th, "core": core, **rec}) + "\n")
                        log.flush()
                    print(f"  rep {rep + 1}/{reps}  threads {th}  core {core:8s}  {w:8s}  "
                          f"({time.time() - t_start:5.0f} s)", flush=True)

    rows, pending = [], []
    for (w, th, core), by in cells.items():
        rival = WORKLOADS[w][1]
        if "collapse" not in by:
            times = [t for r in by[rival] for t in r["times"]]
            pending.append({"workload": w, "threads": th, "core_setting": core, "contender": rival,
                            f"{rival}_median_s": statistics.median(times), f"{rival}_n": len(times),
                            f"{rival}_vmhwm_mb": statistics.median(r["vmhwm_kb"] for r in by[rival]) / 1024,
                            f"{rival}_blas_core": "/".join(sorted({r["blas_core"] for r in by[rival]})),
                            f"check_{rival}": by[rival][-1].get("check")})
            continue
        row = {"workload": w, "threads": th, "core_setting": core}
        for c in contenders(w):
            recs = by[c]
            times = [t for r in recs for t in r["times"]]
            row[f"{c}_median_s"] = statistics.median(times)
            row[f"{c}_min_s"] = min(times)
            row[f"{c}_n"] = len(times)
            per = [statistics.median(r["times"]) for r in recs]  # the spread between processes
            row[f"{c}_process_medians_s"] = per
            row[f"{c}_vmhwm_mb"] = statistics.median(r["vmhwm_kb"] for r in recs) / 1024
            row[f"{c}_blas_core"] = "/".join(sorted({r["blas_core"] for r in recs}))
            row[f"{c}_threads"] = "/".join(str(t) for t in sorted({r["threads"] for r in recs}))
            if "torch_cpu_capability" in recs[0]:
                row["torch_cpu_capability"] = recs[0]["torch_cpu_capability"]
        row["contender"] = rival
        row["ratio"] = row["collapse_median_s"] / row[f"{rival}_median_s"]
        if "collapse_nig_median_s" in row:
            row["ratio_nig"] = row["collapse_nig_median_s"] / row[f"{rival}_median_s"]
        row["mem_ratio"] = row["collapse_vmhwm_mb"] / row[f"{rival}_vmhwm_mb"]
        row["target"] = TARGETS.get((w, th, core))
        # the check values (loss / metrics) of the last child of each contender, for a glance
        row["check_collapse"] = by["collapse"][-1].get("check")
        row[f"check_{rival}"] = by[rival][-1].get("check")
        rows.append(row)

    hdr = (f"{'workload':8s} {'thr':>3s} {'core (asked/ran)':22s} {'collapse s':>10s} {'rival':7s} {'rival s':>8s} "
           f"{'ratio':>22s} {'nig s':>7s} {'nig ratio':>9s} {'collapse MB':>11s} {'rival MB':>9s} {'mem':>5s}")
    print()
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        rival = r["contender"]
        ran = r["collapse_blas_core"] + ("" if r[f"{rival}_blas_core"] == r["collapse_blas_core"]
                                          else "|" + r[f"{rival}_blas_core"])
        mem = f"{r['mem_ratio']:.2f}"
        print(f"{r['workload']:8s} {r['threads']:3d} {r['core_setting'] + '/' + ran:22s} "
              f"{r['collapse_median_s']:10.4f} {rival:7s} {r[rival + '_median_s']:8.4f} "
              f"{fmt_ratio(r['ratio'], r['target']):>22s} "
              f"{r.get('collapse_nig_median_s', float('nan')):7.4f} {r.get('ratio_nig', float('nan')):9.2f} "
              f"{r['collapse_vmhwm_mb']:11.0f} "
              f"{r[rival + '_vmhwm_mb']:9.0f} {mem:>5s}")
    for r in rows:
        if r["workload"] == "fashion":
            ok = "ok" if r["mem_ratio"] <= MEM_TARGET else "MISS"
            print(f"peak memory, fashion, {r['threads']} thread(s), {r['core_setting']}: collapse / pytorch = "
                  f"{r['mem_ratio']:.2f} {ok} (<= {MEM_TARGET})")
    by_cell = {(r["workload"], r["threads"], r["core_setting"]): r for r in rows}
    for (w, th, core), r in sorted(by_cell.items()):
        best = by_cell.get((w, th, "SkylakeX"))
        if core == "default" and best and w != "metrics":
            q = r["collapse_median_s"] / best["collapse_median_s"]
            print(f"collapse default / SkylakeX, {w}, {th} thread(s): {q:.2f} {'ok' if q <= 1.1 else 'MISS'} (<= 1.1)")
        if r["workload"] in MEM_TARGETS_CNN:
            lim = MEM_TARGETS_CNN[r["workload"]]
            print(f"peak memory, {r['workload']}, {r['threads']} thread(s), {r['core_setting']}: collapse / pytorch = "
                  f"{r['mem_ratio']:.2f} {'ok' if r['mem_ratio'] <= lim else 'MISS'} (<= {lim})")
    for r in pending:
        rv = r["contender"]
        print(f"{r['workload']:8s} {r['threads']:3d} {r['core_setting'] + '/' + r[rv + '_blas_core']:22s} "
              f"{'pending':>10s} {rv:7s} {r[rv + '_median_s']:8.4f} {'(collapse side: issue 9)':>22s} "
              f"{'':11s} {r[rv + '_vmhwm_mb']:9.0f}")
    mismatch = [r for r in rows if r["collapse_blas_core"] != r[r["contender"] + "_blas_core"]]
    if mismatch:
        print("WARNING: contenders ran different OpenBLAS cores in", len(mismatch), "cells")

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    versions = {}
    for by in cells.values():
        for recs in by.values():
            for k in ("torch_version", "numpy_version"):
                if k in recs[0]:
                    versions[k] = recs[0][k]
    meta = {"date": stamp, "quick": a.quick, "reps": reps, "cpu": cpu_name(), "nproc": os.cpu_count(),
            "elapsed_s": time.time() - t_start, "versions": versions, "cells": rows, "pending": pending}
    for name in (f"bench-{stamp}", "latest"):
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        with open(os.path.join(a.out, name + ".csv"), "w", newline="") as f:
            keys = sorted({k for r in rows for k in r if not k.startswith("check") and not k.endswith("medians_s")})
            wr = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
            wr.writeheader()
            wr.writerows(rows)
    print(f"\nresults: {a.out}/bench-{stamp}.json and .csv (also latest.json / latest.csv); "
          f"{time.time() - t_start:.0f} s")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
