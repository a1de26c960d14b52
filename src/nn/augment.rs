use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `ShiftParams` in shaders/augment.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct ShiftParams {
    pub rows: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub most: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

/// out [rows, channels·h·w] = each image of `input` moved by its own (dy, dx) in
/// [-most, most]², zeros shifted in; `shifts` [rows, 2] holds dy + most and dx + most, as
/// `fill_labels` with 2·most + 1 classes draws them.
pub fn shift_images(gpu: &Gpu, label: &str, shifts: View<'_>, input: View<'_>, out: View<'_>, (channels, height, width): (usize, usize, usize), most: usize) -> Launch {
    assert!(input.is_contiguous() && out.is_contiguous() && input.offset == 0 && out.offset == 0, "{label}: whole tensors");
    assert_eq!((input.rows, input.cols), (out.rows, out.cols), "{label}: input and output shapes");
    assert_eq!(input.cols, channels * height * width, "{label}: rows of channels·h·w values");
    assert_eq!((shifts.rows * shifts.cols, shifts.offset), (2 * out.rows, 0), "{label}: two draws a row");
    let params = ShiftParams {
        rows: u32_of(out.rows),
        channels: u32_of(channels),
        height: u32_of(height),
        width: u32_of(width),
        most: u32_of(most),
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    let bindings = [
        Binding { slot: 1, buffer: shifts.buffer },
        Binding { slot: 2, buffer: input.buffer },
        Binding { slot: 3, buffer: out.buffer },
    ];
    // No arithmetic worth counting; per value one read and one write.
    let n = out.rows * out.cols;
    Launch::new(gpu, Kernel::ShiftImages, label, &params, &bindings, grid_for(gpu, n, 256)).with_cost(0, 8 * n as u64, format!("{}x{}", out.rows, out.cols))
}
