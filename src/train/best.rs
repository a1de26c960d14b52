//! `--keep-best`: beside the last epoch's model, the model of the scored epoch whose samples
//! had the lowest FD, as a GAN's last epoch is rarely its best.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use super::checkpoint::{save_model, write_atomically};
use super::{TrainConfig, Trainee};
use crate::gpu::Gpu;

/// The best epoch's model, in the run folder.
pub const BEST_FILE: &str = "model-best.safetensors";

/// The lowest FD a run has scored, and the epoch that scored it.
pub(super) struct Best {
    epoch: u32,
    fd: f64,
}

impl Best {
    /// The best of a run's records so far (a resumed run's finished epochs); the first on a tie.
    pub(super) fn of(records: &[Map<String, Value>]) -> Option<Best> {
        let scored = records.iter().filter_map(|r| Some(Best { epoch: u32::try_from(r.get("epoch")?.as_u64()?).ok()?, fd: r.get("fd")?.as_f64()? }));
        scored.reduce(|a, b| if b.fd < a.fd { b } else { a })
    }

    /// Names the epoch in the run's config.json, which a resumed run rewrites.
    pub(super) fn name_in_config(&self, out: &Path) -> Result<()> {
        let path = out.join("config.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut config: Value = serde_json::from_str(&text).with_context(|| format!("{} is unreadable", path.display()))?;
        config["best"] = json!({ "epoch": self.epoch, "fd": self.fd, "file": BEST_FILE });
        write_atomically(&path, serde_json::to_string_pretty(&config)?.as_bytes())
    }
}

/// After an epoch is scored: where its FD beats every earlier epoch's, writes its model as
/// model-best.safetensors (its epoch and FD in the file's metadata) and names the epoch in
/// config.json; the record then says which epoch is the best so far.
pub(super) fn keep_best<T: Trainee>(gpu: &Gpu, cfg: &TrainConfig, trainee: &T, best: &mut Option<Best>, record: &mut Map<String, Value>) -> Result<()> {
    let (Some(fd), Some(epoch)) = (record.get("fd").and_then(Value::as_f64), record.get("epoch").and_then(Value::as_u64)) else { return Ok(()) };
    let epoch = epoch as u32;
    if best.as_ref().is_none_or(|b| fd < b.fd) {
        let mut meta = trainee.model_metadata()?;
        meta.insert("epoch".into(), epoch.to_string());
        meta.insert("fd".into(), fd.to_string());
        save_model(gpu, &cfg.out.join(BEST_FILE), trainee.parameters(), meta)?;
        let found = Best { epoch, fd };
        found.name_in_config(&cfg.out)?;
        *best = Some(found);
    }
    let b = best.as_ref().expect("set above when there was none");
    record.insert("best_epoch".into(), json!(b.epoch));
    record.insert("best_fd".into(), json!(b.fd));
    Ok(())
}
