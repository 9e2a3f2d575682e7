//! The layout's rules (ARCHITECTURE.md), read off the source: which room may name which. A rule
//! broken here is a design regression, caught before it grows into a cycle or a god object.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Production code of every `.rs` file under `src/`: comment lines and everything from the
/// first `#[cfg(test)]` on are left out, as are `tests.rs` files.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().unwrap() != "tests.rs" {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                let code: String =
                    code.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
                out.push((path, code));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &mut out);
    out.into_iter().map(|(p, c)| (p.strip_prefix(&root).unwrap().to_path_buf(), c)).collect()
}

/// The top-level module a file belongs to (`pipeline` for `pipeline/files.rs`).
fn room(path: &Path) -> String {
    let first = path.iter().next().unwrap().to_str().unwrap();
    first.trim_end_matches(".rs").to_string()
}

/// Top-level modules each file's code names through `crate::`.
fn named(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = item.trim().split("::").next().unwrap_or_default();
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in sources() {
        let from = room(&path);
        if from == "lib" || from == "main" {
            continue;
        }
        let to = graph.entry(from.clone()).or_default();
        to.extend(named(&code).into_iter().filter(|n| *n != from));
    }
    graph
}

#[test]
fn rooms_import_each_other_without_cycles() {
    let graph = graph();
    // Depth-first search for a back edge; report the cycle's path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}\n{graph:#?}", cycle.join(" -> "));
        }
    }
}

/// Files whose code contains any of `needles`, among those `select` picks.
fn offenders(select: impl Fn(&Path) -> bool, needles: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(p, _)| select(p))
        .filter_map(|(p, code)| {
            let hits: Vec<&&str> = needles.iter().filter(|n| code.contains(**n)).collect();
            (!hits.is_empty()).then(|| format!("{}: {hits:?}", p.display()))
        })
        .collect()
}

#[test]
fn only_the_s3_destination_and_the_tables_name_the_aws_sdk_or_tokio() {
    let bad = offenders(
        |p| !p.starts_with("destination/s3") && !p.starts_with("table"),
        &["aws_sdk_s3::", "aws_config::", "aws_smithy_runtime::", "aws_smithy_types::", "tokio::", "tokio;"],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_state_rule_is_pure_logic() {
    let bad = offenders(|p| p == Path::new("ack.rs"), &["crate::", "std::fs", "std::io", "std::thread"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn formats_never_name_threads_or_the_writer() {
    let bad = offenders(
        |p| p.starts_with("formats"),
        &["crate::writer", "crate::pipeline", "crate::destination", "std::thread", "crossbeam", "std::sync::mpsc"],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn config_never_imports_format_internals() {
    let bad = offenders(|p| p.starts_with("config"), &["crate::formats", "crate::writer", "crate::pipeline"]);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_decode_thread_does_no_blocking_io() {
    // The pipeline's rooms run on the decode thread: files, listings and deletions, BATCH files
    // and S3 requests all happen on other threads.
    let bad = offenders(
        |p| p.starts_with("pipeline"),
        &["std::fs", "File::open", ".list(", ".delete(", "block_on", "std::net", "read_to_end", "read_to_string"],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn storage_receives_checked_keys_and_never_renders_them() {
    let bad = offenders(
        |p| p.starts_with("destination"),
        &["KeyTemplate", "RenderedKey", "FileContext", "push_escaped", "check_key"],
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn no_source_file_is_a_god_object() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let long: Vec<String> = sources()
        .into_iter()
        .map(|(p, _)| (std::fs::read_to_string(root.join(&p)).unwrap().lines().count(), p))
        .filter(|(n, _)| *n > 520)
        .map(|(n, p)| format!("{} ({n} lines)", p.display()))
        .collect();
    assert!(long.is_empty(), "files over ~500 lines: {long:?}");
}
