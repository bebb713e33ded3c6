"""QGIS (PyQGIS, headless) against a running hotspot server, as a partner's desktop would.

Loads an OGC API - Features layer through an HTTP Basic auth configuration (the key as
the password), the public boundaries and the collection of districts, the vector tiles
(boundaries and cells) and the raster heatmap as an XYZ layer; renders each alone to a
PNG over Lancashire and over a place with no data (central London), and prints one
JSON object of what it saw for tests/gdal_ogc.rs to check:

    python3 tests/qgis/load_and_render.py http://HOST:PORT KEY OUT_DIR

QGIS is not asked to judge anything here: the script reports, the Rust test asserts.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# A fresh profile and auth database: nothing of the machine's own QGIS is read.
PROFILE = tempfile.mkdtemp(prefix="hotspot-qgis-")
os.environ["QGIS_AUTH_DB_DIR_PATH"] = PROFILE
os.environ["QGIS_CUSTOM_CONFIG_PATH"] = PROFILE

from qgis.core import (  # noqa: E402
    Qgis,
    QgsApplication,
    QgsAuthMethodConfig,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
    QgsVectorTileLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402

base, key, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]

app = QgsApplication([], False)
app.initQgis()

auth = QgsApplication.authManager()
auth.setPasswordHelperEnabled(False)
if not auth.setMasterPassword("hotspot-test-master", True):
    raise SystemExit("could not set the QGIS master password")
cfg = QgsAuthMethodConfig()
cfg.setName("hotspot partner")
cfg.setMethod("Basic")
cfg.setConfig("username", "partner")
cfg.setConfig("password", key)
ok = auth.storeAuthenticationConfig(cfg)
if isinstance(ok, tuple):
    ok = ok[0]
if not ok:
    raise SystemExit("could not store the Basic auth configuration")

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
MERCATOR = QgsCoordinateReferenceSystem("EPSG:3857")
context = QgsProject.instance().transformContext()


def oapif(typename, authcfg=None):
    uri = f"url='{base}' typename='{typename}' restrictToRequestBBOX='1'"
    if authcfg:
        uri += f" authcfg='{authcfg}'"
    return QgsVectorLayer(uri, typename, "OAPIF")


def features_of(layer):
    n = 0
    inside = 0
    to_wgs84 = QgsCoordinateTransform(layer.crs(), WGS84, context)
    for f in layer.getFeatures():
        n += 1
        g = f.geometry()
        if g.isNull():
            continue
        c = to_wgs84.transform(g.boundingBox().center())
        if -3.3 <= c.x() <= -1.9 and 53.4 <= c.y() <= 54.3:
            inside += 1
    return {"valid": layer.isValid(), "features": n, "in_lancashire": inside}


def render(layer, west, south, east, north, name):
    """Renders the layer alone on a transparent background: the set of painted pixels
    (every second pixel, both ways) and the render job's errors."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(MERCATOR)
    box = QgsCoordinateTransform(WGS84, MERCATOR, context).transformBoundingBox(
        QgsRectangle(west, south, east, north)
    )
    settings.setExtent(box)
    settings.setOutputSize(QSize(384, 384))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(os.path.join(out_dir, f"{name}.png"))
    painted = {
        (x, y)
        for y in range(0, image.height(), 2)
        for x in range(0, image.width(), 2)
        if image.pixelColor(x, y).alpha() > 0
    }
    errors = [e.message for e in job.errors()]
    return painted, errors


def summary(painted, errors, county=None):
    """What the Rust test checks of one render: how much is painted and, against the
    districts as QGIS drew them from OGC API - Features, how much of it lies on them
    (and of them is covered: the intersection over the union)."""
    out = {"painted": len(painted), "sampled": 192 * 192, "errors": errors}
    if county is not None and painted:
        both = len(painted & county)
        out["on_districts"] = both / len(painted)
        out["iou_districts"] = both / len(painted | county)
    return out


LANCS = (-3.15, 53.45, -2.0, 54.25)
LONDON = (-0.25, 51.45, 0.0, 51.6)

report = {"qgis": Qgis.QGIS_VERSION}

partner = oapif("patrol", cfg.id())
report["patrol_basic_auth"] = features_of(partner)
no_key = oapif("patrol")
report["patrol_no_key"] = {"valid": no_key.isValid(),
                              "features": sum(1 for _ in no_key.getFeatures()) if no_key.isValid() else 0}
wrong = QgsAuthMethodConfig()
wrong.setName("wrong key")
wrong.setMethod("Basic")
wrong.setConfig("username", "partner")
wrong.setConfig("password", "not-" + key)
auth.storeAuthenticationConfig(wrong)
bad = oapif("patrol", wrong.id())
report["patrol_wrong_key"] = {"valid": bad.isValid(),
                              "features": sum(1 for _ in bad.getFeatures()) if bad.isValid() else 0}

districts = oapif("districts")
report["districts"] = features_of(districts)
county, errors = render(districts, *LANCS, "districts-lancashire")
report["districts_render"] = {
    "lancashire": summary(county, errors),
    "london": summary(*render(districts, *LONDON, "districts-london")),
}

for name in ("boundaries", "cells"):
    vt = QgsVectorTileLayer(
        f"type=xyz&url={base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt&zmin=0&zmax=14", name
    )
    report[f"{name}_tiles"] = {
        "valid": vt.isValid(),
        "lancashire": summary(*render(vt, *LANCS, f"{name}-lancashire"), county),
        "london": summary(*render(vt, *LONDON, f"{name}-london")),
    }

heat = QgsRasterLayer(
    f"type=xyz&url={base}/tiles/heatmap/{{z}}/{{x}}/{{y}}.png&zmin=6&zmax=15", "heatmap", "wms"
)
report["heatmap"] = {
    "valid": heat.isValid(),
    "lancashire": summary(*render(heat, *LANCS, "heatmap-lancashire"), county),
    "london": summary(*render(heat, *LONDON, "heatmap-london")),
}

print(json.dumps(report), flush=True)
# QGIS 3.22's exitQgis() can crash tearing down the network threads (exit 139 after
# everything is done); the report is out, so leave without it.
os._exit(0)
