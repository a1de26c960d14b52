//! `wgen compare RUN...`: the sample-quality table of finished runs, from their metrics.jsonl
//! (the scores `--eval-every` wrote), one row per run and epoch, then the mean per variant.
//! Runs named `VARIANT-seedN` are grouped by VARIANT.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{Map, Value};

use crate::eval::{effective_classes, smallest_share};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run folders (runs/NAME), each trained with --eval-every.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// The epochs to show, comma-separated [default: every scored epoch].
    #[arg(long, value_delimiter = ',')]
    epochs: Vec<u32>,
}

struct Row {
    variant: String,
    run: String,
    epoch: u32,
    record: Map<String, Value>,
}

fn records(dir: &Path) -> Result<Vec<Map<String, Value>>> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {} (is {} a run folder?)", path.display(), dir.display()))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// `d-first-seed2` → `d-first`; a name without a seed is its own variant.
fn variant(name: &str) -> &str {
    match name.rsplit_once("-seed") {
        Some((v, seed)) if seed.chars().all(|c| c.is_ascii_digit()) && !seed.is_empty() => v,
        _ => name,
    }
}

pub fn run(a: &CompareArgs) -> Result<i32> {
    let mut rows = Vec::new();
    for dir in &a.runs {
        let run = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        for record in records(dir)? {
            let epoch = record.get("epoch").and_then(Value::as_u64).unwrap_or(0) as u32;
            if record.contains_key("fd") && (a.epochs.is_empty() || a.epochs.contains(&epoch)) {
                rows.push(Row { variant: variant(&run).to_string(), run: run.clone(), epoch, record });
            }
        }
    }
    if rows.is_empty() {
        bail!("no scored epochs in these runs: train them with --eval-every N (the default when a classifier is at hand)");
    }
    let f = |r: &Map<String, Value>, k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    // Conditional runs add how often a sample is classified as the class it asked for.
    let conditional = rows.iter().any(|r| r.record.contains_key("class_agreement"));
    let (asked_head, asked_rule) = if conditional { (" asked-for class (%) |", " ---: |") } else { ("", "") };
    let percent = |v: f64| if v.is_finite() { format!("{:.1}", 100.0 * v) } else { "–".to_string() };
    let asked = |r: &Map<String, Value>| if conditional { format!(" {} |", percent(f(r, "class_agreement"))) } else { String::new() };
    println!("| run | epoch | FD | IS | classes ≥ 5% | smallest class (%) | effective classes | shares of 0–9 (%) | D(x) | D(G(z)) |{asked_head}");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |{asked_rule}");
    for row in &rows {
        let r = &row.record;
        let shares = shares(r);
        println!(
            "| {} | {} | {:.1} | {:.2} | {} | {:.1} | {:.2} | {} | {:.3} | {:.3} |{}",
            row.run,
            row.epoch,
            f(r, "fd"),
            f(r, "inception_score"),
            f(r, "modes"),
            100.0 * smallest_share(&shares),
            effective_classes(&shares),
            shares.iter().map(|v| format!("{:.0}", 100.0 * v)).collect::<Vec<_>>().join(" "),
            f(r, "d_real"),
            f(r, "d_fake"),
            asked(r)
        );
    }
    let mut groups: BTreeMap<(String, u32), Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        groups.entry((row.variant.clone(), row.epoch)).or_default().push(row);
    }
    println!();
    let (asked_head, asked_rule) = if conditional { (" mean asked-for class (%) | lowest (%) |", " ---: | ---: |") } else { ("", "") };
    println!("| variant | epoch | runs | mean FD | mean IS | fewest classes ≥ 5% | smallest class share (%) | fewest effective classes |{asked_head}");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |{asked_rule}");
    for ((variant, epoch), group) in &groups {
        let n = group.len() as f64;
        let mean = |k: &str| group.iter().map(|r| f(&r.record, k)).sum::<f64>() / n;
        let fewest = group.iter().map(|r| f(&r.record, "modes")).fold(f64::INFINITY, f64::min);
        let smallest = group.iter().map(|r| smallest_share(&shares(&r.record))).fold(f64::INFINITY, f64::min);
        let fewest_effective = group.iter().map(|r| effective_classes(&shares(&r.record))).fold(f64::INFINITY, f64::min);
        let asked = if conditional {
            let lowest = group.iter().map(|r| f(&r.record, "class_agreement")).fold(f64::INFINITY, f64::min);
            format!(" {} | {} |", percent(mean("class_agreement")), percent(lowest))
        } else {
            String::new()
        };
        println!(
            "| {variant} | {epoch} | {} | {:.1} | {:.2} | {fewest} | {:.1} | {fewest_effective:.2} |{asked}",
            group.len(),
            mean("fd"),
            mean("inception_score"),
            100.0 * smallest
        );
    }
    Ok(0)
}

/// A record's class shares (empty where it has none).
fn shares(r: &Map<String, Value>) -> Vec<f64> {
    r.get("class_shares").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default()
}
