//! Writes the seed corpus to `fuzz/seeds/<target>/<name>` (run from anywhere):
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds`.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, seeds) in trunkline_fuzz::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes)?;
        }
        println!("wrote {}", dir.display());
    }
    Ok(())
}
