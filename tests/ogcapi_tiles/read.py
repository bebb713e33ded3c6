"""GDAL's OGC API - Tiles client (the `OGCAPI:` driver) against a running hotspot server.

Usage: python read.py BASE_URL ANALYST_KEY

Run with a Python that has pyogrio (its wheel carries GDAL 3.12 with the OGCAPI, MVT,
WMS and PNG drivers; Debian 12's GDAL 3.6 misreads OGC API - Tiles, see README). GDAL
does the discovery itself: from `/collections/{id}` it follows `tilesets-vector` or
`tilesets-map`, picks the tileset, reads its tiling scheme from `/tileMatrixSets` and
fetches the tiles through the tileset's templated `item` link. This script only opens
the collection and reports what GDAL read, as one JSON line on stdout; the Rust test
(`tests/gdal_ogc.rs::gdal_discovers_and_reads_the_ogc_api_tiles`) checks it against the
server's own features and tiles.

- Vector: `districts` at tile matrix 8, `lsoas` at 10 and `h3-8` at 9 (with the analyst
  key, so counts are exact), each feature's identifier, count and envelope in EPSG:3857.
  GDAL 3.12 compares the collection's CRS84 extent with the tile matrix set's metres for
  vector tilesets, so the extent is given in EPSG:3857 as MINX..MAXY open options.
- Raster: `hotspots` (the heatmap's map tileset) at tile matrix 9 with no key, read
  through GDAL's C API (pyogrio exposes only vector reads), and the server's PNG of one
  tile read by GDAL too, pixel for pixel.
"""

import ctypes
import glob
import json
import math
import os
import struct
import sys
import urllib.request

import pyogrio
from pyogrio import raw

BASE, KEY = sys.argv[1], sys.argv[2]
R = 6378137.0
HALF = math.pi * R


def merc(lon, lat):
    return (
        lon * math.pi / 180 * R,
        R * math.log(math.tan(math.pi / 4 + lat * math.pi / 360)),
    )


def get_json(path):
    req = urllib.request.Request(BASE + path, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def wkb_points(b):
    """Every (x, y) of a 2D WKB (multi)polygon, for its envelope."""
    out = []

    def geom(off):
        bo = "<" if b[off] == 1 else ">"
        (t,) = struct.unpack_from(bo + "I", b, off + 1)
        t %= 1000
        off += 5
        if t == 3:
            (nr,) = struct.unpack_from(bo + "I", b, off)
            off += 4
            for _ in range(nr):
                (n,) = struct.unpack_from(bo + "I", b, off)
                off += 4
                for i in range(n):
                    out.append(struct.unpack_from(bo + "dd", b, off + 16 * i))
                off += 16 * n
            return off
        if t in (4, 5, 6, 7):
            (n,) = struct.unpack_from(bo + "I", b, off)
            off += 4
            for _ in range(n):
                off = geom(off)
            return off
        if t == 1:
            out.append(struct.unpack_from(bo + "dd", b, off))
            return off + 16
        if t == 2:
            (n,) = struct.unpack_from(bo + "I", b, off)
            off += 4
            for i in range(n):
                out.append(struct.unpack_from(bo + "dd", b, off + 16 * i))
            return off + 16 * n
        raise ValueError(f"WKB type {t}")

    geom(0)
    return out


def vector(cid, zoom, id_field):
    bbox = get_json(f"/collections/{cid}")["extent"]["spatial"]["bbox"][0]
    (x0, y0), (x1, y1) = merc(bbox[0], bbox[1]), merc(bbox[2], bbox[3])
    oo = {"MINX": x0, "MINY": y0, "MAXX": x1, "MAXY": y1}
    url = f"OGCAPI:{BASE}/collections/{cid}"
    layers = layer_names(url, oo)
    meta, _, geoms, fields = raw.read(url, layer=f"Zoom level {zoom}", **oo)[:4]
    names = [str(f) for f in meta["fields"]]
    col = {n: fields[i] for i, n in enumerate(names)}
    envelopes, counts = {}, {}
    for i, g in enumerate(geoms):
        key = str(col[id_field][i])
        pts = wkb_points(bytes(g))
        e = [min(p[0] for p in pts), min(p[1] for p in pts), max(p[0] for p in pts), max(p[1] for p in pts)]
        if key in envelopes:
            o = envelopes[key]
            e = [min(o[0], e[0]), min(o[1], e[1]), max(o[2], e[2]), max(o[3], e[3])]
        envelopes[key] = e
        if "count" in col:
            c = col["count"][i]
            counts[key] = None if c is None else int(c)
    return {
        "layers": layers,
        "fields": names,
        "features": len(geoms),
        "envelopes": envelopes,
        "counts": counts,
    }


def layer_names(url, oo):
    """The layers GDAL offers for `url` (pyogrio's list_layers takes no open options)."""
    g = gdal_c()
    opts = [f"{k}={v}" for k, v in oo.items()]
    arr = (ctypes.c_char_p * (len(opts) + 1))(*[o.encode() for o in opts], None)
    ds = g.GDALOpenEx(url.encode(), 0x04 | 0x40, None, ctypes.cast(arr, ctypes.c_void_p), None)
    if not ds:
        raise RuntimeError(f"GDAL cannot open {url}: {g.CPLGetLastErrorMsg().decode()}")
    names = [g.OGR_L_GetName(g.GDALDatasetGetLayer(ds, i)).decode() for i in range(g.GDALDatasetGetLayerCount(ds))]
    g.GDALClose(ds)
    return names


def gdal_c():
    """pyogrio's own libgdal, through its C API."""
    lib = glob.glob(os.path.join(os.path.dirname(pyogrio.__file__) + ".libs", "libgdal*"))
    g = ctypes.CDLL(lib[0] if lib else "libgdal.so")
    g.GDALAllRegister()
    g.GDALOpenEx.restype = ctypes.c_void_p
    g.GDALOpenEx.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    for f in ("GDALGetRasterXSize", "GDALGetRasterYSize", "GDALGetRasterCount"):
        getattr(g, f).argtypes = [ctypes.c_void_p]
    g.GDALGetGeoTransform.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)]
    g.GDALDatasetRasterIO.argtypes = [
        ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
        ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
        ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
    ]
    g.GDALClose.argtypes = [ctypes.c_void_p]
    g.GDALDatasetGetLayerCount.argtypes = [ctypes.c_void_p]
    g.GDALDatasetGetLayer.restype = ctypes.c_void_p
    g.GDALDatasetGetLayer.argtypes = [ctypes.c_void_p, ctypes.c_int]
    g.OGR_L_GetName.restype = ctypes.c_char_p
    g.OGR_L_GetName.argtypes = [ctypes.c_void_p]
    g.CPLGetLastErrorMsg.restype = ctypes.c_char_p
    return g


def open_raster(g, name, options):
    arr = (ctypes.c_char_p * (len(options) + 1))(*[o.encode() for o in options], None)
    ds = g.GDALOpenEx(name.encode(), 0x02 | 0x40, None, ctypes.cast(arr, ctypes.c_void_p), None)
    if not ds:
        raise RuntimeError(f"GDAL cannot open {name}: {g.CPLGetLastErrorMsg().decode()}")
    return ds


def read_rgba(g, ds, xoff, yoff, size=256):
    buf = (ctypes.c_ubyte * (size * size * 4))()
    bands = (ctypes.c_int * 4)(1, 2, 3, 4)
    err = g.GDALDatasetRasterIO(ds, 0, xoff, yoff, size, size, buf, size, size, 1, 4, bands, 0, 0, 0)
    if err != 0:
        raise RuntimeError(f"RasterIO: {g.CPLGetLastErrorMsg().decode()}")
    return bytes(buf)


def raster():
    g = gdal_c()
    ds = open_raster(g, f"OGCAPI:{BASE}/collections/hotspots", ["TILEMATRIX=9", "CACHE=NO"])
    gt = (ctypes.c_double * 6)()
    g.GDALGetGeoTransform(ds, gt)
    size = (g.GDALGetRasterXSize(ds), g.GDALGetRasterYSize(ds))
    bbox = get_json("/collections/hotspots")["extent"]["spatial"]["bbox"][0]
    n = 2**9
    tile_m = 2 * HALF / n
    cx, cy = merc((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
    best = None
    # The tiles around the county's centre; the one with most paint is compared.
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            tx = int((cx + HALF) / tile_m) + dx
            ty = int((HALF - cy) / tile_m) + dy
            minx, maxy = -HALF + tx * tile_m, HALF - ty * tile_m
            fx, fy = (minx - gt[0]) / gt[1], (maxy - gt[3]) / gt[5]
            xo, yo = round(fx), round(fy)
            if abs(fx - xo) > 1e-3 or abs(fy - yo) > 1e-3:
                raise RuntimeError(f"GDAL's pixel grid is not the tiles': offset {fx}, {fy}")
            if xo < 0 or yo < 0 or xo + 256 > size[0] or yo + 256 > size[1]:
                continue
            got = read_rgba(g, ds, xo, yo)
            painted = sum(1 for a in got[3 * 65536 :] if a > 0)
            if best is None or painted > best[0]:
                best = (painted, tx, ty, got)
    g.GDALClose(ds)
    painted, tx, ty, got = best
    # The PNG is indexed (palette with alpha); GDAL's vrt:// expands it to RGBA, as its
    # WMS reader does for the tileset.
    tile = open_raster(g, f"vrt:///vsicurl/{BASE}/tiles/heatmap/9/{tx}/{ty}.png?expand=rgba", [])
    want = read_rgba(g, tile, 0, 0)
    g.GDALClose(tile)
    differing = sum(1 for a, b in zip(got, want) if a != b)
    return {
        "tile": [9, tx, ty],
        "size": size,
        "pixel_m": [gt[1], gt[5]],
        "painted": painted,
        "values": len(got),
        "differing": differing,
    }


report = {"gdal": pyogrio.__gdal_version_string__}
pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADERS": f"Authorization: Bearer {KEY}"})
report["districts"] = vector("districts", 8, "code")
report["lsoas"] = vector("lsoas", 10, "code")
report["h3-8"] = vector("h3-8", 9, "cell")
pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADERS": None})
report["heatmap"] = raster()
print(json.dumps(report))
