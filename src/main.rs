//! The `hotspot` binary: a thin shell around the library (`hotspot::cli`).
//!
//! It also carries the web map's files, embedded at build time, so a copied binary serves
//! the map with no source tree beside it (`hotspot::serve::web::embed`). They are embedded
//! here rather than in the library so that editing the front end recompiles only this file.

use std::process::ExitCode;

use clap::Parser;

/// `(path under web/, bytes)` for every file the map serves.
static WEB: &[(&str, &[u8])] = &[
    ("index.html", include_bytes!("../web/index.html")),
    ("src/app.js", include_bytes!("../web/src/app.js")),
    ("src/layers.js", include_bytes!("../web/src/layers.js")),
    ("src/panels.js", include_bytes!("../web/src/panels.js")),
    ("src/state.js", include_bytes!("../web/src/state.js")),
    ("src/style.css", include_bytes!("../web/src/style.css")),
    #[cfg(hotspot_maplibre)]
    (
        "node_modules/maplibre-gl/dist/maplibre-gl.js",
        include_bytes!("../web/node_modules/maplibre-gl/dist/maplibre-gl.js"),
    ),
    #[cfg(hotspot_maplibre)]
    (
        "node_modules/maplibre-gl/dist/maplibre-gl.css",
        include_bytes!("../web/node_modules/maplibre-gl/dist/maplibre-gl.css"),
    ),
];

fn main() -> ExitCode {
    hotspot::serve::web::embed(WEB);
    let cli = hotspot::cli::Cli::parse();
    match hotspot::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotspot: error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: an error whose message already
/// quotes its source (`file: No such file or directory (os error 2)`) does not get the OS
/// text a second time.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}
