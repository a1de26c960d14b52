//! Launchers of shaders/embedding.wgsl: label vectors into a conditioned layer's input, the
//! gradient back to the label table, and the block copies that assemble such an input.

use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `EmbedParams` in shaders/embedding.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct EmbedParams {
    pub rows: u32,
    pub dim: u32,
    pub classes: u32,
    pub flags: u32,
    pub src_off: u32,
    pub src_stride: u32,
    pub dst_off: u32,
    pub dst_stride: u32,
    pub label_off: u32,
    /// ONE_HOT: the values each class's entry spans (1 for a vector, H·W for label planes)
    pub plane: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}

impl EmbedParams {
    /// `rows` × `dim` values from `src` to `dst`, each at its view's offset and row stride;
    /// row r's label at `labels.offset + r` (when the kernel reads labels).
    fn between(rows: usize, dim: usize, classes: usize, labels: Option<View<'_>>, src: View<'_>, dst: View<'_>) -> EmbedParams {
        EmbedParams {
            rows: u32_of(rows),
            dim: u32_of(dim),
            classes: u32_of(classes),
            flags: 0,
            src_off: u32_of(src.offset),
            src_stride: u32_of(src.stride),
            dst_off: u32_of(dst.offset),
            dst_stride: u32_of(dst.stride),
            label_off: labels.map_or(0, |l| u32_of(l.offset)),
            plane: 1,
            ..Zeroable::zeroed()
        }
    }
}

const ONE_HOT: u32 = 1;
const ADD: u32 = 2;

/// Where a label's vector comes from.
#[derive(Clone, Copy)]
pub enum LabelVectors<'a> {
    /// Rows of a learned [classes, dim] table (nn.Embedding's weight).
    Table(View<'a>),
    /// The one-hot vector of `dim` classes.
    OneHot,
    /// One-hot planes: the label as `dim / plane` constant channels of `plane` pixels each,
    /// all ones in the label's channel and zeros in the others (a conv layer's label input).
    OneHotPlanes { plane: usize },
}

/// out [rows, dim] (any row stride) = the vector of each row's label; `labels` is [rows] f32
/// class indices.
pub fn embedding_forward(gpu: &Gpu, label: &str, labels: View<'_>, vectors: LabelVectors<'_>, out: View<'_>) -> Launch {
    embedding_launch(gpu, label, labels, vectors, out, false)
}

/// out [rows, dim] += the vector of each row's label: z shifted by its class's prior mean.
pub fn embedding_add(gpu: &Gpu, label: &str, labels: View<'_>, vectors: LabelVectors<'_>, out: View<'_>) -> Launch {
    embedding_launch(gpu, label, labels, vectors, out, true)
}

fn embedding_launch(gpu: &Gpu, label: &str, labels: View<'_>, vectors: LabelVectors<'_>, out: View<'_>, add: bool) -> Launch {
    assert_eq!(labels.rows * labels.cols, out.rows, "{label}: one label per output row");
    assert!(labels.is_contiguous(), "{label}: contiguous labels");
    let (src, classes, flags, src_off, src_stride, plane) = match vectors {
        LabelVectors::Table(t) => {
            assert_eq!(t.cols, out.cols, "{label}: the table's width is the output's");
            assert!(t.is_contiguous(), "{label}: a contiguous table");
            (t.buffer, t.rows, 0, t.offset, t.stride, 1)
        }
        LabelVectors::OneHot => (labels.buffer, out.cols, ONE_HOT, 0, 0, 1),
        LabelVectors::OneHotPlanes { plane } => {
            assert!(plane > 0 && out.cols.is_multiple_of(plane), "{label}: whole planes of {plane} values");
            (labels.buffer, out.cols / plane, ONE_HOT, 0, 0, plane)
        }
    };
    let params = EmbedParams {
        rows: u32_of(out.rows),
        dim: u32_of(out.cols),
        classes: u32_of(classes),
        flags: flags | if add { ADD } else { 0 },
        src_off: u32_of(src_off),
        src_stride: u32_of(src_stride),
        dst_off: u32_of(out.offset),
        dst_stride: u32_of(out.stride),
        label_off: u32_of(labels.offset),
        plane: u32_of(plane),
        ..Zeroable::zeroed()
    };
    let bindings = [Binding { slot: 1, buffer: labels.buffer }, Binding { slot: 2, buffer: src }, Binding { slot: 3, buffer: out.buffer }];
    let n = out.rows * out.cols;
    Launch::new(gpu, Kernel::EmbeddingForward, label, &params, &bindings, grid_for(gpu, n, 256))
        .with_cost(0, 8 * n as u64 + 4 * out.rows as u64, format!("{}x{}", out.rows, out.cols))
}

/// d_table [classes, dim] = Σ over rows of d_out's row added to its label's row; overwrites
/// (the table's gradient has no other source).
pub fn embedding_backward(gpu: &Gpu, label: &str, labels: View<'_>, d_out: View<'_>, d_table: View<'_>) -> Launch {
    assert_eq!(labels.rows * labels.cols, d_out.rows, "{label}: one label per gradient row");
    assert_eq!(d_table.cols, d_out.cols, "{label}: the table's width is the gradient's");
    assert!(labels.is_contiguous() && d_table.is_contiguous(), "{label}: contiguous labels and table");
    let params = EmbedParams::between(d_out.rows, d_out.cols, d_table.rows, Some(labels), d_out, d_table);
    let bindings = [Binding { slot: 1, buffer: labels.buffer }, Binding { slot: 2, buffer: d_out.buffer }, Binding { slot: 3, buffer: d_table.buffer }];
    // Each table entry reads every row's label and (when it matches) its gradient.
    let n = d_table.rows * d_table.cols;
    let (rows, dim) = (d_out.rows as u64, d_out.cols as u64);
    Launch::new(gpu, Kernel::EmbeddingBackward, label, &params, &bindings, grid_for(gpu, n, 256))
        .with_cost(rows * dim, 4 * (rows * dim + n as u64 * rows), format!("{}x{}→{}", d_out.rows, d_out.cols, d_table.rows))
}

/// dst = src, both [rows, cols] with their own row strides.
pub fn copy_columns(gpu: &Gpu, label: &str, src: View<'_>, dst: View<'_>) -> Launch {
    assert_eq!((src.rows, src.cols), (dst.rows, dst.cols), "{label}: copy shape");
    let params = EmbedParams::between(src.rows, src.cols, 0, None, src, dst);
    let bindings = [Binding { slot: 2, buffer: src.buffer }, Binding { slot: 3, buffer: dst.buffer }];
    let n = src.rows * src.cols;
    Launch::new(gpu, Kernel::CopyColumns, label, &params, &bindings, grid_for(gpu, n, 256))
        .with_cost(0, 8 * n as u64, format!("{}x{}", src.rows, src.cols))
}

/// logits [rows, 1] = heads[r, 0] + heads[r, 1 + label[r]]: the projection discriminator's
/// logit from its [rows, 1 + classes] last layer, a shared head plus the row's class head.
pub fn class_logit_forward(gpu: &Gpu, label: &str, labels: View<'_>, heads: View<'_>, logits: View<'_>) -> Launch {
    class_logit_launch(gpu, Kernel::ClassLogitForward, label, labels, heads, logits, heads.cols)
}

/// d_heads [rows, 1 + classes] = d_logits[r] at the two heads row r read, 0 elsewhere;
/// overwrites.
pub fn class_logit_backward(gpu: &Gpu, label: &str, labels: View<'_>, d_logits: View<'_>, d_heads: View<'_>) -> Launch {
    class_logit_launch(gpu, Kernel::ClassLogitBackward, label, labels, d_logits, d_heads, d_heads.cols)
}

fn class_logit_launch(gpu: &Gpu, kernel: Kernel, label: &str, labels: View<'_>, src: View<'_>, dst: View<'_>, dim: usize) -> Launch {
    assert_eq!(labels.rows * labels.cols, src.rows, "{label}: one label per row");
    assert_eq!(src.rows, dst.rows, "{label}: rows");
    assert!(labels.is_contiguous(), "{label}: contiguous labels");
    assert!(dim >= 2, "{label}: a shared head and at least one class head");
    let params = EmbedParams::between(src.rows, dim, dim - 1, Some(labels), src, dst);
    let bindings = [Binding { slot: 1, buffer: labels.buffer }, Binding { slot: 2, buffer: src.buffer }, Binding { slot: 3, buffer: dst.buffer }];
    let (rows, n) = (src.rows as u64, (dst.rows * dst.cols) as u64);
    Launch::new(gpu, kernel, label, &params, &bindings, grid_for(gpu, n as usize, 256))
        .with_cost(if kernel == Kernel::ClassLogitForward { rows } else { 0 }, 4 * (3 * rows + n), format!("{}x{dim}", src.rows))
}
