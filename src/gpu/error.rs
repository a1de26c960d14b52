//! What can go wrong opening and using a device, each with its fix.

/// Why no usable GPU device could be opened. Each message says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found{backend}. Install a Vulkan driver (on Debian/Ubuntu without a GPU: \
         `apt-get install mesa-vulkan-drivers libvulkan1` for the lavapipe CPU driver), then run \
         `wgen devices`"
    )]
    NoAdapter { backend: String },
    #[error("no adapter matches \"{wanted}\" (from --adapter or WGEN_ADAPTER); available: {available}")]
    NoMatchingAdapter { wanted: String, available: String },
    #[error("could not open a device on {adapter}: {source}")]
    RequestDevice {
        adapter: String,
        source: wgpu::RequestDeviceError,
    },
    #[error(
        "{what} needs {needed} bytes but this adapter allows at most {limit} ({limit_name}); \
         use a smaller batch or dataset"
    )]
    TooLarge {
        what: String,
        needed: u64,
        limit: u64,
        limit_name: &'static str,
    },
    #[error("reading back {what} failed: {detail}")]
    Readback { what: String, detail: String },
    #[error("the GPU device was lost ({reason}); the last checkpoint in {kept} is kept. Resume with `wgen train --resume {kept}`")]
    Lost { reason: String, kept: String },
    #[error("{what}; {fix}")]
    Unsupported { what: String, fix: String },
}
