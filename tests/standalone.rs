//! The repository stands alone: a fresh clone has everything its tests, scripts and CI need.
//! The local servers come from `scripts/servers.py`; nothing may reach for a folder beside the
//! checkout (the old `shared` server scripts next to it are not part of a public clone).

use std::path::{Path, PathBuf};

/// Text of every file in the repository: `git ls-files` when this is a git checkout, else a
/// walk that skips build output. Files that are not UTF-8 (fuzz inputs) are left out.
fn files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = std::process::Command::new("git").arg("-C").arg(root).args(["ls-files", "-z"]).output();
    let paths: Vec<PathBuf> = match listed {
        Ok(out) if out.status.success() => {
            String::from_utf8(out.stdout).unwrap().split('\0').filter(|p| !p.is_empty()).map(PathBuf::from).collect()
        }
        _ => walk(root, Path::new("")),
    };
    assert!(paths.len() > 50, "found only {} files under {}", paths.len(), root.display());
    paths
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(root.join(&p)).ok()?;
            Some((p.to_string_lossy().into_owned(), text))
        })
        .collect()
}

fn walk(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join(dir)).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = dir.join(&name);
        if entry.file_type().unwrap().is_dir() {
            if !matches!(name.as_str(), ".git" | "target" | "output" | "build" | ".meltano") {
                out.extend(walk(root, &path));
            }
        } else {
            out.push(path);
        }
    }
    out
}

fn offenders(needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files() {
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle.as_str())) {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn nothing_names_the_shared_server_scripts() {
    // Built from pieces, so this file does not name them itself.
    let shared = "shared";
    let needles = [
        format!("../{shared}"),
        format!("{shared}/s3-server"),
        format!("\"{shared}\", \"s3-server\""),
        format!("s3-server/{}", "start.sh"),
    ];
    let found = offenders(&needles);
    assert!(found.is_empty(), "files that name the old server scripts outside the repository: {found:#?}");
}

#[test]
fn no_script_or_test_reaches_above_the_checkout() {
    let up = "..";
    let needles = [
        // Python: os.path.join(ROOT, <up>, ...)
        format!("ROOT, \"{up}\""),
        // Rust: concat!(env!("CARGO_MANIFEST_DIR"), "/<up>/...")
        format!("CARGO_MANIFEST_DIR\"), \"/{up}/"),
        // shell: "$(dirname "$0")/<up>/<up>/..."
        format!("\"$0\")/{up}/{up}"),
    ];
    let found = offenders(&needles);
    assert!(found.is_empty(), "files that reach outside the repository: {found:#?}");
}

#[test]
fn the_servers_the_tests_start_come_from_the_repository() {
    let common = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common/mod.rs")).unwrap();
    assert!(
        common.contains("\"/scripts/servers.py\""),
        "tests/common/mod.rs starts its servers with scripts/servers.py"
    );
    assert!(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/servers.py")).is_file());
    let test_sh = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test.sh")).unwrap();
    assert!(test_sh.contains("python3 scripts/servers.py stop"), "scripts/test.sh stops the servers it started");
}
