//! `model.safetensors`: the weights in PyTorch's layout and names (Linear weight [out, in] and
//! bias [out]; BatchNorm1d weight, bias, running_mean, running_var), f32, with metadata naming
//! the model and its configuration. Written to a temporary file, synced and renamed, so a crash
//! at any moment leaves the previous file whole.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::models::params::ParamEntry;
use crate::models::ParamLayout;

/// The tensors a checkpoint holds: every parameter, and the batch-norm running statistics (the
/// saved batch statistics are scratch for the backward pass).
pub fn exported_entries<'a>(params: &'a ParamLayout, state: &'a ParamLayout) -> impl Iterator<Item = (&'a ParamEntry, bool)> {
    params
        .entries
        .iter()
        .map(|e| (e, false))
        .chain(state.entries.iter().filter(|e| e.name.contains(".running_")).map(|e| (e, true)))
}

pub fn write_safetensors(path: &Path, params: &ParamLayout, values: &[f32], state: &ParamLayout, state_values: &[f32], metadata: HashMap<String, String>) -> Result<()> {
    let mut tensors = Vec::new();
    for (entry, in_state) in exported_entries(params, state) {
        let source = if in_state { state_values } else { values };
        let bytes: &[u8] = bytemuck::cast_slice(&source[entry.range()]);
        tensors.push((entry.name.clone(), TensorView::new(Dtype::F32, entry.shape.clone(), bytes)?));
    }
    let bytes = safetensors::tensor::serialize(tensors, Some(metadata))?;
    write_atomically(path, &bytes)
}

/// Temporary file in the same folder, fsync, rename, fsync the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("checkpoint path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).with_context(|| format!("cannot write {} (is the folder writable?)", tmp.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
    file.sync_all()?;
    drop(file);
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
    path: String,
}

impl Checkpoint {
    pub fn read(path: &Path) -> Result<Checkpoint> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| format!("cannot read checkpoint {shown}"))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{shown} is not a safetensors file ({e})"))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
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

    /// Fills flat parameter and state buffers from the checkpoint's tensors, by name.
    pub fn fill(&self, params: &ParamLayout, values: &mut [f32], state: &ParamLayout, state_values: &mut [f32]) -> Result<()> {
        for (entry, in_state) in exported_entries(params, state) {
            let (shape, data) = self
                .tensors
                .get(&entry.name)
                .with_context(|| format!("{}: missing tensor {}", self.path, entry.name))?;
            if *shape != entry.shape {
                bail!("{}: tensor {} has shape {:?}, the model needs {:?}", self.path, entry.name, shape, entry.shape);
            }
            let target = if in_state { &mut *state_values } else { &mut *values };
            target[entry.range()].copy_from_slice(data);
        }
        Ok(())
    }
}
