//! The README's settings and macro tables are the ones the binary documents in `--about`.
//! Regenerate them with `UPDATE_README=1 cargo test --test docs`.

fn section(readme: &str, name: &str) -> (usize, usize) {
    let marker = format!("<!-- {name}:start -->\n");
    let start = readme.find(&marker).expect("start marker") + marker.len();
    let end = readme.find(&format!("<!-- {name}:end -->")).expect("end marker");
    (start, end)
}

#[test]
fn readme_tables_match_the_binary() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let mut readme = std::fs::read_to_string(path).unwrap();
    let update = std::env::var_os("UPDATE_README").is_some();
    for (name, table) in
        [("settings", target_s3::cli::settings_markdown()), ("macros", target_s3::cli::macros_markdown())]
    {
        let (start, end) = section(&readme, name);
        if update {
            readme.replace_range(start..end, &table);
        } else {
            assert_eq!(
                readme[start..end],
                table,
                "README {name} table is stale: run UPDATE_README=1 cargo test --test docs"
            );
        }
    }
    if update {
        std::fs::write(path, readme).unwrap();
    }
}

#[test]
fn readme_quick_start_commands_exist() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(
            "cargo run --release -- --config sample_streams/config.json --input sample_streams/sample.singer"
        )
    );
    assert!(readme.contains("bash scripts/test.sh"));
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "bash scripts/test.sh"), ".ci/run runs the README's test command");
}
