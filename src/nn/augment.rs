use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of};
use super::Activation;
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

/// Which of DiffAugment's transforms the GAN's D sees its images through (`--augment`): a
/// comma list of `color`, `translation` and `cutout`, in any order; they always run in
/// DiffAugment's (color, translation, cutout). Empty: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AugmentPolicy {
    pub color: bool,
    pub translation: bool,
    pub cutout: bool,
}

impl AugmentPolicy {
    /// Every transform: DiffAugment's policy for small data sets.
    pub const ALL: AugmentPolicy = AugmentPolicy { color: true, translation: true, cutout: true };

    pub fn is_none(&self) -> bool {
        *self == AugmentPolicy::default()
    }

    /// The kernel's policy bits (AUG_COLOR, AUG_TRANSLATION, AUG_CUTOUT).
    fn bits(self) -> u32 {
        u32::from(self.color) | u32::from(self.translation) << 1 | u32::from(self.cutout) << 2
    }
}

impl std::fmt::Display for AugmentPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<&str> = [(self.color, "color"), (self.translation, "translation"), (self.cutout, "cutout")].into_iter().filter(|p| p.0).map(|p| p.1).collect();
        f.write_str(if parts.is_empty() { "none".into() } else { parts.join(",") }.as_str())
    }
}

impl std::str::FromStr for AugmentPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut policy = AugmentPolicy::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "none") {
            match part {
                "color" | "colour" => policy.color = true,
                "translation" => policy.translation = true,
                "cutout" => policy.cutout = true,
                other => return Err(format!("unknown augmentation '{other}': give a comma list of color, translation and cutout (or none)")),
            }
        }
        Ok(policy)
    }
}

impl serde::Serialize for AugmentPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AugmentPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Uniform draws per image that the augmentation reads: `draws` is [rows, AUGMENT_DRAWS].
pub const AUGMENT_DRAWS: usize = 8;

/// Twin of `AugmentParams` in shaders/diff_augment.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct AugmentParams {
    pub rows: u32,
    pub channels: u32,
    pub side: u32,
    pub policy: u32,
    pub in_stride: u32,
    pub out_stride: u32,
    pub prev_off: u32,
    pub act: u32,
    pub slope: f32,
    pub draws_off: u32,
    pub _pad: [u32; 2],
}

/// out [rows, ≥ C·S·S] = each image of `input` [rows, ≥ C·S·S] through its own transform of
/// `policy`, drawn from its row of `draws` [rows, 8] (uniforms in (0, 1)); the columns after
/// the image are copied.
pub fn diff_augment(gpu: &Gpu, label: &str, policy: AugmentPolicy, draws: View<'_>, input: View<'_>, out: View<'_>, (channels, side): (usize, usize)) -> Launch {
    let n = channels * side * side;
    assert_eq!((input.cols, input.rows), (out.cols, out.rows), "{label}: input and output shapes");
    assert!(input.cols >= n, "{label}: rows of at least C·S·S values");
    let params = augment_params(label, policy, draws, input, out, (channels, side), None);
    let bindings = [
        Binding { slot: 1, buffer: draws.buffer },
        Binding { slot: 2, buffer: input.buffer },
        Binding { slot: 4, buffer: out.buffer },
    ];
    // Per value about 12 FLOPs (the sum, the channel mean over ≤ 3, colour 6) and two reads and
    // a write (the sum's read and the source's).
    let v = (out.rows * n) as u64;
    Launch::new(gpu, Kernel::DiffAugment, label, &params, &bindings, row_grid(gpu, out.rows)).with_cost(12 * v, 12 * v, format!("{}x{}", out.rows, out.cols))
}

/// dx [rows, C·S·S] = each transform's transpose applied to dy [rows, C·S·S], times act′ from
/// `prev` (the activation's output that made the images) when given.
#[allow(clippy::too_many_arguments)]
pub fn diff_augment_backward(
    gpu: &Gpu, label: &str, policy: AugmentPolicy, draws: View<'_>, dy: View<'_>, dx: View<'_>, prev: Option<(View<'_>, Activation)>, (channels, side): (usize, usize),
) -> Launch {
    let n = channels * side * side;
    assert_eq!((dy.rows, dy.cols, dx.rows, dx.cols), (dx.rows, n, dy.rows, n), "{label}: dy and dx are [rows, C·S·S]");
    let params = augment_params(label, policy, draws, dy, dx, (channels, side), prev);
    let bindings = [
        Binding { slot: 1, buffer: draws.buffer },
        Binding { slot: 2, buffer: dy.buffer },
        Binding { slot: 3, buffer: prev.map_or(dy.buffer, |(p, _)| p.buffer) },
        Binding { slot: 4, buffer: dx.buffer },
    ];
    let v = (dx.rows * n) as u64;
    Launch::new(gpu, Kernel::DiffAugmentBackward, label, &params, &bindings, row_grid(gpu, dx.rows)).with_cost(14 * v, 16 * v, format!("{}x{}", dx.rows, dx.cols))
}

fn augment_params(label: &str, policy: AugmentPolicy, draws: View<'_>, input: View<'_>, out: View<'_>, (channels, side): (usize, usize), prev: Option<(View<'_>, Activation)>) -> AugmentParams {
    assert!(input.is_contiguous() && out.is_contiguous() && input.offset == 0 && out.offset == 0, "{label}: whole tensors");
    assert!(draws.is_contiguous() && (draws.rows, draws.cols) == (out.rows, AUGMENT_DRAWS), "{label}: eight draws a row");
    let (prev_off, act) = match prev {
        Some((p, act)) => {
            assert!(p.is_contiguous() && (p.rows, p.cols) == (out.rows, channels * side * side), "{label}: the activation is [rows, C·S·S]");
            (p.offset, act)
        }
        None => (0, Activation::Identity),
    };
    AugmentParams {
        rows: u32_of(out.rows),
        channels: u32_of(channels),
        side: u32_of(side),
        policy: policy.bits(),
        in_stride: u32_of(input.cols),
        out_stride: u32_of(out.cols),
        prev_off: u32_of(prev_off),
        act: act.id(),
        slope: act.slope(),
        draws_off: u32_of(draws.offset),
        _pad: [0; 2],
    }
}

/// One workgroup per row.
fn row_grid(gpu: &Gpu, rows: usize) -> [u32; 3] {
    crate::gpu::grid_1d(u32_of(rows), gpu.limits.max_compute_workgroups_per_dimension)
}
