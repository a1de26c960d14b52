//! How the splits reach the GPU: the test split whole, the training split whole where it fits
//! one storage binding, else streamed (`data::DeviceSplit`), fed the rows of each submit.

use anyhow::{bail, Result};

use super::TrainConfig;
use crate::data::{self, DeviceSplit};
use crate::gpu::Gpu;
use crate::nn::Step;

/// The test split, whole on the GPU: every evaluation reads it at once.
pub fn upload_test(gpu: &Gpu, dataset: &data::Dataset) -> Result<DeviceSplit> {
    let bytes = dataset.test.images.len() as u64;
    if gpu.check_binding_size("test.pixels", bytes).is_err() {
        let limit = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
        bail!(
            "the test split of {} ({} images, {} MiB) does not fit one storage binding of {} ({} MiB; training images stream, test images do not): train at a smaller --size, or on a folder with fewer images",
            dataset.source,
            dataset.test.count,
            bytes.div_ceil(1 << 20),
            gpu.adapter_name(),
            limit >> 20
        );
    }
    Ok(DeviceSplit::upload(gpu, "test", &dataset.test)?)
}

/// The training split, whole on the GPU where it fits one storage binding and `--stream` is
/// not asked for, else streamed one submit ahead through a ring of two submits' batches.
pub fn upload_training(gpu: &Gpu, cfg: &TrainConfig, train: data::Split) -> Result<DeviceSplit> {
    Ok(DeviceSplit::for_training(gpu, train, 2 * cfg.steps_per_submit * cfg.batch, cfg.stream)?)
}

/// What a streamed training split's run says of it.
pub(super) fn streaming_note(cfg: &TrainConfig, train: &DeviceSplit, bytes: usize) -> Option<String> {
    let (window, _) = train.streamed()?;
    let why = if cfg.stream { "as --stream asks" } else { "more than one storage binding holds" };
    Some(format!("streaming the {} MiB of training images from host memory ({why}) through a ring of {window} images", bytes.div_ceil(1 << 20)))
}

/// The rows of the epoch each of `steps` reads, adjacent batches joined.
pub fn batch_rows(steps: &[Step], batch: usize) -> Vec<std::ops::Range<usize>> {
    let mut rows: Vec<std::ops::Range<usize>> = Vec::new();
    for start in steps.iter().map(|s| s.batch_start as usize) {
        match rows.last_mut() {
            Some(last) if last.end == start => last.end += batch,
            _ => rows.push(start..start + batch),
        }
    }
    rows
}
