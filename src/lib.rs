//! wgen: train MLP GANs and VAEs entirely on the GPU with wgpu and hand-written WGSL kernels.
//!
//! Data flows one way through the layers: `gpu` (device, tensors, pipelines, dispatch) →
//! `nn` (host-side launchers of each kernel) → `models` → `train` → `cli`. `reference` holds
//! the CPU twin of every kernel under the same name; `data` and `image` sit beside.

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod data;
pub mod eval;
pub mod gpu;
pub mod image;
pub mod models;
pub mod nn;
pub mod reference;
pub mod train;
