//! `model.safetensors`: the weights in PyTorch's layout and names (Linear weight [out, in] and
//! bias [out]; BatchNorm1d weight, bias, running_mean, running_var), f32, with metadata naming
//! the model and its configuration. Written to a temporary file, synced and renamed, so a crash
//! at any moment leaves the previous file whole.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::Position;
use crate::gpu::{Gpu, GpuError};
use crate::models::classifier::Classifier;
use crate::models::gan::Gan;
use crate::models::vae::Vae;
use crate::models::params::ParamEntry;
use crate::models::{ParamLayout, Parameters};

/// The tensors a model file holds: every parameter, the batch-norm running statistics and the
/// spectral norm's u and v (the saved batch statistics are scratch for the backward pass).
pub fn exported_entries<'a>(params: &'a ParamLayout, state: &'a ParamLayout) -> impl Iterator<Item = (&'a ParamEntry, bool)> {
    let kept = |e: &&ParamEntry| e.name.contains(".running_") || e.name.ends_with("._u") || e.name.ends_with("._v");
    params.entries.iter().map(|e| (e, false)).chain(state.entries.iter().filter(kept).map(|e| (e, true)))
}

pub fn write_safetensors(path: &Path, params: &ParamLayout, values: &[f32], state: &ParamLayout, state_values: &[f32], metadata: HashMap<String, String>) -> Result<()> {
    write_atomically(path, &safetensors_bytes(params, values, state, state_values, metadata)?)
}

/// The bytes of `model.safetensors` for these values.
pub fn safetensors_bytes(params: &ParamLayout, values: &[f32], state: &ParamLayout, state_values: &[f32], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let exported: Vec<(&ParamEntry, Vec<f32>)> = exported_entries(params, state)
        .map(|(entry, in_state)| (entry, entry.export(if in_state { state_values } else { values })))
        .collect();
    let mut tensors = Vec::new();
    for (entry, data) in &exported {
        tensors.push((entry.name.clone(), TensorView::new(Dtype::F32, entry.exported_shape(), bytemuck::cast_slice(data))?));
    }
    Ok(safetensors::tensor::serialize(tensors, Some(metadata))?)
}

/// `model.safetensors` of the model on the GPU as it is now, read without blocking: what the
/// browser offers for download.
pub async fn model_safetensors(gpu: &Gpu, params: &Parameters, metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let mut values = gpu.read_async::<f32>(&params.values.buffer, 0, params.values.len()).await?;
    let mut state = gpu.read_async::<f32>(&params.state.buffer, 0, params.state.len()).await?;
    if let Some(avg) = &params.average {
        let average = gpu.read_async::<f32>(&avg.values.buffer, 0, avg.values.len()).await?;
        let average_state = gpu.read_async::<f32>(&avg.state.buffer, 0, avg.state.len()).await?;
        avg.overlay(&mut values, &mut state, &average, &average_state);
    }
    safetensors_bytes(&params.layout, &values, &params.state_layout, &state, metadata)
}

/// Temporary file in the same folder, fsync, rename, fsync the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("checkpoint path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot write {} (is the folder writable?)", tmp.display()))?;
        file.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A checkpoint read back: its metadata and tensors by name.
pub struct Checkpoint {
    pub metadata: HashMap<String, String>,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    pub path: String,
}

impl Checkpoint {
    pub fn read(path: &Path) -> Result<Checkpoint> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read checkpoint {shown}"))?;
        Checkpoint::from_bytes(&bytes, shown)
    }

    /// A checkpoint from the bytes of a safetensors file; `shown` names it in errors.
    pub fn from_bytes(bytes: &[u8], shown: String) -> Result<Checkpoint> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("{shown} is not a safetensors file ({e})"))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        let mut tensors = HashMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != Dtype::F32 {
                bail!("{shown}: tensor {name} is {:?}, wgen reads f32", view.dtype());
            }
            tensors.insert(name, (view.shape().to_vec(), bytemuck::pod_collect_to_vec::<u8, f32>(view.data())));
        }
        Ok(Checkpoint { metadata: header.metadata().clone().unwrap_or_default(), tensors, path: shown })
    }

    pub fn meta(&self, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("{}: metadata has no `{key}`; was it written by `wgen train`?", self.path))
    }

    /// Fills flat parameter and state buffers: from a checkpoint.safetensors's flat `params` and
    /// `state`, the weights as trained (G's own, where model.safetensors holds its average),
    /// else from the tensors by name.
    pub fn fill(&self, params: &ParamLayout, values: &mut [f32], state: &ParamLayout, state_values: &mut [f32]) -> Result<()> {
        if let (Some((_, flat)), Some((_, flat_state))) = (self.tensors.get("params"), self.tensors.get("state")) {
            if flat.len() != values.len() || flat_state.len() < state_values.len() {
                bail!("{}: a checkpoint of {} parameters, the model in its metadata has {}", self.path, flat.len(), values.len());
            }
            values.copy_from_slice(flat);
            let n = state_values.len();
            state_values.copy_from_slice(&flat_state[..n]);
            return Ok(());
        }
        for (entry, in_state) in exported_entries(params, state) {
            let (shape, data) = self
                .tensors
                .get(&entry.name)
                .with_context(|| format!("{}: missing tensor {}", self.path, entry.name))?;
            if *shape != entry.exported_shape() {
                bail!("{}: tensor {} has shape {:?}, the model needs {:?}", self.path, entry.name, shape, entry.exported_shape());
            }
            let target = if in_state { &mut *state_values } else { &mut *values };
            entry.import(data, target);
        }
        Ok(())
    }
}

/// A model's `initial`: its parameter and state layouts and values for a config and seed.
type Initial<C> = fn(&C, u64) -> (ParamLayout, ParamLayout, Vec<f32>, Vec<f32>);
/// A model's `new`: the model on the GPU from a config, parameter values and state.
type Build<C, M> = fn(&Gpu, &C, &[f32], &[f32]) -> Result<M, GpuError>;

/// A model built on the GPU from a file: what `wgen eval`, `wgen sample` and the judge load.
pub enum Loaded {
    Vae(Vae),
    Gan(Gan),
    Classifier(Classifier),
}

impl Checkpoint {
    /// The model this file holds, on the GPU: its kind and config from the metadata, its
    /// weights by `fill` (the trained weights from a checkpoint.safetensors).
    pub fn load(&self, gpu: &Gpu) -> Result<Loaded> {
        Ok(match self.meta("model")? {
            "vae" => Loaded::Vae(self.build(gpu, Vae::initial, Vae::new)?),
            "gan" => Loaded::Gan(self.build(gpu, Gan::initial, Gan::new)?),
            "classifier" => Loaded::Classifier(self.build(gpu, Classifier::initial, Classifier::new)?),
            other => bail!("{}: model `{other}` is none wgen knows (vae, gan, classifier); was it written by `wgen train`?", self.path),
        })
    }

    fn build<C: serde::de::DeserializeOwned, M>(&self, gpu: &Gpu, initial: Initial<C>, new: Build<C, M>) -> Result<M> {
        let kind = self.meta("model")?;
        let cfg: C = serde_json::from_str(self.meta("config")?).with_context(|| format!("{}: the {kind} config is unreadable", self.path))?;
        let (layout, state_layout, mut values, mut state) = initial(&cfg, 0);
        self.fill(&layout, &mut values, &state_layout, &mut state)?;
        Ok(new(gpu, &cfg, &values, &state)?)
    }
}

/// The weights as trained, and G's average where the model keeps one, read from the GPU once.
struct Weights {
    values: Vec<f32>,
    state: Vec<f32>,
    average: Option<(Vec<f32>, Vec<f32>)>,
}

fn read_weights(gpu: &Gpu, params: &Parameters) -> Result<Weights> {
    let average = match &params.average {
        Some(avg) => Some((avg.values.read(gpu)?, avg.state.read(gpu)?)),
        None => None,
    };
    Ok(Weights { values: params.values.read(gpu)?, state: params.state.read(gpu)?, average })
}

/// The model file at `path`, atomically: the weights for PyTorch, where the model keeps an
/// average, the average in place of the part it averages.
fn write_model(path: &Path, params: &Parameters, w: &Weights, meta: HashMap<String, String>) -> Result<()> {
    let (mut values, mut state) = (w.values.clone(), w.state.clone());
    if let (Some(avg), Some((average, average_state))) = (&params.average, &w.average) {
        avg.overlay(&mut values, &mut state, average, average_state);
    }
    write_safetensors(path, &params.layout, &values, &params.state_layout, &state, meta)
}

/// Writes the model file at `path` from the weights on the GPU (`write_model`).
pub fn save_model(gpu: &Gpu, path: &Path, params: &Parameters, meta: HashMap<String, String>) -> Result<()> {
    write_model(path, params, &read_weights(gpu, params)?, meta)
}

/// Writes `model.safetensors` (`write_model`) and `checkpoint.safetensors` (the trained weights,
/// the average, Adam's moments, the batch-norm state, the epoch's metric sums so far and the
/// position), each atomically, so an interrupted run can resume exactly.
pub fn save(gpu: &Gpu, out: &Path, params: &Parameters, sums: &[f32], at: &Position, meta: HashMap<String, String>) -> Result<()> {
    let weights = read_weights(gpu, params)?;
    write_model(&out.join("model.safetensors"), params, &weights, meta.clone())?;
    let Weights { values, state, average } = weights;
    let m = params.adam_m.read(gpu)?;
    let v = params.adam_v.read(gpu)?;
    let flat = |v: &[f32]| bytemuck::cast_slice::<f32, u8>(v).to_vec();
    let mut blobs = vec![("params", flat(&values)), ("state", flat(&state)), ("adam.m", flat(&m)), ("adam.v", flat(&v)), ("metrics", flat(sums))];
    if let Some((average, average_state)) = &average {
        blobs.extend([("average.params", flat(average)), ("average.state", flat(average_state))]);
    }
    let tensors: Vec<(String, TensorView<'_>)> = blobs
        .iter()
        .map(|(name, bytes)| Ok((name.to_string(), TensorView::new(Dtype::F32, vec![bytes.len() / 4], bytes)?)))
        .collect::<Result<_>>()?;
    let mut meta = meta;
    meta.insert("epoch".into(), at.epoch.to_string());
    meta.insert("step_in_epoch".into(), at.step_in_epoch.to_string());
    meta.insert("global_step".into(), at.global.to_string());
    let bytes = safetensors::tensor::serialize(tensors, Some(meta))?;
    write_atomically(&out.join("checkpoint.safetensors"), &bytes)
}

/// Loads a checkpoint written by `save` into the model's buffers; returns where to continue and
/// the metric sums of the unfinished epoch.
pub fn restore(gpu: &Gpu, ckpt: &Checkpoint, params: &Parameters, expected: &HashMap<String, String>) -> Result<(Position, Vec<f32>)> {
    for key in ["model", "config"] {
        if ckpt.meta(key)? != expected[key] {
            bail!("{}: written for a different {key} than this run's config.json", ckpt.path);
        }
    }
    let flat = |name: &str, len: usize| -> Result<&Vec<f32>> {
        let (shape, data) = ckpt.tensors.get(name).with_context(|| format!("{}: missing {name}; is it a wgen checkpoint?", ckpt.path))?;
        if *shape != [len] {
            bail!("{}: {name} holds {:?} values, the model needs {len}", ckpt.path, shape);
        }
        Ok(data)
    };
    let n = params.layout.len;
    params.values.write(gpu, flat("params", n)?);
    params.adam_m.write(gpu, flat("adam.m", n)?);
    params.adam_v.write(gpu, flat("adam.v", n)?);
    params.state.write(gpu, flat("state", params.state.len())?);
    if let Some(avg) = &params.average {
        avg.values.write(gpu, flat("average.params", n)?);
        avg.state.write(gpu, flat("average.state", avg.state.len())?);
    }
    let sums = ckpt.tensors.get("metrics").map(|(_, d)| d.clone()).with_context(|| format!("{}: missing metrics", ckpt.path))?;
    let number = |key: &str| -> Result<u64> { ckpt.meta(key)?.parse().with_context(|| format!("{}: `{key}` is not a number", ckpt.path)) };
    let at = Position { epoch: number("epoch")? as u32, step_in_epoch: number("step_in_epoch")? as usize, global: number("global_step")? as u32 };
    Ok((at, sums))
}
