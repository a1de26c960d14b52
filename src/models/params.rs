//! All parameters of a model live in one flat buffer with named views (as llm.c does): zeroing
//! is one clear, Adam is one dispatch, a checkpoint is one readback.

use std::ops::Range;

use crate::gpu::{Gpu, GpuError, Tensor, View};

/// Where a named tensor sits in a flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamEntry {
    pub name: String,
    /// As stored, pad columns included.
    pub shape: Vec<usize>,
    pub offset: usize,
    /// Trailing columns of every row that only pad it to whole vec4s (a conditioned layer's
    /// weight, whose input width 784 + 10 is not a multiple of 4): always zero, not exported.
    pub pad_cols: usize,
}

impl ParamEntry {
    /// The shape PyTorch sees: without the pad columns.
    pub fn exported_shape(&self) -> Vec<usize> {
        let mut shape = self.shape.clone();
        if let Some(last) = shape.last_mut() {
            *last -= self.pad_cols;
        }
        shape
    }

    /// The stored values of this tensor (from its flat buffer) without the pad columns.
    pub fn export(&self, flat: &[f32]) -> Vec<f32> {
        let stored = &flat[self.range()];
        let cols = *self.shape.last().unwrap_or(&1);
        stored.chunks(cols.max(1)).flat_map(|row| &row[..cols - self.pad_cols]).copied().collect()
    }

    /// Places exported values (no pad columns) into the flat buffer, pads zero.
    pub fn import(&self, data: &[f32], flat: &mut [f32]) {
        let cols = *self.shape.last().unwrap_or(&1);
        let real = cols - self.pad_cols;
        for (row, values) in flat[self.range()].chunks_mut(cols.max(1)).zip(data.chunks(real.max(1))) {
            row[..real].copy_from_slice(values);
            row[real..].fill(0.0);
        }
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// A flat buffer's named views, in allocation order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamLayout {
    pub entries: Vec<ParamEntry>,
    pub len: usize,
}

/// Blocks start on 64-element (256-byte) boundaries, the widest storage-offset alignment
/// WebGPU allows, so any block can also be bound on its own.
const ALIGN: usize = 64;

impl ParamLayout {
    /// Places tensors back to back (no padding between them) in a new aligned block; returns
    /// the block's offset.
    pub fn push_block(&mut self, tensors: &[(String, Vec<usize>)]) -> usize {
        let start = self.len.div_ceil(ALIGN) * ALIGN;
        let mut at = start;
        for (name, shape) in tensors {
            assert!(self.find(name).is_none(), "parameter {name} declared twice");
            self.entries.push(ParamEntry { name: name.clone(), shape: shape.clone(), offset: at, pad_cols: 0 });
            at += shape.iter().product::<usize>();
        }
        self.len = at;
        start
    }

    /// Marks the last `pad` columns of tensor `name` as padding.
    pub fn set_pad_cols(&mut self, name: &str, pad: usize) {
        let e = self.entries.iter_mut().find(|e| e.name == name).unwrap_or_else(|| panic!("no parameter named {name}"));
        assert!(pad < *e.shape.last().expect("a matrix"), "{name}: more pad than columns");
        e.pad_cols = pad;
    }

    pub fn find(&self, name: &str) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    pub fn get(&self, name: &str) -> &ParamEntry {
        self.find(name).unwrap_or_else(|| panic!("no parameter named {name}"))
    }
}

/// A model's parameters on the GPU: values, gradients and Adam's moments share one layout;
/// batch-norm statistics live in `state`.
pub struct Parameters {
    /// A moving average of some of them, when the model keeps one (the GAN's `g_ema`)
    pub average: Option<Average>,
    pub layout: ParamLayout,
    pub state_layout: ParamLayout,
    /// [layout.len]
    pub values: Tensor,
    /// [layout.len], overwritten by every backward pass
    pub grads: Tensor,
    pub adam_m: Tensor,
    pub adam_v: Tensor,
    /// [state_layout.len]: per batch-norm layer saved_mean, saved_invstd, running_mean, running_var
    pub state: Tensor,
}

impl Parameters {
    pub fn new(gpu: &Gpu, model: &str, layout: ParamLayout, state_layout: ParamLayout, values: &[f32], state: &[f32]) -> Result<Parameters, GpuError> {
        let n = [layout.len];
        Ok(Parameters {
            values: Tensor::from_slice(gpu, &format!("{model}.params"), &n, values)?,
            grads: Tensor::zeros(gpu, &format!("{model}.grads"), &n)?,
            adam_m: Tensor::zeros(gpu, &format!("{model}.adam_m"), &n)?,
            adam_v: Tensor::zeros(gpu, &format!("{model}.adam_v"), &n)?,
            state: Tensor::from_slice(gpu, &format!("{model}.state"), &[state_layout.len.max(1)], &padded(state))?,
            layout,
            state_layout,
            average: None,
        })
    }

    /// Keeps a moving average of the parameters in `range` and the statistics in `state_range`,
    /// starting from `values` and `state` (the initial ones) as torch's `copy.deepcopy` does.
    pub fn averaging(mut self, gpu: &Gpu, model: &str, decay: f32, ranges: (Range<usize>, Range<usize>), values: &[f32], state: &[f32]) -> Result<Parameters, GpuError> {
        self.average = Some(Average {
            decay,
            range: ranges.0,
            state_range: ranges.1,
            values: Tensor::from_slice(gpu, &format!("{model}.average.params"), &[self.layout.len], values)?,
            state: Tensor::from_slice(gpu, &format!("{model}.average.state"), &[self.state_layout.len.max(1)], &padded(state))?,
        });
        Ok(self)
    }

    /// What a forward pass reads: the model's own tensors.
    pub fn weights(&self) -> Weights<'_> {
        Weights { values: &self.values.buffer, state: &self.state.buffer }
    }

    /// What sampling reads: the average where one is kept, else the model's own tensors. Only
    /// the averaged network's layers may be run on it.
    pub fn sampling_weights(&self) -> Weights<'_> {
        match &self.average {
            Some(a) => Weights { values: &a.values.buffer, state: &a.state.buffer },
            None => self.weights(),
        }
    }
}

/// An exponential moving average (shaders/ema.wgsl) of part of a model: of the GAN's G, say,
/// whose average samples better than its last weights. It stands in for that part in sampling
/// and in `model.safetensors`; the trained weights go on training.
pub struct Average {
    pub decay: f32,
    /// The averaged parameters; `values` outside them is never written nor read.
    pub range: Range<usize>,
    /// The averaged batch-norm statistics
    pub state_range: Range<usize>,
    /// [layout.len]
    pub values: Tensor,
    /// [state_layout.len]
    pub state: Tensor,
}

impl Average {
    /// `values` and `state` (a model's own, read back) with the averaged part replaced by the
    /// average's: what `model.safetensors` holds.
    pub fn overlay(&self, values: &mut [f32], state: &mut [f32], average: &[f32], average_state: &[f32]) {
        values[self.range.clone()].copy_from_slice(&average[self.range.clone()]);
        state[self.state_range.clone()].copy_from_slice(&average_state[self.state_range.clone()]);
    }
}

/// The buffers a forward pass reads weights and batch-norm statistics from.
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    /// Laid out as the model's `layout`
    pub values: &'a wgpu::Buffer,
    /// Laid out as its `state_layout`
    pub state: &'a wgpu::Buffer,
}

impl<'a> From<&'a Parameters> for Weights<'a> {
    fn from(params: &'a Parameters) -> Weights<'a> {
        params.weights()
    }
}

impl Parameters {
    /// The named matrix (a label table, the class prior means) as a view of the values and of
    /// the gradients; None when the model has no such tensor.
    pub fn matrix(&self, name: &str) -> Option<(View<'_>, View<'_>)> {
        let e = self.layout.find(name)?;
        let [rows, cols] = e.shape[..] else { panic!("{name} is a matrix") };
        Some((View::new(&self.values.buffer, e.offset, rows, cols), View::new(&self.grads.buffer, e.offset, rows, cols)))
    }
}

fn padded(state: &[f32]) -> Vec<f32> {
    if state.is_empty() {
        vec![0.0]
    } else {
        state.to_vec()
    }
}
