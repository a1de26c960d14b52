use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use crate::gpu::{Binding, Gpu, Kernel, Launch};

/// Adam's hyperparameters; `weight_decay` > 0 makes it AdamW (decoupled decay).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl AdamConfig {
    pub fn new(lr: f32, beta1: f32, beta2: f32) -> AdamConfig {
        AdamConfig { lr, beta1, beta2, eps: 1e-8, weight_decay: 0.0 }
    }

    /// (1 - beta1^t, 1 - beta2^t) in f64, as PyTorch computes them in Python floats.
    pub fn bias_corrections(&self, t: u32) -> (f32, f32) {
        let c = |b: f32| (1.0 - f64::from(b).powi(t as i32)) as f32;
        (c(self.beta1), c(self.beta2))
    }
}

/// Twin of `AdamParams` in shaders/adam.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct AdamParams {
    pub n: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// First parameter updated, a multiple of 4 (a whole vec4)
    pub offset: u32,
    pub _pad: u32,
}

/// One Adam step over the parameters `range` of the flat buffers: a whole model, or one of its
/// networks when they are updated one after the other (the GAN's D-first order).
#[allow(clippy::too_many_arguments)]
pub fn adam(
    gpu: &Gpu, label: &str, cfg: &AdamConfig, step: &wgpu::Buffer, range: std::ops::Range<usize>, param: &wgpu::Buffer, grad: &wgpu::Buffer,
    m: &wgpu::Buffer, v: &wgpu::Buffer,
) -> Launch {
    assert_eq!(range.start % 4, 0, "{label}: Adam's range starts on a whole vec4");
    let n = range.len();
    let params = AdamParams {
        n: u32_of(n),
        lr: cfg.lr,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        weight_decay: cfg.weight_decay,
        offset: u32_of(range.start),
        _pad: 0,
    };
    let bindings = [
        Binding { slot: 1, buffer: step },
        Binding { slot: 2, buffer: param },
        Binding { slot: 3, buffer: grad },
        Binding { slot: 4, buffer: m },
        Binding { slot: 5, buffer: v },
    ];
    // Per parameter 13 FLOPs (decay 2, two moments 3 and 4, the step 3 plus a sqrt) and 28
    // bytes (param, grad, m, v read; param, m, v written).
    let n64 = n as u64;
    Launch::new(gpu, Kernel::Adam, label, &params, &bindings, grid_for(gpu, n.div_ceil(4), 256)).with_cost(13 * n64, 28 * n64, format!("{n} params"))
}
