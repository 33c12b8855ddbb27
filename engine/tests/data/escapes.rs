//! The escape list (`sandbox_escapes.sql`) for every door's tests: each crate's tests take
//! this file in with `#[path]`, so the list and its reading are written once.

use std::path::Path;

/// The statements of the escape list, with `{dir}` filled in.
pub fn escapes(dir: &Path) -> Vec<String> {
    include_str!("sandbox_escapes.sql")
        .split("\n-- next\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .replace("{dir}", &dir.display().to_string())
        })
        .filter(|sql| !sql.trim().is_empty())
        .collect()
}
