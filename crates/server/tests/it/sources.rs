//! Checks on the sources themselves.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A WeChat path is written once, in its typed definition (`crates/proto/src/api`):
/// the gateway and the sandbox read `E::PATH` (or a named page constant). Their
/// sources, unit tests aside, hold no WeChat path literal, plain or after a `{}` base.
#[test]
fn no_wechat_path_is_written_outside_its_definition() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let literal =
        regex::Regex::new(r#""(\{\})?/(cgi-bin|sns|wxa|connect|datacube|card)/"#).unwrap();
    // The sandbox's own consent form (WeChat's is internal to its page).
    let allowed = ["pub const DECIDE_PAGE: &str = \"/connect/oauth2/decide\";"];
    let mut files = Vec::new();
    for dir in ["crates/server/src", "crates/sandbox/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "{}", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests (the last module of a file) may name paths as inputs.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let comment = line.trim_start().starts_with("//");
            if !comment && literal.is_match(line) && !allowed.contains(&line.trim()) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "WeChat paths outside crates/proto/src/api:\n{}",
        found.join("\n")
    );
}
