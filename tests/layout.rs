//! The code's shape, as docs/architecture.md states it: the CPU twins in `src/reference/` serve
//! the tests alone, files import each other one way, and no file or function grows past what
//! a reader holds at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 450;
const MAX_FN_LINES: usize = 80;

fn src() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
}

/// (module path such as `models::gan`, file) of every .rs file under `src/` but main.rs.
fn modules() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| {
            let rel = f.strip_prefix(src()).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            (parts.join("::"), f)
        })
        .collect()
}

/// The code of a file without its `#[cfg(test)]` module and comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The modules a file names: `crate::a::b` paths and `super::`/`self::` paths, resolved, each
/// cut to the longest prefix that is a module.
fn imports(module: &str, is_mod_file: bool, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let here: Vec<&str> = if module.is_empty() { Vec::new() } else { module.split("::").collect() };
    // A `mod.rs` is its folder's module; a plain file's `super` is its parent.
    let parent = if is_mod_file || here.is_empty() { here.len().saturating_sub(1) } else { here.len() - 1 };
    let anchors = ["crate::", "super::", "self::"].map(|p| text.match_indices(p).map(|(at, p)| (at, p.to_string())).collect::<Vec<_>>());
    for (start, prefix) in anchors.into_iter().flatten() {
        let boundary = start == 0 || !text[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if !boundary {
            continue;
        }
        let tail = &text[start + prefix.len()..];
        let base: Vec<&str> = match prefix.as_str() {
            "crate::" => Vec::new(),
            "super::" => here[..parent.min(here.len())].to_vec(),
            _ => here.clone(),
        };
        let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        for seg in tail.split("::") {
            let name: String = seg.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if name.is_empty() || name != seg {
                if !name.is_empty() {
                    path.push(name);
                }
                break;
            }
            path.push(name);
        }
        while !path.is_empty() && !known.contains(&path.join("::")) {
            path.pop();
        }
        let target = path.join("::");
        if !path.is_empty() && target != module {
            out.insert(target);
        }
    }
    out
}

fn within(inner: &str, outer: &str) -> bool {
    outer.is_empty() || inner == outer || inner.starts_with(&format!("{outer}::"))
}

/// Import edges between files; a folder's `mod.rs` and the files inside it are one idea, so
/// edges between a module and its own submodules do not count.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let known: BTreeSet<String> = mods.iter().map(|(m, _)| m.clone()).filter(|m| !m.is_empty()).collect();
    let mut g = BTreeMap::new();
    for (module, path) in &mods {
        if module.is_empty() {
            continue;
        }
        let is_mod_file = path.ends_with("mod.rs");
        let edges = imports(module, is_mod_file, &code(path), &known)
            .into_iter()
            .filter(|t| !within(t, module) && !within(module, t))
            .collect();
        g.insert(module.clone(), edges);
    }
    g
}

/// A cycle of the graph, if any, as the modules along it.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(n: &str, g: &BTreeMap<String, BTreeSet<String>>, state: &mut BTreeMap<String, u8>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    return Some(stack[at..].iter().cloned().chain([m.clone()]).collect());
                }
                0 => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// (name, first line, lines) of every `fn` whose body ends at its own indentation.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let after = ["pub fn ", "fn ", "pub(crate) fn ", "pub(super) fn ", "async fn ", "pub async fn "].iter().find_map(|p| trimmed.strip_prefix(p));
        let Some(after) = after else { continue };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| l.trim_end() == close) {
            out.push((name, i + 1, end + 2));
        }
    }
    out
}

#[test]
fn no_production_module_imports_the_reference_twins() {
    for (module, path) in modules() {
        if within(&module, "reference") || module.is_empty() {
            continue;
        }
        let text = code(&path);
        let named = text.match_indices("reference::").any(|(at, _)| !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
        assert!(!named, "{} uses reference/: the CPU twins are for the tests alone", path.display());
    }
}

#[test]
fn no_two_source_files_import_each_other_even_through_others() {
    let g = graph();
    assert!(g.values().map(BTreeSet::len).sum::<usize>() > 30, "the import graph looks empty: {g:?}");
    if let Some(c) = cycle(&g) {
        panic!("an import cycle: {}", c.join(" → "));
    }
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle_and_passes_a_chain() {
    let edges = |list: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in list {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(cycle(&edges(&[("a", "b"), ("b", "c")])), None);
    assert!(cycle(&edges(&[("a", "b"), ("b", "c"), ("c", "a")])).is_some());
    let known: BTreeSet<String> = ["models", "models::layers", "models::params"].map(String::from).into();
    let found = imports("models::layers", false, "use super::params::ParamLayout;\nuse crate::models::params;", &known);
    assert_eq!(found, BTreeSet::from(["models::params".to_string()]));
}

#[test]
fn every_source_file_stays_under_450_lines() {
    for (_, path) in modules() {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= MAX_FILE_LINES, "{} is {lines} lines: split it by idea", path.display());
    }
}

#[test]
fn every_function_outside_the_tests_stays_under_80_lines() {
    for (_, path) in modules() {
        let text = std::fs::read_to_string(&path).unwrap();
        for (name, line, lines) in functions(text.split("#[cfg(test)]").next().unwrap()) {
            assert!(lines <= MAX_FN_LINES, "{}:{line}: fn {name} is {lines} lines: split it into named phases", path.display());
        }
    }
}
