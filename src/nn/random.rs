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
}

fn rng_launch(gpu: &Gpu, kernel: Kernel, label: &str, step: &wgpu::Buffer, out: View<'_>, stream: u32, seed: u64) -> Launch {
    assert_eq!(out.offset, 0, "{label}: whole output");
    let n = out.rows * out.cols;
    let params = RngParams {
        n: u32_of(n),
        stream,
        seed_lo: seed as u32,
        seed_hi: (seed >> 32) as u32,
    };
    let bindings = [Binding { slot: 1, buffer: step }, Binding { slot: 2, buffer: out.buffer }];
    // Philox is integer work; Box–Muller costs 4 FLOPs per normal (log, sqrt, cos or sin, and a
    // multiply, shared by pairs: counted as 4), the uniform 2 (a multiply-add). 4 bytes written.
    let per = if kernel == Kernel::FillNormal { 4 } else { 2 };
    Launch::new(gpu, kernel, label, &params, &bindings, grid_for(gpu, n, 1024))
        .with_cost(per * n as u64, 4 * n as u64, format!("{}x{}", out.rows, out.cols))
}

/// out ~ U(0, 1), keyed by (seed, stream, the step buffer's rng_step, element).
pub fn fill_uniform(gpu: &Gpu, label: &str, step: &wgpu::Buffer, out: View<'_>, stream: u32, seed: u64) -> Launch {
    rng_launch(gpu, Kernel::FillUniform, label, step, out, stream, seed)
}

/// out ~ N(0, 1), keyed like `fill_uniform`.
pub fn fill_normal(gpu: &Gpu, label: &str, step: &wgpu::Buffer, out: View<'_>, stream: u32, seed: u64) -> Launch {
    rng_launch(gpu, Kernel::FillNormal, label, step, out, stream, seed)
}
