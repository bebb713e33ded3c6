"""Peer for benches/stats.rs: PySAL esda on the same H3 grid and counts.

Usage: esda_stats.py GRID_CSV [--json]

GRID_CSV has `cell,count` rows (H3 cells as hex). For k = 1, 2, 3 it builds binary
k-ring weights with h3.grid_disk restricted to the grid, then times
esda.G_Local(y, w, transform='B', star=True, permutations=0) (the statistic only, weights
built beforehand), and esda.Moran_Local(y, w1, permutations=999, n_jobs=-1) with
row-standardised k=1 weights. Prints seconds per run.
"""

import json
import sys
import time
import warnings

import h3
import numpy as np
from libpysal.weights import W

import esda

warnings.filterwarnings("ignore")


def weights(cells, k):
    index = {c: i for i, c in enumerate(cells)}
    neighbors = {}
    for i, c in enumerate(cells):
        neighbors[i] = [index[n] for n in h3.grid_disk(c, k) if n != c and n in index]
    return W(neighbors, silence_warnings=True)


def main():
    path = sys.argv[1]
    as_json = "--json" in sys.argv
    cells, y = [], []
    with open(path) as f:
        next(f)
        for line in f:
            c, v = line.strip().split(",")
            cells.append(c)
            y.append(float(v))
    y = np.array(y)
    out = {"peer": f"esda {esda.__version__}", "n": len(cells)}
    for k in (1, 2, 3):
        w = weights(cells, k)
        w.transform = "B"
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            esda.G_Local(y, w, transform="B", star=True, permutations=0)
            best = min(best, time.perf_counter() - t)
        out[f"gistar_k{k}"] = best
    w1 = weights(cells, 1)
    esda.Moran_Local(y[:2000], weights(cells[:2000], 1), permutations=99, n_jobs=-1)  # numba warm-up
    t = time.perf_counter()
    esda.Moran_Local(y, w1, transformation="r", permutations=999, n_jobs=-1, seed=1)
    out["local_moran_999"] = time.perf_counter() - t
    if as_json:
        print(json.dumps(out))
    else:
        for key, v in out.items():
            print(f"{key}: {v}")


if __name__ == "__main__":
    main()
