"""Peer for the heatmap tile benchmark (benches/tiles.rs): datashader.

Renders the same 256 px Web Mercator XYZ tiles from the same points as hotspot's
heatmap, the way a datashader user serves a density raster: `Canvas.points` with a
weighted sum per pixel (binning: datashader has no kernel density), `tf.shade` with a
linear viridis ramp from 0 to the 99.5th percentile of the non-empty pixel sums of the
tile, then PNG bytes via Pillow (`to_pil().save`).

Inputs: POINTS, a CSV `x,y,w` (Web Mercator metres and the incident count at each
location), TILES, a CSV `z,x,y`, and `--ramp FILE`, hotspot's viridis table (256
`#rrggbb` lines; datashader's colorcet has no viridis). Loading the CSVs, imports and numba's first
compilation (one warm-up tile) are not timed; each tile is timed with
`time.perf_counter` from the canvas to the PNG bytes.

    python datashader_tile.py POINTS TILES --ramp FILE [--json] [--out DIR]

`--json` prints `{"peer": ..., "tiles": [{"z", "x", "y", "seconds", "bytes"}],
"p50": s, "p99": s}`; otherwise a line per zoom. `--out DIR` writes the PNGs.
"""

import argparse
import io
import json
import sys
import time
from pathlib import Path

import datashader as ds
import datashader.transfer_functions as tf
import numpy as np
import pandas as pd
from importlib.metadata import version

HALF = 20037508.342789244


def bounds(z, x, y):
    size = 2 * HALF / (1 << z)
    x0 = -HALF + x * size
    y1 = HALF - y * size
    return (x0, x0 + size), (y1 - size, y1)


def render(df, z, x, y, cmap):
    xr, yr = bounds(z, x, y)
    canvas = ds.Canvas(plot_width=256, plot_height=256, x_range=xr, y_range=yr)
    agg = canvas.points(df, "x", "y", agg=ds.sum("w"))
    values = agg.values
    nonzero = values[np.isfinite(values) & (values > 0)]
    top = float(np.percentile(nonzero, 99.5)) if nonzero.size else 1.0
    img = tf.shade(agg, cmap=cmap, how="linear", span=[0, top])
    buf = io.BytesIO()
    img.to_pil().save(buf, format="PNG")
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("points")
    ap.add_argument("tiles")
    ap.add_argument("--ramp", required=True)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    df = pd.read_csv(args.points, dtype={"x": "float64", "y": "float64", "w": "float64"})
    tiles = pd.read_csv(args.tiles).astype(int).itertuples(index=False)
    tiles = [(t.z, t.x, t.y) for t in tiles]
    cmap = [line.strip() for line in open(args.ramp) if line.strip()]
    render(df, *tiles[0], cmap)  # numba compilation
    rows = []
    for z, x, y in tiles:
        t0 = time.perf_counter()
        png = render(df, z, x, y, cmap)
        seconds = time.perf_counter() - t0
        rows.append({"z": z, "x": x, "y": y, "seconds": seconds, "bytes": len(png)})
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            Path(args.out, f"{z}-{x}-{y}.png").write_bytes(png)
    secs = np.array([r["seconds"] for r in rows])
    peer = f"datashader {version('datashader')} + pillow {version('pillow')}"
    if args.json:
        json.dump(
            {
                "peer": peer,
                "points": len(df),
                "tiles": rows,
                "p50": float(np.percentile(secs, 50)),
                "p99": float(np.percentile(secs, 99)),
            },
            sys.stdout,
        )
        print()
        return
    print(f"{peer}: {len(df)} points, {len(rows)} tiles")
    for z in sorted({r["z"] for r in rows}):
        s = np.array([r["seconds"] for r in rows if r["z"] == z])
        print(f"z {z}: p50 {np.percentile(s, 50) * 1e3:.2f} ms, p99 {np.percentile(s, 99) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
