use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `RngParams` in shaders/random.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct RngParams {
    pub n: u32,
    pub stream: u32,
    pub seed_lo: u32,
    pub seed_hi: u32,
    pub offset: u32,
    pub classes: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// Element e of the draw lands at `out.offset + e`: the draw does not depend on where it goes.
#[allow(clippy::too_many_arguments)]
fn rng_launch(gpu: &Gpu, kernel: Kernel, label: &str, step: &wgpu::Buffer, out: View<'_>, stream: u32, seed: u64, classes: usize) -> Launch {
    assert!(out.is_contiguous(), "{label}: a contiguous output");
    let n = out.rows * out.cols;
    let params = RngParams {
        n: u32_of(n),
        stream,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
        offset: u32_of(out.offset),
        classes: u32_of(classes),
        _pad0: 0,
        _pad1: 0,
    };
    let bindings = [Binding { slot: 1, buffer: step }, Binding { slot: 2, buffer: out.buffer }];
    // Philox is integer work; Box–Muller costs 4 FLOPs per normal (log, sqrt, cos or sin, and a
    // multiply, shared by pairs: counted as 4), the uniform 2 (a multiply-add), a label 0 (an
    // integer product). 4 bytes written.
    let per = match kernel {
        Kernel::FillNormal => 4,
        Kernel::FillUniform => 2,
        _ => 0,
    };
    Launch::new(gpu, kernel, label, &params, &bindings, grid_for(gpu, n, 1024))
        .with_cost(per * n as u64, 4 * n as u64, format!("{}x{}", out.rows, out.cols))
}

/// out ~ U(0, 1), keyed by (seed, stream, the step buffer's rng_step, element).
pub fn fill_uniform(gpu: &Gpu, label: &str, step: &wgpu::Buffer, out: View<'_>, stream: u32, seed: u64) -> Launch {
    rng_launch(gpu, Kernel::FillUniform, label, step, out, stream, seed, 0)
}

/// out ~ N(0, 1), keyed like `fill_uniform`.
pub fn fill_normal(gpu: &Gpu, label: &str, step: &wgpu::Buffer, out: View<'_>, stream: u32, seed: u64) -> Launch {
    rng_launch(gpu, Kernel::FillNormal, label, step, out, stream, seed, 0)
}

/// out = class indices uniform in 0..classes (as f32), keyed like `fill_uniform`: the labels a
/// conditional generator is asked to draw.
pub fn fill_labels(gpu: &Gpu, label: &str, step: &wgpu::Buffer, out: View<'_>, classes: usize, stream: u32, seed: u64) -> Launch {
    assert!(classes > 0, "{label}: at least one class");
    rng_launch(gpu, Kernel::FillLabels, label, step, out, stream, seed, classes)
}
