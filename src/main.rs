use std::path::Path;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let r = hotspot::spatial::derive::derive_boundaries(Path::new(&args[1]), Path::new(&args[2])).unwrap();
    for d in r { println!("{d:?}"); }
}
