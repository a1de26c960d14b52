use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `GatherParams` in shaders/gather.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct GatherParams {
    pub rows: u32,
    pub cols: u32,
    pub scale: f32,
    pub shift: f32,
}

/// out [rows, cols] = data[order[batch_start + r]] · scale + shift, `data` being the packed
/// bytes of the whole split and `batch_start` read from the step buffer.
#[allow(clippy::too_many_arguments)]
pub fn gather_rows(
    gpu: &Gpu, label: &str, step: &wgpu::Buffer, data: &wgpu::Buffer, order: &wgpu::Buffer, out: View<'_>, scale: f32, shift: f32,
) -> Launch {
    assert_eq!(out.offset, 0, "{label}: gathers into a whole tensor or its first rows");
    let params = GatherParams {
        rows: u32_of(out.rows),
        cols: u32_of(out.cols),
        scale,
        shift,
    };
    let bindings = [
        Binding { slot: 1, buffer: step },
        Binding { slot: 2, buffer: data },
        Binding { slot: 3, buffer: order },
        Binding { slot: 4, buffer: out.buffer },
    ];
    // Per pixel one FMA (2 FLOPs), one byte read and 4 written; per row one index read.
    let n = out.rows * out.cols;
    let (n64, rows) = (n as u64, out.rows as u64);
    Launch::new(gpu, Kernel::GatherRows, label, &params, &bindings, grid_for(gpu, n, 256))
        .with_cost(2 * n64, 5 * n64 + 4 * rows, format!("{}x{}", out.rows, out.cols))
}

/// labels [rows] = the label of image order[batch_start + r], as an f32 class index.
pub fn gather_labels(gpu: &Gpu, label: &str, step: &wgpu::Buffer, labels: &wgpu::Buffer, order: &wgpu::Buffer, out: View<'_>) -> Launch {
    assert_eq!(out.offset, 0, "{label}: gathers into a whole tensor");
    let rows = out.rows * out.cols;
    let params = GatherParams { rows: u32_of(rows), cols: 1, scale: 1.0, shift: 0.0 };
    let bindings = [
        Binding { slot: 1, buffer: step },
        Binding { slot: 2, buffer: labels },
        Binding { slot: 3, buffer: order },
        Binding { slot: 4, buffer: out.buffer },
    ];
    // No arithmetic; per row an index and a label byte read, a float written.
    Launch::new(gpu, Kernel::GatherLabels, label, &params, &bindings, grid_for(gpu, rows, 256)).with_cost(0, 9 * rows as u64, format!("{rows}"))
}
