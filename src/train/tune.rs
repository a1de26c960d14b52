//! Which matmul family an adapter trains with. CPU adapters follow a fixed rule (the subgroup
//! kernels where subgroups are 8 wide, else vec4: measured on lavapipe, see `wgen bench`). On
//! any other adapter wgen times every family once on the models' layer shapes and keeps the
//! fastest, remembered per adapter, driver and wgen version in the user's cache folder: every
//! later run on that machine uses the same kernels, so a seed still repeats bit for bit.
//! `WGEN_MATMUL=tiled|vec4|subgroup` overrides; `WGEN_MATMUL=tune` times again on any adapter
//! and rewrites the entry.
//!
//! Conv layers likewise: on adapters other than CPUs each layer shape and batch is timed on
//! every path the adapter offers the first time a model uses it (`nn::ConvPlan::chosen`) and
//! remembered per adapter, driver, wgen version and matmul family; CPU adapters follow the
//! rule measured on lavapipe unless `WGEN_CONV=tune` times them (and rewrites their entries).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::gpu::{time_launches, Gpu, MatmulImpl, TunedConv};
use crate::models::linear_layers;
use crate::nn::LayerOperands;

/// Where the family in use came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatmulSource {
    /// WGEN_MATMUL named it.
    Environment,
    /// The fixed rule for CPU adapters.
    Rule,
    /// An earlier tuning on this adapter, read from this file.
    Cache(PathBuf),
    /// Timed just now; `cached` is where it was remembered (None if the cache is unwritable).
    Tuned { cached: Option<PathBuf> },
}

/// One adapter's tuning result.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    matmul: MatmulImpl,
    /// Milliseconds each family took for the forward, dX and dW of every layer once.
    ms: BTreeMap<String, f64>,
}

/// Sets `gpu.matmul` as the module documentation says, tuning if needed.
pub fn settle_matmul(gpu: &mut Gpu) -> Result<MatmulSource> {
    let wanted = std::env::var("WGEN_MATMUL").unwrap_or_default();
    if !wanted.is_empty() && wanted != "tune" {
        return Ok(MatmulSource::Environment);
    }
    let file = cache_file();
    let key = adapter_key(gpu);
    if wanted.is_empty() {
        if let Some(f) = &file {
            let entry = read_cache::<Entry>(f).remove(&key);
            if let Some(matmul) = entry.map(|e| e.matmul).filter(|m| gpu.matmul_families().contains(m)) {
                gpu.matmul = matmul;
                return Ok(MatmulSource::Cache(f.clone()));
            }
        }
        if gpu.info.device_type == wgpu::DeviceType::Cpu {
            return Ok(MatmulSource::Rule);
        }
    }
    let entry = tune(gpu)?;
    gpu.matmul = entry.matmul;
    let cached = file.filter(|f| {
        let mut all = read_cache::<Entry>(f);
        all.insert(key, entry);
        write_cache(f, &all).map_err(|e| eprintln!("wgen: matmul choice not cached: {e:#}")).is_ok()
    });
    Ok(MatmulSource::Tuned { cached })
}

/// Times every family the adapter runs on the forward, dX and dW of every layer of both models
/// at their default batch sizes, and picks the least total time: the share each layer has in a
/// training step.
fn tune(gpu: &Gpu) -> Result<Entry> {
    let mut operands = Vec::new();
    for (model, layer, inp, out) in linear_layers() {
        let batch = if model == "gan" { 64 } else { 128 };
        operands.push(LayerOperands::new(gpu, &layer, batch, inp, out)?);
    }
    let mut ms = BTreeMap::new();
    let mut best: Option<(MatmulImpl, f64)> = None;
    for family in gpu.matmul_families() {
        let fgpu = gpu.with_matmul(family);
        let mut total = 0.0;
        for op in &operands {
            for launch in &op.launches(&fgpu, family) {
                total += time_launches(&fgpu, &[launch], 3).0.as_secs_f64() * 1e3;
            }
        }
        ms.insert(format!("{family:?}").to_lowercase(), (total * 1e3).round() / 1e3);
        if best.is_none_or(|(_, t)| total < t) {
            best = Some((family, total));
        }
    }
    let (matmul, _) = best.context("the adapter runs no matmul family")?;
    Ok(Entry { matmul, ms })
}

/// Lets `gpu`'s conv layers take the plans remembered for it, and time the shapes it has none
/// for, as the module documentation says. `WGEN_CONV=implicit|im2col` keep the rule.
pub fn settle_conv(gpu: &Gpu) {
    let wanted = std::env::var("WGEN_CONV").unwrap_or_default();
    let mut tuning = gpu.conv_tuning.lock().unwrap_or_else(|e| e.into_inner());
    match wanted.as_str() {
        "tune" => tuning.tune = true,
        "" => {
            tuning.plans = conv_cache_file().and_then(|f| read_cache::<BTreeMap<String, TunedConv>>(&f).remove(&conv_key(gpu))).unwrap_or_default();
            tuning.tune = gpu.info.device_type != wgpu::DeviceType::Cpu;
        }
        _ => {}
    }
}

/// Writes the conv plans timed in this process into the cache: how many, and where (None if
/// there were none).
pub fn remember_conv(gpu: &Gpu) -> Option<(usize, Result<PathBuf>)> {
    let fresh = gpu.conv_tuning.lock().unwrap_or_else(|e| e.into_inner()).fresh_plans();
    if fresh.is_empty() {
        return None;
    }
    let count = fresh.len();
    let kept = conv_cache_file().context("no cache folder (set HOME or XDG_CACHE_HOME)").and_then(|f| {
        let mut all = read_cache::<BTreeMap<String, TunedConv>>(&f);
        all.entry(conv_key(gpu)).or_default().extend(fresh);
        write_cache(&f, &all).map(|()| f)
    });
    Some((count, kept))
}

/// The adapter's key and the matmul family: the im2col path runs the family's kernels.
fn conv_key(gpu: &Gpu) -> String {
    format!("{} | {:?}", adapter_key(gpu), gpu.matmul).to_lowercase()
}

fn conv_cache_file() -> Option<PathBuf> {
    Some(super::cache_dir()?.join("conv.json"))
}

/// Adapter, backend, driver and wgen version: a new driver or wgen may change the answer.
fn adapter_key(gpu: &Gpu) -> String {
    let i = &gpu.info;
    format!("{} | {:?} | {} {} | wgen {}", i.name, i.backend, i.driver, i.driver_info, env!("CARGO_PKG_VERSION"))
}

fn cache_file() -> Option<PathBuf> {
    Some(super::cache_dir()?.join("matmul.json"))
}

/// A missing or unreadable cache is an empty one: the worst case is one more tuning.
fn read_cache<T: serde::de::DeserializeOwned>(file: &Path) -> BTreeMap<String, T> {
    std::fs::read(file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
}

fn write_cache<T: serde::Serialize>(file: &Path, all: &BTreeMap<String, T>) -> Result<()> {
    let dir = file.parent().context("the cache file has a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    super::checkpoint::write_atomically(file, serde_json::to_string_pretty(all)?.as_bytes())
}
