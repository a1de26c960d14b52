use bytemuck::{Pod, Zeroable};

use super::{grid_for, u32_of, Activation};
use crate::gpu::{Binding, Gpu, Kernel, Launch, View};

/// Twin of `BatchNormParams` in shaders/batchnorm.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct BatchnormParams {
    pub rows: u32,
    pub cols: u32,
    pub act: u32,
    pub slope: f32,
    pub eps: f32,
    pub momentum: f32,
    pub gamma_off: u32,
    pub beta_off: u32,
    pub state_off: u32,
    pub hw: u32,
    pub groups: u32,
    pub capacity: u32,
    pub first_group: u32,
    pub x_off: u32,
    pub flags: u32,
    pub _pad: [u32; 2],
}

/// `BatchNormParams.flags`: the backward writes dgamma and dbeta.
const WRITE_GRADS: u32 = 1;

/// Where one batch-norm layer's tensors live.
#[derive(Clone, Copy)]
pub struct BatchnormTensors<'a> {
    /// The flat parameter buffer holding gamma and beta (and, in `grads`, their gradients).
    pub weights: &'a wgpu::Buffer,
    pub gamma_off: usize,
    pub beta_off: usize,
    /// saved_mean, saved_invstd ([capacity, cols] each), running_mean, running_var ([cols]
    /// each), from `state_off`.
    pub state: &'a wgpu::Buffer,
    pub state_off: usize,
    /// How many independently normalised groups of rows the saved statistics hold.
    pub capacity: usize,
    pub eps: f32,
    pub momentum: f32,
    pub act: Activation,
    /// 1 for BatchNorm1d; the pixels of each channel for BatchNorm2d, whose rows are NCHW
    /// images of `cols / hw` channels.
    pub hw: usize,
}

/// The rows of a launch as `count` equal batches with their own statistics, kept in the saved
/// statistics' slots `first..first + count` (a backward over some groups of a forward pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchGroups {
    pub count: usize,
    pub first: usize,
}

impl BatchGroups {
    /// `count` groups from the first slot.
    pub fn new(count: usize) -> BatchGroups {
        BatchGroups { count, first: 0 }
    }
}

impl BatchnormTensors<'_> {
    /// `x` gives the rows and columns; `x_off` is where they start in the bound buffer.
    fn params(&self, x: View<'_>, groups: BatchGroups, x_off: usize, flags: u32) -> BatchnormParams {
        assert_eq!(x.cols % self.hw, 0, "whole channels of {} pixels", self.hw);
        assert!(groups.count >= 1 && x.rows.is_multiple_of(groups.count), "{} rows in {} equal groups", x.rows, groups.count);
        assert!(groups.first + groups.count <= self.capacity, "groups {groups:?} within the {} saved", self.capacity);
        BatchnormParams {
            rows: u32_of(x.rows * self.hw),
            cols: u32_of(x.cols / self.hw),
            act: self.act.id(),
            slope: self.act.slope(),
            eps: self.eps,
            momentum: self.momentum,
            gamma_off: u32_of(self.gamma_off),
            beta_off: u32_of(self.beta_off),
            state_off: u32_of(self.state_off),
            hw: u32_of(self.hw),
            groups: u32_of(groups.count),
            capacity: u32_of(self.capacity),
            first_group: u32_of(groups.first),
            x_off: u32_of(x_off),
            flags,
            _pad: [0; 2],
        }
    }
}

fn shape(x: View<'_>, bn: &BatchnormTensors<'_>) -> String {
    match bn.hw {
        1 => format!("{}x{} {}", x.rows, x.cols, bn.act),
        hw => format!("{}x{}x{hw} {}", x.rows, x.cols / hw, bn.act),
    }
}

/// The most values one channel's statistics may walk on a CPU adapter: a thread walks its
/// column three times, 8 values an iteration, and lavapipe stops a thread's loops after 65,535
/// iterations (shaders/batchnorm.wgsl, UNROLL).
pub const BATCHNORM_COLUMN_MOST: usize = 170_000;

/// Refuses a batch norm over `values` per channel (batch × pixels, every group) where the
/// adapter would stop walking them part-way.
pub fn check_column(gpu: &Gpu, label: &str, values: usize) -> Result<(), crate::gpu::GpuError> {
    if gpu.info.device_type == wgpu::DeviceType::Cpu && values > BATCHNORM_COLUMN_MOST {
        return Err(crate::gpu::GpuError::Unsupported {
            what: format!("{label}: batch norm over {values} values a channel (batch × pixels) on a CPU adapter, which walks at most {BATCHNORM_COLUMN_MOST}"),
            fix: "use a smaller --batch or --size".to_string(),
        });
    }
    Ok(())
}

fn column_grid(gpu: &Gpu, cols: usize) -> [u32; 3] {
    grid_for(gpu, cols, 64)
}

fn check_whole(label: &str, views: &[View<'_>]) {
    for v in views {
        assert_eq!(v.offset, 0, "{label}: batch norm works on whole tensors");
    }
}

/// y = act(batchnorm(x)) with each group's batch statistics; updates the running statistics.
pub fn batchnorm_forward_train(gpu: &Gpu, label: &str, bn: &BatchnormTensors<'_>, groups: usize, x: View<'_>, y: View<'_>) -> Launch {
    check_whole(label, &[x, y]);
    let bindings = [
        Binding { slot: 1, buffer: x.buffer },
        Binding { slot: 2, buffer: bn.weights },
        Binding { slot: 3, buffer: bn.state },
        Binding { slot: 4, buffer: y.buffer },
    ];
    // Per element: mean 1, variance 3, normalise and scale 4 FLOPs; x read, y written, and per
    // column gamma, beta read, four statistics written.
    let (n, c) = ((x.rows * x.cols) as u64, (x.cols / bn.hw) as u64);
    Launch::new(gpu, Kernel::BatchnormForwardTrain, label, &bn.params(x, BatchGroups::new(groups), 0, 0), &bindings, column_grid(gpu, x.cols / bn.hw))
        .with_cost(8 * n, 4 * (2 * n + 6 * c), shape(x, bn))
}

/// y = act(batchnorm(x)) with the running statistics, for sampling.
pub fn batchnorm_forward_eval(gpu: &Gpu, label: &str, bn: &BatchnormTensors<'_>, x: View<'_>, y: View<'_>) -> Launch {
    check_whole(label, &[x, y]);
    let bindings = [
        Binding { slot: 1, buffer: x.buffer },
        Binding { slot: 2, buffer: bn.weights },
        Binding { slot: 3, buffer: bn.state },
        Binding { slot: 4, buffer: y.buffer },
    ];
    // Per element 5 FLOPs (subtract, rsqrt, scale, shift); x read, y written, four per-column
    // values read.
    let (n, c) = ((x.rows * x.cols) as u64, (x.cols / bn.hw) as u64);
    Launch::new(gpu, Kernel::BatchnormForwardEval, label, &bn.params(x, BatchGroups::new(1), 0, 0), &bindings, grid_for(gpu, x.rows * x.cols, 256))
        .with_cost(5 * n, 4 * (2 * n + 4 * c), shape(x, bn))
}

/// dx, and with `grads` dgamma/dbeta written there at gamma's and beta's offsets. `x` and `y`
/// may be rows of the forward pass's tensors (the window of `groups`), `dy` and `dx` are whole.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    gpu: &Gpu, label: &str, bn: &BatchnormTensors<'_>, groups: BatchGroups, x: View<'_>, y: View<'_>, dy: View<'_>, dx: View<'_>,
    grads: Option<&wgpu::Buffer>,
) -> Launch {
    check_whole(label, &[dy, dx]);
    assert_eq!(x.offset, y.offset, "{label}: x and y are the same rows");
    let flags = if grads.is_some() { WRITE_GRADS } else { 0 };
    let bindings = [
        Binding { slot: 1, buffer: x.buffer },
        Binding { slot: 2, buffer: bn.weights },
        Binding { slot: 3, buffer: bn.state },
        Binding { slot: 4, buffer: y.buffer },
        Binding { slot: 5, buffer: dy.buffer },
        Binding { slot: 6, buffer: dx.buffer },
        // Never written without WRITE_GRADS.
        Binding { slot: 7, buffer: grads.unwrap_or(&gpu.unused) },
    ];
    // Per element 14 FLOPs (the incoming gradient 2, two sums 4, xhat 2, dx 6); dy, y, x read
    // and dx written, and per column gamma and two statistics read, dgamma and dbeta written.
    let (n, c) = ((x.rows * x.cols) as u64, (x.cols / bn.hw) as u64);
    Launch::new(gpu, Kernel::BatchnormBackward, label, &bn.params(x, groups, x.offset, flags), &bindings, column_grid(gpu, x.cols / bn.hw))
        .with_cost(14 * n, 4 * (4 * n + 5 * c), shape(x, bn))
}
