//! docs/x-api.md is the X API contract: every endpoint the client calls has
//! a row, and every test a row names exists.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `"GET /…"` / `"POST /…"` literal in the client's source.
fn called_endpoints() -> Vec<String> {
    let source = std::fs::read_to_string(repo().join("xapi/src/client.rs")).unwrap();
    let mut found = Vec::new();
    for verb in ["GET", "POST", "PUT", "DELETE"] {
        let opening = format!("\"{verb} /");
        let mut rest = source.as_str();
        while let Some(at) = rest.find(&opening) {
            let tail = &rest[at + 1..];
            let end = tail.find('"').unwrap();
            found.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The table's rows: (endpoint, cells).
fn rows() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(repo().join("docs/x-api.md")).unwrap();
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect();
            (cells[0].trim_matches('`').to_string(), cells)
        })
        .collect()
}

fn sources_under(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(std::fs::read_to_string(path).unwrap());
        }
    }
}

#[test]
fn every_endpoint_the_client_calls_has_a_row_with_a_page_and_tests_that_exist() {
    let called = called_endpoints();
    assert!(called.len() >= 8, "{called:?}");
    let rows = rows();
    let documented: Vec<&str> = rows.iter().map(|(e, _)| e.as_str()).collect();
    for endpoint in &called {
        assert!(
            documented.contains(&endpoint.as_str()),
            "{endpoint} is called but has no row in docs/x-api.md"
        );
    }
    for e in &documented {
        assert!(
            called.iter().any(|c| c == e),
            "{e} has a row but is never called"
        );
    }
    let mut sources = Vec::new();
    for dir in ["tests/tests", "action/tests", "operator/src", "xapi"] {
        sources_under(&repo().join(dir), &mut sources);
    }
    for (endpoint, cells) in &rows {
        assert_eq!(cells.len(), 9, "{endpoint}: nine columns");
        assert!(!cells[6].is_empty(), "{endpoint}: the reference page");
        let tests: Vec<&str> = cells[8].split(", ").map(|t| t.trim_matches('`')).collect();
        assert!(
            !tests.is_empty() && !tests[0].is_empty(),
            "{endpoint}: tests"
        );
        for test in tests {
            let name = test.rsplit("::").next().unwrap();
            let defined = format!("fn {name}(");
            assert!(
                sources.iter().any(|s| s.contains(&defined)),
                "{endpoint}: test {test} does not exist"
            );
        }
    }
}
