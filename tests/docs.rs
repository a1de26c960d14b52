//! The README and every page under docs/: each relative link names a file or folder of the
//! repository, and each `#anchor` a heading of the page it points at (GitHub's slugs). The
//! pages also keep to the project: no paths outside the repository.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every .md under docs/, recursively.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut out);
    out.sort();
    out
}

/// Markdown outside fenced code blocks and inline code spans.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            // Drop `code` spans: a backtick pair holds no link.
            let mut inside = false;
            out.extend(line.chars().filter(|&c| {
                if c == '`' {
                    inside = !inside;
                }
                !inside && c != '`'
            }));
            out.push('\n');
        }
    }
    out
}

/// The targets of `[text](target)` and `![alt](target)` links.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].split_whitespace().next().unwrap_or("").to_string());
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    prose(text).lines().filter_map(|l| l.strip_prefix('#')).map(|l| slug(l.trim_start_matches('#'))).collect()
}

/// Every broken link of `page` (`text` its contents), as "target: why".
fn broken(page: &Path, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for target in links(text) {
        if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
            continue;
        }
        let (file, anchor) = target.split_once('#').map_or((target.as_str(), None), |(f, a)| (f, Some(a)));
        let resolved = if file.is_empty() { page.to_path_buf() } else { page.parent().unwrap().join(file) };
        if !resolved.exists() {
            out.push(format!("{target}: no such file"));
            continue;
        }
        if !resolved.canonicalize().unwrap().starts_with(root().canonicalize().unwrap()) {
            out.push(format!("{target}: outside the repository"));
            continue;
        }
        if let Some(anchor) = anchor {
            let body = std::fs::read_to_string(&resolved).unwrap_or_default();
            if !anchors(&body).contains(anchor) {
                out.push(format!("{target}: no heading #{anchor}"));
            }
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_of_the_pages_resolves() {
    let mut failures = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for b in broken(&page, &text) {
            failures.push(format!("{}: {b}", page.strip_prefix(root()).unwrap().display()));
        }
    }
    assert!(failures.is_empty(), "broken links:\n{}", failures.join("\n"));
}

#[test]
fn the_checker_finds_a_missing_file_a_missing_anchor_and_a_path_outside() {
    let page = root().join("README.md");
    let text = "[a](docs/nowhere.md) [b](docs/models.md#no-such-heading) [c](../x) [d](#the-models) [e](https://x.org)\n\
                ```\n[f](inside/a/fence.md)\n```\n`[g](code/span.md)`";
    let found = broken(&page, text);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].starts_with("docs/nowhere.md"), "{found:?}");
    assert!(found[1].contains("no heading #no-such-heading"), "{found:?}");
    assert!(found[2].starts_with("../x"), "{found:?}");
}

#[test]
fn the_readme_stays_a_users_page() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(lines < 200, "README.md is {lines} lines; studies and tables belong in docs/");
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for banned in ["the issue", "../shared", "/work/"] {
            assert!(!text.to_lowercase().contains(banned), "{} mentions {banned:?}: write about the project alone", page.display());
        }
    }
}
