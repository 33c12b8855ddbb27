//! Builds the repository's KPI catalogue (`queries/`) into the engine, so the `bright` binary
//! carries its KPIs wherever it is copied. Writes `$OUT_DIR/queries.rs` with one
//! `include_str!` per manifest and SQL file; golden tests (`.slt`) stay out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let queries = manifest_dir.join("../queries");
    println!("cargo:rerun-if-changed={}", queries.display());
    let mut files = Vec::new();
    collect(&queries, &queries, &mut files);
    files.sort();
    let mut out = String::from("/// The catalogue files: path inside `queries/`, contents.\n");
    out.push_str("static EMBEDDED: &[(&str, &str)] = &[\n");
    for (name, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("queries.rs"), out).expect("OUT_DIR is writable");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(root, &path, files);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("sql" | "toml")
        ) {
            let name = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            files.push((name, path));
        }
    }
}
