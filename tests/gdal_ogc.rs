//! GDAL's OGC API - Features driver against the real server: `ogrinfo` lists every
//! collection and summarises each, and `ogr2ogr` pages through a whole collection; a
//! filter put in the `OAPIF:` URL (sent on every request, the landing page included) is
//! kept, a near-world `-spat` (over the bbox area cap) gives everything, under a low
//! rate limit GDAL is slowed to it, never refused, and default downloads of the largest
//! collections (incidents, h3-10) complete at the default limits.
//!
//! QGIS too (`qgis_loads_and_renders_every_kind_of_layer`): OGC API - Features with a
//! Basic auth configuration, the vector tiles and the XYZ heatmap, rendered headless.
//!
//! Needs `ogrinfo` and `ogr2ogr` (Debian/Ubuntu: `apt-get install gdal-bin`). Without
//! them the test fails, unless `HOTSPOT_SKIP_GDAL=1` says to skip it. The QGIS test needs
//! PyQGIS (`apt-get install --no-install-recommends qgis python3-qgis`) or
//! `HOTSPOT_SKIP_QGIS=1`.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const COLLECTIONS: [&str; 10] = [
    "districts",
    "lsoas",
    "h3-7",
    "h3-8",
    "h3-9",
    "h3-10",
    "hotspots",
    "emerging",
    "patrol",
    "incidents",
];

/// An analyst key: the test reads incident points too. GDAL sends it through
/// `GDAL_HTTP_HEADERS`, as a partner's QGIS would.
const KEY: &str = "gdal-test-analyst-key";

/// The server process, killed when dropped (also when a check panics).
struct Server {
    child: Child,
    addr: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `hotspot serve` on a free port with an empty data directory (seeded with
    /// the bundled fixtures) and waits for its "serving at" line.
    fn start() -> Server {
        Server::start_with("")
    }

    /// As [`Server::start`], with `config` (TOML) before the key in the config file.
    fn start_with(config_text: &str) -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let config = data.path().join("hotspot.toml");
        std::fs::write(
            &config,
            format!(
                "{config_text}\n[[keys]]\nname = \"gdal\"\nrole = \"analyst\"\nsha256 = \"{}\"\n",
                hotspot::serve::auth::hash_key(KEY)
            ),
        )
        .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotspot"))
            .args([
                "serve",
                "--demo",
                "sample",
                "--bind",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(&config)
            .env("HOTSPOT_DATA", data.path())
            // Debug builds tile the resolution-10 grid slowly.
            .env("HOTSPOT_REQUEST_TIMEOUT", "900")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the hotspot binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the address, then keeps draining so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("hotspot is serving at http://") {
                    let addr = rest.split('/').next().unwrap_or_default().to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        let mut server = Server {
            child,
            addr: String::new(),
            _data: data,
        };
        server.addr = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the server printed its address");
        server
    }

    fn url(&self) -> String {
        format!("OAPIF:http://{}", self.addr)
    }

    /// A plain HTTP/1.1 GET of a JSON document, with the analyst key.
    fn get_json(&self, path: &str) -> Value {
        self.get_json_as(path, KEY)
    }

    /// [`Server::get_json`] with another key.
    fn get_json_as(&self, path: &str, key: &str) -> Value {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(900)))
            .expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8(raw).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("headers");
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        serde_json::from_str(&body).expect("JSON")
    }

    fn number_matched(&self, id: &str) -> u64 {
        self.number_matched_where(id, "")
    }

    /// `numberMatched` of a collection's items under a query (`""` for none).
    fn number_matched_where(&self, id: &str, query: &str) -> u64 {
        self.get_json(&format!("/collections/{id}/items?limit=1&{query}"))["numberMatched"]
            .as_u64()
            .expect("numberMatched")
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// Runs a GDAL tool; the test fails on a non-zero exit or an ERROR line.
fn gdal(tool: &str, args: &[&str]) -> String {
    let out: Output = Command::new(tool)
        .args(args)
        .env("GDAL_HTTP_HEADERS", format!("Authorization: Bearer {KEY}"))
        .output()
        .unwrap_or_else(|e| panic!("{tool} did not run: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("ERROR"),
        "{tool} {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Whether GDAL is installed; panics with instructions when it is not and the skip is
/// not asked for.
fn have_gdal() -> bool {
    let found = Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    if std::env::var("HOTSPOT_SKIP_GDAL").as_deref() == Ok("1") {
        eprintln!("ogrinfo not found: GDAL test skipped because HOTSPOT_SKIP_GDAL=1");
        return false;
    }
    panic!(
        "ogrinfo (GDAL) is not installed: install gdal-bin (apt-get install -y gdal-bin) \
         or set HOTSPOT_SKIP_GDAL=1 to skip this test"
    );
}

fn feature_count(summary: &str) -> Option<u64> {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("Feature Count: "))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn gdal_reads_every_collection() {
    if !have_gdal() {
        return;
    }
    let server = Server::start();
    let url = server.url();

    let listing = gdal("ogrinfo", &["-ro", "-so", &url]);
    for (k, id) in COLLECTIONS.iter().enumerate() {
        assert!(
            listing.contains(&format!("{}: {id}", k + 1)),
            "{id} not listed:\n{listing}"
        );
    }

    for id in COLLECTIONS {
        let summary = gdal("ogrinfo", &["-ro", "-so", &url, id]);
        let matched = server.number_matched(id);
        assert_eq!(feature_count(&summary), Some(matched), "{id}:\n{summary}");
        assert!(summary.contains("Extent: ("), "{id}:\n{summary}");
        let geometry = if id == "incidents" {
            "Point"
        } else {
            "Polygon"
        };
        assert!(
            summary.contains(&format!("Geometry: {geometry}"))
                || summary.contains(&format!("Geometry: Multi {geometry}")),
            "{id}:\n{summary}"
        );
    }

    // A whole collection through ogr2ogr, paging by next links.
    let dir = tempfile::tempdir().expect("temp dir");
    for (page_size, name) in [(None, "h3-8.geojson"), (Some("1000"), "h3-8-1000.geojson")] {
        let out = dir.path().join(name);
        let out_s = out.to_string_lossy().into_owned();
        let mut args = vec!["-f", "GeoJSON", &out_s, &url, "h3-8"];
        let oo;
        if let Some(n) = page_size {
            oo = format!("PAGE_SIZE={n}");
            args.extend(["-oo", &oo]);
        }
        gdal("ogr2ogr", &args);
        check_export(&out, server.number_matched("h3-8"));
    }
}

fn check_export(path: &Path, matched: u64) {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("ogr2ogr output"))
        .expect("JSON");
    let features = doc["features"].as_array().expect("features");
    assert_eq!(features.len() as u64, matched, "every feature once");
    let mut cells: Vec<&str> = features
        .iter()
        .map(|f| f["properties"]["cell"].as_str().expect("cell"))
        .collect();
    cells.sort_unstable();
    cells.dedup();
    assert_eq!(cells.len() as u64, matched, "no duplicates");
    assert!(features.iter().all(|f| f["geometry"]["type"] == "Polygon"));
    assert!(features.iter().all(|f| f["properties"]["gi_z"].is_number()));
}

/// QGIS and GDAL users put a filter in the connection URL (`OAPIF:http://host/?types=…`);
/// GDAL sends it on every request, the landing page, conformance and collections
/// included, and the count and export are the filtered items'. A near-world `-spat`
/// (QGIS zoomed right out) is over the bbox area cap: clamped to the data, it gives all.
#[test]
fn gdal_keeps_a_url_filter_and_a_near_world_spat() {
    if !have_gdal() {
        return;
    }
    let server = Server::start();
    let url = server.url();
    let filter = "types=burglary";
    let filtered_url = format!("{url}/?{filter}");

    let all = server.number_matched("incidents");
    let burglaries = server.number_matched_where("incidents", filter);
    assert!(0 < burglaries && burglaries < all, "{burglaries} of {all}");
    let listing = gdal("ogrinfo", &["-ro", "-so", &filtered_url]);
    assert!(listing.contains("incidents"), "{listing}");
    let summary = gdal("ogrinfo", &["-ro", "-so", &filtered_url, "incidents"]);
    assert_eq!(feature_count(&summary), Some(burglaries), "{summary}");

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("burglaries.geojson");
    let out_s = out.to_string_lossy().into_owned();
    gdal(
        "ogr2ogr",
        &["-f", "GeoJSON", &out_s, &filtered_url, "incidents"],
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("output")).expect("JSON");
    let features = doc["features"].as_array().expect("features");
    assert_eq!(features.len() as u64, burglaries);
    assert!(
        features
            .iter()
            .all(|f| f["properties"]["type"] == "Burglary"),
        "a feature that is not a burglary"
    );

    // -spat -180 -85 180 85 is 61,200 square degrees, over the 2,500 cap.
    let spat = ["-spat", "-180", "-85", "180", "85"];
    for id in ["incidents", "h3-8"] {
        let mut args = vec!["-ro", "-so"];
        args.extend(spat);
        args.extend([url.as_str(), id]);
        let summary = gdal("ogrinfo", &args);
        assert_eq!(
            feature_count(&summary),
            Some(server.number_matched(id)),
            "{id}:\n{summary}"
        );
    }
    let out = dir.path().join("h3-8-world.geojson");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["-f", "GeoJSON", out_s.as_str()];
    args.extend(spat);
    args.extend([url.as_str(), "h3-8"]);
    gdal("ogr2ogr", &args);
    check_export(&out, server.number_matched("h3-8"));
}

/// GDAL pages as fast as it can (limit=10, one request after another) and does not retry
/// a 429 unless told to. Under a rate limit it must be slowed, not refused: with a burst
/// of 20 and 100 requests a second, `ogr2ogr` of h3-8 (about 500 pages) gets every
/// feature (without the limiter's delay it failed on its 21st request).
#[test]
fn gdal_pages_through_a_rate_limit() {
    if !have_gdal() {
        return;
    }
    let server = Server::start_with(
        "[limits]\nip_rps = 100\nip_burst = 20\nkey_rps = 100\nkey_burst = 20\n",
    );
    let url = server.url();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("h3-8-limited.geojson");
    let out_s = out.to_string_lossy().into_owned();
    let t = std::time::Instant::now();
    gdal("ogr2ogr", &["-f", "GeoJSON", &out_s, &url, "h3-8"]);
    let took = t.elapsed();
    let matched = server.number_matched("h3-8");
    check_export(&out, matched);
    // It was slowed: about a page per 10 ms past the burst.
    let pages = matched.div_ceil(10);
    assert!(
        took.as_secs_f64() >= (pages.saturating_sub(40)) as f64 / 100.0,
        "{pages} pages in {took:?}: not slowed to the sustained rate"
    );
}

/// A default `ogr2ogr` (GDAL's 10 features a page, no retry on 429) of the largest
/// collections completes at the server's default limits with every feature once: the
/// 49,030 incidents (with the analyst key, 4,903 requests) and h3-10 (about 23,000).
#[test]
fn gdal_default_downloads_of_the_largest_collections_complete() {
    if !have_gdal() {
        return;
    }
    let server = Server::start();
    let url = server.url();
    let dir = tempfile::tempdir().expect("temp dir");

    let out = dir.path().join("incidents.geojson");
    let out_s = out.to_string_lossy().into_owned();
    gdal("ogr2ogr", &["-f", "GeoJSON", &out_s, &url, "incidents"]);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("output")).expect("JSON");
    let features = doc["features"].as_array().expect("features");
    let matched = server.number_matched("incidents");
    assert!(matched > 40_000, "{matched} incidents");
    assert_eq!(features.len() as u64, matched, "every incident");
    assert!(features.iter().all(|f| f["geometry"]["type"] == "Point"));

    let out = dir.path().join("h3-10.geojson");
    let out_s = out.to_string_lossy().into_owned();
    let t = std::time::Instant::now();
    gdal("ogr2ogr", &["-f", "GeoJSON", &out_s, &url, "h3-10"]);
    eprintln!("ogr2ogr of h3-10: {:?}", t.elapsed());
    check_export(&out, server.number_matched("h3-10"));
}

/// GDAL sends a `-where` on a declared filter property to the server (`name=Preston` in
/// the items request, seen in its HTTP debug output) instead of downloading everything to
/// filter on its side, and gets the same answer as the unfiltered layer filtered by hand.
#[test]
fn gdal_sends_an_attribute_filter_to_the_server() {
    if !have_gdal() {
        return;
    }
    let server = Server::start();
    let url = server.url();
    for (id, filter, param) in [
        ("districts", "name = 'Preston'", "name=Preston"),
        ("h3-8", "gi_bin = 3", "gi_bin=3"),
    ] {
        let out = Command::new("ogrinfo")
            .args([
                "-ro", "-al", "-so", "--debug", "on", "-where", filter, &url, id,
            ])
            .env("GDAL_HTTP_HEADERS", format!("Authorization: Bearer {KEY}"))
            .output()
            .expect("ogrinfo runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("ERROR"),
            "{stdout}\n{stderr}"
        );
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("/items?") && l.contains(param)),
            "{id}: no request with {param}:\n{stderr}"
        );
        assert!(
            !stderr.contains("evaluated on client side"),
            "{id}: GDAL filtered on its side:\n{stderr}"
        );
        let want = server.number_matched_where(id, param);
        assert!(want > 0, "{id}: nothing matches {param}");
        assert_eq!(feature_count(&stdout), Some(want), "{id}:\n{stdout}");
    }
}

/// OGC API - Features Part 2: the geometries asked for in British National Grid
/// (`crs=…/EPSG/0/27700`, through OSTN15) agree with PROJ's own transformation of the
/// same features in CRS84. `ogr2ogr` reads the grid page, is told it is EPSG:27700 and
/// reprojects it to WGS84 with PROJ; each vertex must land within 5 m of the CRS84
/// page's (PROJ here has no OSTN15 grid file and falls back to a Helmert shift, good to
/// a few metres; OSTN15 itself is checked against Ordnance Survey's test points in
/// `tests/ostn15.rs`). The answer names its CRS in `Content-Crs`, and a box in the grid
/// (`bbox-crs`) selects what the same box in PROJ's WGS84 does, up to the features on
/// its edge.
#[test]
fn gdal_reprojects_the_british_national_grid_output_onto_the_crs84_one() {
    if !have_gdal() {
        return;
    }
    let server = Server::start();
    let bng = "http://www.opengis.net/def/crs/EPSG/0/27700";
    let dir = tempfile::tempdir().expect("temp dir");
    for (id, query) in [
        ("districts", "limit=100"),
        ("incidents", "limit=300&types=burglary"),
    ] {
        let plain = server.get_json(&format!("/collections/{id}/items?{query}"));
        let url = format!(
            "http://{}/collections/{id}/items?{query}&crs={}",
            server.addr,
            bng.replace(':', "%3A").replace('/', "%2F")
        );
        let out = dir.path().join(format!("{id}.geojson"));
        let out_s = out.to_string_lossy().into_owned();
        gdal(
            "ogr2ogr",
            &[
                "-f",
                "GeoJSON",
                "-s_srs",
                "EPSG:27700",
                "-t_srs",
                "EPSG:4326",
                "-lco",
                "COORDINATE_PRECISION=8",
                &out_s,
                &format!("GeoJSON:{url}"),
            ],
        );
        let back: Value =
            serde_json::from_str(&std::fs::read_to_string(&out).expect("output")).expect("JSON");
        let (a, b) = (
            plain["features"].as_array().expect("features"),
            back["features"].as_array().expect("features"),
        );
        assert!(!a.is_empty(), "{id}: no features");
        assert_eq!(a.len(), b.len(), "{id}");
        let mut worst: f64 = 0.0;
        let mut vertices = 0;
        for (fa, fb) in a.iter().zip(b) {
            assert_eq!(fa["id"], fb["id"], "{id}: same order");
            let (pa, pb) = (flatten(&fa["geometry"]), flatten(&fb["geometry"]));
            assert_eq!(pa.len(), pb.len(), "{id} {}", fa["id"]);
            for (p, q) in pa.iter().zip(&pb) {
                let dx = (p.0 - q.0) * 111_320.0 * p.1.to_radians().cos();
                let dy = (p.1 - q.1) * 110_574.0;
                worst = worst.max(dx.hypot(dy));
                vertices += 1;
            }
        }
        assert!(vertices > 100, "{id}: {vertices} vertices");
        assert!(worst < 5.0, "{id}: a vertex {worst:.2} m from PROJ's");
        // And the grid output is not the CRS84 one relabelled.
        let grid = server.get_json(&format!(
            "/collections/{id}/items?{query}&crs={}",
            bng.replace('/', "%2F").replace(':', "%3A")
        ));
        let first = flatten(&grid["features"][0]["geometry"])[0];
        assert!(
            (200_000.0..500_000.0).contains(&first.0) && (300_000.0..600_000.0).contains(&first.1),
            "{first:?}"
        );
    }
}

/// Every coordinate pair of a GeoJSON geometry, in order.
fn flatten(g: &Value) -> Vec<(f64, f64)> {
    fn walk(v: &Value, out: &mut Vec<(f64, f64)>) {
        match v.as_array() {
            Some(a) if a.len() >= 2 && a.iter().all(Value::is_number) => {
                out.push((
                    a[0].as_f64().unwrap_or(f64::NAN),
                    a[1].as_f64().unwrap_or(f64::NAN),
                ));
            }
            Some(a) => a.iter().for_each(|x| walk(x, out)),
            None => {}
        }
    }
    let mut out = Vec::new();
    walk(&g["coordinates"], &mut out);
    out
}

/// A partner's key for the QGIS test: patrol lists, no incident points.
const PARTNER_KEY: &str = "qgis-test-partner-key";

/// The Python that has PyQGIS: `HOTSPOT_QGIS_PYTHON`, else Debian's `python3` (a
/// virtualenv's python3 first on the PATH would not see `python3-qgis`).
fn qgis_python() -> Option<String> {
    let python = std::env::var("HOTSPOT_QGIS_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let found = Command::new(&python)
        .args(["-c", "import qgis.core"])
        .env("QT_QPA_PLATFORM", "offscreen")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    if std::env::var("HOTSPOT_SKIP_QGIS").as_deref() == Ok("1") {
        eprintln!("PyQGIS not found: QGIS test skipped because HOTSPOT_SKIP_QGIS=1");
        return None;
    }
    panic!(
        "{python} cannot import qgis.core: install QGIS (apt-get install -y \
         --no-install-recommends qgis python3-qgis), point HOTSPOT_QGIS_PYTHON at a Python \
         that has it, or set HOTSPOT_SKIP_QGIS=1 to skip this test"
    );
}

/// QGIS 3 itself (PyQGIS, headless), as a partner's desktop uses the server: an OGC API -
/// Features layer of the partner-only patrol list through an HTTP Basic auth
/// configuration (any user name, the key as the password), the public districts, the
/// boundary and cell vector tiles and the XYZ heatmap, each rendered alone to a PNG over
/// Lancashire and over central London (`tests/qgis/load_and_render.py` renders and
/// reports; the checks are here). QGIS's features must be the server's, no key or a
/// wrong one must give none, and the pixels must land on the county: the boundary tiles
/// cover what QGIS drew of the districts from OGC API - Features, the heatmap and cells
/// lie on it, and nothing is painted over London.
#[test]
fn qgis_loads_and_renders_every_kind_of_layer() {
    let Some(python) = qgis_python() else {
        return;
    };
    let server = Server::start_with(&format!(
        "[[keys]]\nname = \"qgis\"\nrole = \"partner\"\nsha256 = \"{}\"\n",
        hotspot::serve::auth::hash_key(PARTNER_KEY)
    ));
    let out_dir = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qgis/load_and_render.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://{}", server.addr))
        .arg(PARTNER_KEY)
        .arg(out_dir.path())
        .env("QT_QPA_PLATFORM", "offscreen")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "QGIS script failed:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report ({e}):\n{stdout}\n{stderr}"));
    eprintln!("QGIS {}", report["qgis"]);
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));

    // Features: QGIS pages the partner's patrol list through Basic auth to the end.
    let patrol =
        server.get_json_as("/collections/patrol/items?limit=1", PARTNER_KEY)["numberMatched"]
            .as_u64()
            .expect("numberMatched");
    assert!(patrol > 0);
    let basic = &report["patrol_basic_auth"];
    assert_eq!(basic["valid"], true, "{report}");
    assert_eq!(basic["features"].as_u64(), Some(patrol), "{report}");
    assert_eq!(basic["in_lancashire"].as_u64(), Some(patrol), "{report}");
    for refused in ["patrol_no_key", "patrol_wrong_key"] {
        assert_eq!(report[refused]["features"], 0, "{refused}: {report}");
    }
    let districts = server.number_matched("districts");
    assert_eq!(report["districts"]["features"].as_u64(), Some(districts));
    assert_eq!(
        report["districts"]["in_lancashire"].as_u64(),
        Some(districts)
    );

    // Pixels: every layer paints over Lancashire, without errors, and nothing over London.
    let county = num(&report["districts_render"]["lancashire"]["painted"]);
    let sampled = num(&report["districts_render"]["lancashire"]["sampled"]);
    assert!(county > 0.2 * sampled, "{report}");
    for (layer, least_on, least_iou, least_painted) in [
        ("boundaries_tiles", 0.98, 0.97, 0.9),
        ("cells_tiles", 0.75, 0.6, 0.5),
        ("heatmap", 0.85, 0.1, 0.1),
    ] {
        let l = &report[layer];
        assert_eq!(l["valid"], true, "{layer}: {report}");
        let lancs = &l["lancashire"];
        assert_eq!(lancs["errors"], serde_json::json!([]), "{layer}: {report}");
        assert!(
            num(&lancs["painted"]) > least_painted * county,
            "{layer}: {report}"
        );
        assert!(num(&lancs["on_districts"]) >= least_on, "{layer}: {report}");
        assert!(
            num(&lancs["iou_districts"]) >= least_iou,
            "{layer}: {report}"
        );
        assert_eq!(l["london"]["painted"], 0, "{layer} over London: {report}");
    }
    assert_eq!(report["districts_render"]["london"]["painted"], 0);
}

/// The Python with pyogrio (whose wheel carries GDAL 3.12): `HOTSPOT_TILES_PYTHON`, else
/// the virtualenv `scripts/test` makes (`target/interop-venv`). Debian 12's GDAL 3.6 cannot
/// be the client here: it reads a map tileset's `tileMatrixSetLimits` into a raster of the
/// wrong height and opens a collection with both kinds of tileset as neither.
fn tiles_python() -> Option<String> {
    let python = std::env::var("HOTSPOT_TILES_PYTHON").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/interop-venv/bin/python")
            .display()
            .to_string()
    });
    let found = Command::new(&python)
        .args(["-c", "import pyogrio"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(python);
    }
    if std::env::var("HOTSPOT_SKIP_OGCAPI_TILES").as_deref() == Ok("1") {
        eprintln!(
            "pyogrio not found: OGC API - Tiles test skipped because HOTSPOT_SKIP_OGCAPI_TILES=1"
        );
        return None;
    }
    panic!(
        "{python} cannot import pyogrio: run the tests with `bash scripts/test` (it makes \
         target/interop-venv), point HOTSPOT_TILES_PYTHON at a Python that has pyogrio, or \
         set HOTSPOT_SKIP_OGCAPI_TILES=1 to skip this test"
    );
}

/// Web Mercator metres of a longitude and latitude.
fn mercator(lon: f64, lat: f64) -> (f64, f64) {
    const R: f64 = 6_378_137.0;
    (
        lon.to_radians() * R,
        R * (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
            .tan()
            .ln(),
    )
}

/// Every feature of a collection (analyst), paged to the end.
fn all_features(server: &Server, id: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page = server.get_json(&format!(
            "/collections/{id}/items?limit=10000&offset={}&{query}",
            out.len()
        ));
        let got = page["features"].as_array().cloned().unwrap_or_default();
        let matched = page["numberMatched"].as_u64().expect("numberMatched") as usize;
        let empty = got.is_empty();
        out.extend(got);
        if out.len() >= matched || empty {
            return out;
        }
    }
}

/// OGC API - Tiles with GDAL's own client (the `OGCAPI:` driver of GDAL 3.12, through
/// pyogrio's wheel; `tests/ogcapi_tiles/read.py` opens and reports, the checks are here).
/// GDAL finds every tile from a collection alone: the tilesets link, the tileset, its
/// tiling scheme and the templated tile URL. What it reads must be the server's data in
/// the right place: the districts it assembles from the z8 tiles are the 14 districts,
/// each within 250 m of its OGC API - Features outline's extent (a row read as a column,
/// or a wrong tile matrix, puts them kilometres away); the z10 LSOA tiles hold every LSOA;
/// the h3-8 tiles hold every cell with incidents and its exact count (analyst key); and
/// the heatmap tile GDAL assembles from the map tileset is the server's PNG pixel for
/// pixel.
#[test]
fn gdal_discovers_and_reads_the_ogc_api_tiles() {
    let Some(python) = tiles_python() else {
        return;
    };
    let server = Server::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ogcapi_tiles/read.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://{}", server.addr))
        .arg(KEY)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "GDAL script failed:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no report ({e}):\n{stdout}\n{stderr}"));
    eprintln!("GDAL {}", report["gdal"]);

    // The zoom levels GDAL offers are the tileset's.
    for (id, first, last) in [("districts", 6, 14), ("lsoas", 10, 14), ("h3-8", 8, 16)] {
        let want: Vec<String> = (first..=last).map(|z| format!("Zoom level {z}")).collect();
        let got: Vec<String> = report[id]["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(got, want, "{id}");
    }

    // Districts: the 14, each where OGC API - Features puts it.
    let districts = all_features(&server, "districts", "");
    let env = report["districts"]["envelopes"]
        .as_object()
        .expect("envelopes");
    assert_eq!(env.len(), districts.len(), "{:?}", env.keys());
    let mut worst = 0.0f64;
    for f in &districts {
        let code = f["properties"]["code"].as_str().expect("code");
        let e = env
            .get(code)
            .unwrap_or_else(|| panic!("{code} not in the tiles"));
        let pts: Vec<(f64, f64)> = flatten(&f["geometry"])
            .into_iter()
            .map(|(x, y)| mercator(x, y))
            .collect();
        let want = [
            pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min),
            pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
            pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max),
            pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        ];
        for (i, w) in want.iter().enumerate() {
            worst = worst.max((e[i].as_f64().expect("number") - w).abs());
        }
    }
    eprintln!("districts from z8 tiles: extents within {worst:.0} m of OGC API - Features");
    assert!(worst < 250.0, "a district's extent is {worst:.0} m off");

    // LSOAs: every one is in the z10 tiles.
    let lsoas = all_features(&server, "lsoas", "skipGeometry=true&properties=code");
    let env = report["lsoas"]["envelopes"].as_object().expect("envelopes");
    let missing: Vec<&str> = lsoas
        .iter()
        .filter_map(|f| f["properties"]["code"].as_str())
        .filter(|c| !env.contains_key(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "{} LSOAs not in the tiles: {missing:?}",
        missing.len()
    );
    assert_eq!(env.len(), lsoas.len());

    // h3-8: the tiles' cells and counts are the collection's (exact, analyst).
    let cells = all_features(&server, "h3-8", "skipGeometry=true&properties=cell,count");
    let counts = report["h3-8"]["counts"].as_object().expect("counts");
    let mut with_incidents = 0;
    for f in &cells {
        let cell = f["properties"]["cell"].as_str().expect("cell");
        let n = f["properties"]["count"].as_u64().expect("count");
        if n > 0 {
            with_incidents += 1;
            assert_eq!(counts.get(cell).and_then(Value::as_u64), Some(n), "{cell}");
        } else if let Some(c) = counts.get(cell) {
            assert_eq!(c.as_u64(), Some(0), "{cell}");
        }
    }
    assert!(with_incidents > 100, "{with_incidents}");
    let known: std::collections::HashSet<&str> = cells
        .iter()
        .filter_map(|f| f["properties"]["cell"].as_str())
        .collect();
    assert!(counts.keys().all(|c| known.contains(c.as_str())));

    // The heatmap: the map tileset's z9 tile as GDAL reads it is the server's PNG.
    let h = &report["heatmap"];
    assert_eq!(h["differing"], 0, "{h}");
    assert_eq!(h["values"], 256 * 256 * 4, "{h}");
    assert!(h["painted"].as_u64().expect("painted") > 1000, "{h}");
    let px = h["pixel_m"][0].as_f64().expect("pixel size");
    assert!(
        (px - 40_075_016.685_578_5 / 512.0 / 256.0).abs() < 1e-6,
        "{h}"
    );
}
