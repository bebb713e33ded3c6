#!/usr/bin/env python3
"""Regenerates the PySAL reference values in tests/reference/expected/.

    cargo run --release --example reference_inputs
    bash tests/reference/setup.sh
    tests/reference/.venv/bin/python tests/reference/make_reference.py

Reads tests/reference/inputs/{h3_r8_counts,lsoa_counts}.csv and boundaries/lsoa11.geojson,
computes Gi* (esda.G_Local), local Moran's I (esda.Moran_Local) and the Mann-Kendall test
(pymannkendall.original_test), checks each against a direct numpy implementation of the
formula the Rust side implements, and writes one JSON file per case. Any failed check
aborts with a non-zero exit. See README.md.
"""

from __future__ import annotations

import csv
import hashlib
import json
import platform
import sys
import warnings
from pathlib import Path

import esda
import h3
import libpysal
import numpy as np
import pymannkendall as mk
import scipy
import shapely
from libpysal.weights import W, Queen
from shapely.geometry import shape
from shapely.strtree import STRtree

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INPUTS = HERE / "inputs"
OUT = HERE / "expected"
H3_CSV = INPUTS / "h3_r8_counts.csv"
LSOA_CSV = INPUTS / "lsoa_counts.csv"
LSOA_GEOJSON = ROOT / "boundaries" / "lsoa11.geojson"

PERMUTATIONS = 999
MORAN_SEED = 12345
GI_SEED = 2025
# Tolerances of the self-checks below (relative to the largest magnitude in the vector).
RTOL = 1e-10


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def provenance(*inputs: Path) -> dict:
    try:
        import numba  # noqa: F401

        numba_version = numba.__version__
    except ImportError:
        numba_version = None
    return {
        "script": "tests/reference/make_reference.py",
        "python": platform.python_version(),
        "esda": esda.__version__,
        "libpysal": libpysal.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "shapely": shapely.__version__,
        "h3": h3.__version__,
        "pymannkendall": mk.__version__,
        "numba": numba_version,
        "inputs": {rel(p): sha256(p) for p in inputs},
    }


def write(name: str, obj: dict) -> None:
    path = OUT / name
    with path.open("w") as f:
        # Python floats are written with repr (shortest round-trip): full precision.
        json.dump(obj, f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {rel(path)} ({path.stat().st_size} bytes)")


def check_close(what: str, got, want, rtol: float = RTOL) -> float:
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    if got.shape != want.shape:
        sys.exit(f"check failed: {what}: shapes {got.shape} vs {want.shape}")
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    if not np.all(np.isfinite(got)) or diff > rtol * scale:
        sys.exit(f"check failed: {what}: max |diff| = {diff:g} (scale {scale:g})")
    print(f"  ok: {what}: max |diff| = {diff:.3g}")
    return diff


def floats(a) -> list[float]:
    return [float(v) for v in np.asarray(a, dtype=float)]


# ---------------------------------------------------------------------------- inputs


def read_h3() -> tuple[list[str], np.ndarray]:
    cells, counts = [], []
    with H3_CSV.open() as f:
        r = csv.reader(f)
        if next(r) != ["cell", "count"]:
            sys.exit(f"{H3_CSV}: unexpected header")
        for cell, count in r:
            cells.append(cell)
            counts.append(float(count))
    as_int = [int(c, 16) for c in cells]
    if as_int != sorted(as_int) or len(set(as_int)) != len(as_int):
        sys.exit(f"{H3_CSV}: cells not strictly increasing as u64")
    if not all(h3.is_valid_cell(c) and h3.get_resolution(c) == 8 for c in cells):
        sys.exit(f"{H3_CSV}: not all cells are valid resolution-8 H3 cells")
    return cells, np.array(counts)


def read_lsoa() -> tuple[list[str], np.ndarray, list]:
    codes, counts = [], []
    with LSOA_CSV.open() as f:
        r = csv.reader(f)
        if next(r) != ["code", "count"]:
            sys.exit(f"{LSOA_CSV}: unexpected header")
        for code, count in r:
            codes.append(code)
            counts.append(float(count))
    fc = json.loads(LSOA_GEOJSON.read_text())
    geo_codes = [ft["properties"]["code"] for ft in fc["features"]]
    if geo_codes != codes:
        sys.exit(f"{LSOA_CSV} is not in the order of {LSOA_GEOJSON}")
    shapes = [shape(ft["geometry"]) for ft in fc["features"]]
    for code, s in zip(codes, shapes):
        if s.geom_type not in ("Polygon", "MultiPolygon"):
            sys.exit(f"{code}: geometry {s.geom_type}")
    return codes, np.array(counts), shapes


# ---------------------------------------------------------------------------- weights


def h3_ring_lists(cells: list[str], k: int) -> list[list[int]]:
    """k-ring neighbours of each cell within the grid, the cell itself EXCLUDED, sorted."""
    index = {c: i for i, c in enumerate(cells)}
    lists = []
    for i, c in enumerate(cells):
        nb = sorted(index[d] for d in h3.grid_disk(c, k) if d in index)
        if i not in nb:
            sys.exit(f"grid_disk({c}, {k}) does not contain the cell itself")
        nb.remove(i)
        lists.append(nb)
    return lists


def binary_w(lists: list[list[int]], self_weight: bool = False) -> W:
    """A libpysal W on ids 0..n-1 in this order, binary weights."""
    n = len(lists)
    neighbors = {i: (sorted(nb + [i]) if self_weight else list(nb)) for i, nb in enumerate(lists)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands / disconnected components
        w = W(neighbors, id_order=list(range(n)), silence_warnings=True)
    assert w.id_order == list(range(n))
    return w


def dense(lists: list[list[int]], self_weight: bool) -> np.ndarray:
    n = len(lists)
    a = np.zeros((n, n))
    for i, nb in enumerate(lists):
        a[i, nb] = 1.0
        if self_weight:
            a[i, i] = 1.0
    return a


# ---------------------------------------------------------------------------- Gi*


def gistar_numpy(x: np.ndarray, lists: list[list[int]]) -> np.ndarray:
    """DOMAIN.md's Gi*: the unit itself is in its neighbourhood and W_i counts it."""
    n = len(x)
    wmat = dense(lists, self_weight=True)
    xbar = x.sum() / n
    s = np.sqrt((x**2).sum() / n - xbar**2)
    wi = wmat.sum(1)
    wi2 = (wmat**2).sum(1)
    return (wmat @ x - xbar * wi) / (s * np.sqrt((n * wi2 - wi**2) / (n - 1)))


def gistar(x: np.ndarray, lists: list[list[int]], label: str) -> tuple[np.ndarray, dict]:
    # The reference call: W WITHOUT self-neighbours, star=True -> esda puts 1 on the
    # diagonal itself (getisord._infer_star_and_structure_w: fill_diagonal(w, 1)).
    g = esda.G_Local(x, binary_w(lists), transform="B", star=True, permutations=0)
    zs = np.asarray(g.Zs, dtype=float)
    if not g.star:
        sys.exit(f"{label}: esda did not treat the call as Gi*")
    checks = {}
    checks["vs_numpy_formula_max_abs_diff"] = check_close(
        f"{label}: G_Local(w without self, star=True).Zs == numpy DOMAIN formula", zs, gistar_numpy(x, lists)
    )
    card = np.asarray(g.w.sparse.sum(1)).ravel()
    expect_card = np.array([len(nb) + 1 for nb in lists], dtype=float)
    if not np.array_equal(card, expect_card) or not np.all(g.w.sparse.diagonal() == 1):
        sys.exit(f"{label}: esda's star weights are not 'neighbours + self, all 1'")
    print(f"  ok: {label}: esda's W_i = cardinality + 1 (self weight 1 on the diagonal)")
    # Same call with the self-neighbour already in w: esda keeps the diagonal as is.
    g2 = esda.G_Local(x, binary_w(lists, self_weight=True), transform="B", star=True, permutations=0)
    checks["self_in_w_star_true_max_abs_diff"] = check_close(
        f"{label}: G_Local(w with self, star=True).Zs == same", g2.Zs, zs, rtol=1e-13
    )
    g3 = esda.G_Local(x, binary_w(lists, self_weight=True), transform="B", star=None, permutations=0)
    checks["self_in_w_star_none_max_abs_diff"] = check_close(
        f"{label}: G_Local(w with self, star=None).Zs == same", g3.Zs, zs, rtol=1e-13
    )
    # The defaults are NOT Gi* (documented in DOMAIN.md); make sure they differ.
    g4 = esda.G_Local(x, binary_w(lists), permutations=0)
    checks["defaults_R_nostar_max_abs_diff"] = float(np.max(np.abs(np.asarray(g4.Zs) - zs)))
    if checks["defaults_R_nostar_max_abs_diff"] < 1e-6:
        sys.exit(f"{label}: esda defaults unexpectedly equal Gi*")
    return zs, checks


def gistar_psim(x: np.ndarray, lists: list[list[int]], label: str) -> dict:
    """esda's conditional-permutation p_sim of Gi* (star=True, binary weights). Ties are
    exact here: every draw's G*_i and the observed share the denominator sum(y), and the
    numerators are sums of integer counts."""
    g = esda.G_Local(
        x, binary_w(lists), transform="B", star=True, permutations=PERMUTATIONS, seed=GI_SEED, n_jobs=1,
        keep_simulations=False,
    )
    if not g.star:
        sys.exit(f"{label}: esda did not treat the call as Gi*")
    p = np.asarray(g.p_sim, dtype=float)
    print(f"  ok: {label}: p_sim from {PERMUTATIONS} permutations, {int((p <= 0.05).sum())} at or below 0.05")
    return {"p_sim": floats(p)}


# ---------------------------------------------------------------------------- local Moran


def moran_numpy(y: np.ndarray, lists: list[list[int]]) -> np.ndarray:
    """(n - 1) z_i lag_i / sum z^2, z = y - ybar, lag = row-standardised neighbour mean."""
    n = len(y)
    z = y - y.mean()
    lag = np.array([z[nb].mean() if nb else 0.0 for nb in lists])
    return (n - 1) * z * lag / (z**2).sum()


def permutation_ids(n: int, max_card: int, seed: int, perms: int) -> np.ndarray:
    """esda.crand.vec_permutations without numba: one table shared by all units, row p =
    np.random.choice(n - 1, max_card, replace=False) after np.random.seed(seed)."""
    np.random.seed(seed)
    ids = np.empty((perms, max_card), dtype=np.int64)
    for p in range(perms):
        ids[p] = np.random.choice(n - 1, size=max_card, replace=False)
    return ids


def folded_p(larger: np.ndarray, perms: int) -> np.ndarray:
    """esda's p_sim: larger = #(sim >= obs); extreme = min(larger, P - larger)."""
    larger = np.asarray(larger)
    return (np.minimum(larger, perms - larger) + 1.0) / (perms + 1.0)


def moran_psim_numpy(y, lists, seed, perms, obs=None, esda_order=True) -> np.ndarray:
    """Re-derivation of esda's conditional-permutation p_sim.

    Unit i keeps z_i; its k_i neighbour values are z_no_i[ids[p, :k_i]] where z_no_i is z
    with unit i removed (position j is unit j for j < i, unit j + 1 otherwise).

    esda_order=True computes the permuted I exactly as esda does (z standardised,
    z_i * (zrand @ (1/k)) * (n-1)/sum z^2); with `obs` = esda's Is this must reproduce
    esda's p_sim bit for bit. esda_order=False uses a different but algebraically equal
    arithmetic (z = y - ybar unstandardised, I = (n-1)/sum z^2 * z_i * mean, permuted
    ((n-1)/sum z^2 * z_i / k) * sum) to show how much p_sim depends on rounding at ties.
    """
    n = len(y)
    if esda_order:
        z = (y - y.mean()) / y.std()
    else:
        z = y - y.mean()
    den = (z**2).sum()
    scale = (n - 1) / den
    if obs is None:
        obs = scale * z * np.array([z[nb].sum() / len(nb) for nb in lists])
    ids = permutation_ids(n, max(len(nb) for nb in lists), seed, perms)
    out = np.empty(n)
    for i, nb in enumerate(lists):
        k = len(nb)
        zr = np.delete(z, i)[ids[:, :k]]
        if esda_order:
            sim = z[i] * (zr @ np.full(k, 1.0 / k)) * scale
        else:
            sim = (scale * z[i] / k) * zr.sum(1)
        out[i] = folded_p((sim >= obs[i]).sum(), perms)[()]
    return out


def tie_bounds(obs: np.ndarray, sim: np.ndarray, perms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Permuted I equal to the observed I in exact arithmetic (|diff| <= 1e-9 relative) are
    'ties': whether floating point puts them at >= obs is rounding noise. Returns the tie
    counts and the smallest/largest p_sim over every way of counting the ties."""
    tol = 1e-9 * np.maximum(np.abs(obs), 1e-12 * np.max(np.abs(obs)))
    above = (sim > obs + tol).sum(0)
    ties = (np.abs(sim - obs) <= tol).sum(0)
    lo_l, hi_l = above, above + ties  # range of #(sim >= obs)
    f_lo, f_hi = folded_p(lo_l, perms), folded_p(hi_l, perms)
    p_lo = np.minimum(f_lo, f_hi)
    half = perms // 2
    contains_mid = (lo_l <= half) & (hi_l >= perms - half)
    p_hi = np.where(contains_mid, folded_p(np.full_like(lo_l, half), perms), np.maximum(f_lo, f_hi))
    return ties, p_lo, p_hi


def local_moran(y: np.ndarray, lists: list[list[int]], label: str) -> tuple[dict, dict]:
    islands = [i for i, nb in enumerate(lists) if not nb]
    if islands:
        sys.exit(f"{label}: {len(islands)} units without neighbours; row standardisation undefined")
    w = binary_w(lists)
    lm = esda.Moran_Local(
        y, w, transformation="r", permutations=PERMUTATIONS, seed=MORAN_SEED, n_jobs=1, keep_simulations=True
    )
    checks = {}
    checks["Is_vs_numpy_formula_max_abs_diff"] = check_close(
        f"{label}: Moran_Local.Is == (n-1) z_i lag_i / sum z^2", lm.Is, moran_numpy(y, lists)
    )
    n = len(y)
    z = y - y.mean()
    m2_n = (z**2).sum() / n
    lag = np.array([z[nb].mean() for nb in lists])
    nz = z * lag != 0
    checks["Is_over_anselin_m2_n_ratio"] = float(np.median(np.asarray(lm.Is)[nz] / (z * lag / m2_n)[nz]))
    q = np.asarray(lm.q).astype(int)
    want_q = np.where(z > 0, np.where(lag > 0, 1, 4), np.where(lag > 0, 2, 3))
    if not np.array_equal(q, want_q):
        sys.exit(f"{label}: quadrants differ from 1 HH / 2 LH / 3 LL / 4 HL on z > 0, lag > 0")
    print(f"  ok: {label}: q == 1 HH, 2 LH, 3 LL, 4 HL (high = strictly > 0)")
    p_sim = np.asarray(lm.p_sim, dtype=float)
    # 1. The permutation scheme: exact reproduction given esda's observed Is.
    p_exact = moran_psim_numpy(y, lists, MORAN_SEED, PERMUTATIONS, obs=np.asarray(lm.Is))
    mism = int(np.sum(p_exact != p_sim))
    if mism:
        sys.exit(f"{label}: {mism} p_sim differ from the numpy re-derivation of esda's scheme")
    print(f"  ok: {label}: p_sim reproduced bit for bit (same RNG table, same arithmetic)")
    # 2. Ties: the same draws, algebraically equal arithmetic, different rounding.
    p_alt = moran_psim_numpy(y, lists, MORAN_SEED, PERMUTATIONS, esda_order=False)
    ties, p_lo, p_hi = tie_bounds(np.asarray(lm.Is), np.asarray(lm.sim), PERMUTATIONS)
    eps = 1e-12
    if np.any(p_sim < p_lo - eps) or np.any(p_sim > p_hi + eps):
        sys.exit(f"{label}: esda's p_sim outside its own tie bounds")
    if np.any(p_alt < p_lo - eps) or np.any(p_alt > p_hi + eps):
        sys.exit(f"{label}: re-ordered p_sim outside the tie bounds")
    checks["units_with_ties"] = int(np.sum(ties > 0))
    checks["max_ties"] = int(ties.max())
    checks["units_with_p_sim_hi_minus_lo_over_0.01"] = int(np.sum(p_hi - p_lo > 0.01))
    checks["reordered_arithmetic_p_sim_mismatches"] = int(np.sum(p_alt != p_sim))
    checks["reordered_arithmetic_p_sim_max_abs_diff"] = float(np.max(np.abs(p_alt - p_sim)))
    print(
        f"  note: {label}: {checks['units_with_ties']} units have permuted I tied with the observed I "
        f"(max {checks['max_ties']} of {PERMUTATIONS}); re-ordered arithmetic changes "
        f"{checks['reordered_arithmetic_p_sim_mismatches']} p_sim, by up to "
        f"{checks['reordered_arithmetic_p_sim_max_abs_diff']:.3f}; all within the tie bounds"
    )
    result = {
        "Is": floats(lm.Is),
        "q": [int(v) for v in q],
        "p_sim": floats(p_sim),
        "ties": [int(v) for v in ties],
        "p_sim_lo": floats(p_lo),
        "p_sim_hi": floats(p_hi),
    }
    return result, checks


# ---------------------------------------------------------------------------- queen


def queen_lists(shapes: list) -> tuple[list[list[int]], dict]:
    w = Queen.from_iterable(shapes, ids=list(range(len(shapes))), silence_warnings=True)
    if w.id_order != list(range(len(shapes))):
        sys.exit("Queen id order differs from the input order")
    lists = [sorted(int(j) for j in w.neighbors[i]) for i in range(len(shapes))]
    for i, nb in enumerate(lists):
        if i in nb:
            sys.exit("Queen weights contain a self-neighbour")
        for j in nb:
            if i not in lists[j]:
                sys.exit("Queen weights are not symmetric")
    # Cross-check against shapely: pairs that touch/overlap geometrically but share no vertex
    # (libpysal's queen is exact shared-vertex matching).
    tree = STRtree(shapes)
    touching = set()
    for i, s in enumerate(shapes):
        for j in tree.query(s, predicate="intersects"):
            j = int(j)
            if j > i:
                touching.add((i, j))
    queen_pairs = {(i, j) for i, nb in enumerate(lists) for j in nb if j > i}
    info = {
        "pairs": len(queen_pairs),
        "islands": sum(1 for nb in lists if not nb),
        "shapely_intersecting_pairs_not_queen": len(touching - queen_pairs),
        "queen_pairs_not_intersecting_in_shapely": len(queen_pairs - touching),
    }
    print(f"  queen: {info}")
    return lists, info


# ---------------------------------------------------------------------------- Mann-Kendall


def mk_series() -> dict[str, list[float]]:
    t = np.arange(36, dtype=float)
    noisy = 0.1 * t + np.random.RandomState(42).normal(0.0, 1.0, 36)
    series = {
        "increasing_10": list(range(1, 11)),
        "decreasing_10": list(range(10, 0, -1)),
        "constant_10": [5.0] * 10,
        "ties_10": [1, 2, 2, 3, 3, 3, 4, 5, 5, 6],
        "ties_down_12": [4, 4, 3, 5, 3, 3, 2, 2, 2, 1, 1, 0],
        "noisy_up_36_seed42": noisy,
        "random_normal_36_seed1": np.random.RandomState(1).normal(size=36),
        "random_normal_36_seed2": np.random.RandomState(2).normal(size=36),
        "random_normal_36_seed3": np.random.RandomState(3).normal(size=36),
        "random_poisson3_36_seed4": np.random.RandomState(4).poisson(3.0, size=36),
        "step_change_12": [0.0] * 6 + [1.0] * 6,
        "single_change_10": [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        "short_3": [1.0, 3.0, 2.0],
    }
    return {k: [float(v) for v in np.asarray(x, dtype=float)] for k, x in series.items()}


def mann_kendall() -> list[dict]:
    out = []
    for name, x in mk_series().items():
        r = mk.original_test(np.array(x))
        out.append(
            {
                "name": name,
                "x": x,
                "s": float(r.s),
                "var_s": float(r.var_s),
                "z": float(r.z),
                "p": float(r.p),
                "Tau": float(r.Tau),
                "trend": r.trend,
                "h": bool(r.h),
                "slope": float(r.slope),
                "intercept": float(r.intercept),
            }
        )
        # Independent check of S, Var(S) with tie correction, z with continuity correction.
        xa = np.array(x)
        n = len(xa)
        s = sum(np.sign(xa[j] - xa[i]) for i in range(n) for j in range(i + 1, n))
        _, tp = np.unique(xa, return_counts=True)
        var = (n * (n - 1) * (2 * n + 5) - np.sum(tp * (tp - 1) * (2 * tp + 5))) / 18
        z = (s - 1) / np.sqrt(var) if s > 0 else (s + 1) / np.sqrt(var) if s < 0 else 0.0
        if s != r.s or abs(var - r.var_s) > 1e-9 * max(1, var) or abs(z - r.z) > 1e-12 * max(1, abs(z)):
            sys.exit(f"mann-kendall {name}: pymannkendall disagrees with the textbook formula")
    print(f"  ok: mann-kendall: s, var_s, z of {len(out)} series match the textbook formulas")
    return out


# ---------------------------------------------------------------------------- main


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)

    print("H3 resolution 8 grid")
    cells, x = read_h3()
    n = len(cells)
    print(f"  {n} cells, {int(x.sum())} incidents, {int((x == 0).sum())} zero cells")
    ring_lists = {}
    for k in (1, 2, 3):
        lists = h3_ring_lists(cells, k)
        ring_lists[k] = lists
        zs, checks = gistar(x, lists, f"gistar h3 k={k}")
        write(
            f"gistar_h3_r8_k{k}.json",
            {
                "provenance": provenance(H3_CSV),
                "call": "esda.G_Local(y, w, transform='B', star=True, permutations=0).Zs",
                "weights": f"binary; j in h3.grid_disk(cell, {k}) and in the grid, j != i "
                "(esda adds the self weight 1 because star=True)",
                "k": k,
                "n": n,
                "checks": checks,
                "cells": cells,
                "w_i": [len(nb) + 1 for nb in lists],
                "z": floats(zs),
            },
        )
    write(
        "gistar_psim_h3_r8_k1.json",
        {
            "provenance": provenance(H3_CSV),
            "call": f"esda.G_Local(y, w, transform='B', star=True, permutations={PERMUTATIONS}, "
            f"seed={GI_SEED}, n_jobs=1).p_sim",
            "weights": "as gistar_h3_r8_k1.json",
            "permutations": PERMUTATIONS,
            "n": n,
            **gistar_psim(x, ring_lists[1], "gistar p_sim h3 k=1"),
        },
    )
    moran, checks = local_moran(x, ring_lists[1], "local moran h3 k=1")
    write(
        "local_moran_h3_r8_k1.json",
        {
            "provenance": provenance(H3_CSV),
            "call": f"esda.Moran_Local(y, w, transformation='r', permutations={PERMUTATIONS}, "
            f"seed={MORAN_SEED}, n_jobs=1, keep_simulations=True)",
            "weights": "j in h3.grid_disk(cell, 1) and in the grid, j != i; row-standardised",
            "permutations": PERMUTATIONS,
            "seed": MORAN_SEED,
            "n": n,
            "checks": checks,
            "cells": cells,
            **moran,
        },
    )

    print("LSOA queen contiguity")
    codes, y, shapes = read_lsoa()
    n = len(codes)
    print(f"  {n} LSOAs, {int(y.sum())} incidents")
    lists, qinfo = queen_lists(shapes)
    zs, checks = gistar(y, lists, "gistar lsoa queen")
    write(
        "gistar_lsoa_queen.json",
        {
            "provenance": provenance(LSOA_CSV, LSOA_GEOJSON),
            "call": "esda.G_Local(y, w, transform='B', star=True, permutations=0).Zs",
            "weights": "libpysal.weights.Queen.from_iterable(shapely shapes, ids=range(n)) "
            "(shared vertex, self excluded; esda adds the self weight 1 because star=True)",
            "n": n,
            "queen": qinfo,
            "checks": checks,
            "codes": codes,
            "neighbours": lists,
            "z": floats(zs),
        },
    )
    write(
        "gistar_psim_lsoa_queen.json",
        {
            "provenance": provenance(LSOA_CSV, LSOA_GEOJSON),
            "call": f"esda.G_Local(y, w, transform='B', star=True, permutations={PERMUTATIONS}, "
            f"seed={GI_SEED}, n_jobs=1).p_sim",
            "weights": "as gistar_lsoa_queen.json",
            "permutations": PERMUTATIONS,
            "n": n,
            **gistar_psim(y, lists, "gistar p_sim lsoa queen"),
        },
    )
    moran, checks = local_moran(y, lists, "local moran lsoa queen")
    write(
        "local_moran_lsoa_queen.json",
        {
            "provenance": provenance(LSOA_CSV, LSOA_GEOJSON),
            "call": f"esda.Moran_Local(y, w, transformation='r', permutations={PERMUTATIONS}, "
            f"seed={MORAN_SEED}, n_jobs=1, keep_simulations=True)",
            "weights": "libpysal.weights.Queen.from_iterable(shapely shapes, ids=range(n)); "
            "row-standardised (same neighbours as gistar_lsoa_queen.json)",
            "permutations": PERMUTATIONS,
            "seed": MORAN_SEED,
            "n": n,
            "checks": checks,
            "codes": codes,
            **moran,
        },
    )

    print("Mann-Kendall")
    write(
        "mann_kendall.json",
        {
            "provenance": provenance(),
            "call": "pymannkendall.original_test(x)  (alpha=0.05)",
            "series": mann_kendall(),
        },
    )


if __name__ == "__main__":
    main()
