//! Build script: tells the binary whether MapLibre GL JS can be embedded.
//!
//! The web map's own files (`web/index.html`, `web/src/*`) are always in the tree and
//! `src/main.rs` embeds them with `include_bytes!` (so editing them recompiles only the
//! binary). MapLibre GL JS comes from `npm ci` in `web/` and may be absent on a clone that
//! never ran npm: then the cfg `hotspot_maplibre` is off, the binary still serves the API
//! and tiles, and the map page says why it cannot load.
//!
//! What is watched stays small, so this script (and with it the library) reruns only when
//! MapLibre appears, changes or goes: its `package.json` when installed, else `web/`.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(hotspot_maplibre)");
    let dist = Path::new("web/node_modules/maplibre-gl/dist");
    let present = ["maplibre-gl.js", "maplibre-gl.css"]
        .iter()
        .all(|f| dist.join(f).is_file());
    if present {
        println!("cargo::rustc-cfg=hotspot_maplibre");
        println!("cargo::rerun-if-changed=web/node_modules/maplibre-gl/package.json");
    } else {
        println!("cargo::rerun-if-changed=web");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
