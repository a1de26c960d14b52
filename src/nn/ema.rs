use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use crate::gpu::{Binding, Gpu, Kernel, Launch};

/// Twin of `EmaParams` in shaders/ema.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct EmaParams {
    pub n: u32,
    /// First value averaged, a multiple of 4 (a whole vec4)
    pub offset: u32,
    pub decay: f32,
    pub _pad: u32,
}

/// Moves `average[range]` towards `value[range]` by 1 - min(decay, t / (9 + t)) at the step's
/// t: an average of the weights over training that sampling can use instead of the last ones.
pub fn ema(gpu: &Gpu, label: &str, decay: f32, step: &wgpu::Buffer, range: std::ops::Range<usize>, average: &wgpu::Buffer, value: &wgpu::Buffer) -> Launch {
    assert_eq!(range.start % 4, 0, "{label}: the average's range starts on a whole vec4");
    let n = range.len();
    let params = EmaParams { n: u32_of(n), offset: u32_of(range.start), decay, _pad: 0 };
    let bindings = [Binding { slot: 1, buffer: step }, Binding { slot: 2, buffer: average }, Binding { slot: 3, buffer: value }];
    // Per value 3 FLOPs (difference, product, sum) and 12 bytes (average and value read, average
    // written).
    let n64 = n as u64;
    Launch::new(gpu, Kernel::Ema, label, &params, &bindings, grid_for(gpu, n.div_ceil(4), 256)).with_cost(3 * n64, 12 * n64, format!("{n} values"))
}
