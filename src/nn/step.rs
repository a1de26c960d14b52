use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::gpu::{Gpu, Program, StepInputs};

/// Twin of `Step` in shaders/common.wgsl: what changes from one training step to the next.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Step {
    pub t: u32,
    pub rng_step: u32,
    pub batch_start: u32,
    pub _pad0: u32,
    pub adam_bc1: f32,
    pub adam_bc2: f32,
    /// The learning-rate schedule's factor at this step (`Schedule`): 1 unless it decays.
    pub lr_scale: f32,
    pub _pad1: u32,
}

impl Default for Step {
    /// Step 0 of nothing in particular, at the full learning rate.
    fn default() -> Step {
        Step { t: 0, rng_step: 0, batch_start: 0, _pad0: 0, adam_bc1: 0.0, adam_bc2: 0.0, lr_scale: 1.0, _pad1: 0 }
    }
}

/// The uniform every step's kernels read, plus a staging table: a submit uploads the Step of
/// each of its steps at once, and each step begins with a copy of its own entry into the
/// uniform. So many steps share one command buffer and one upload.
pub struct StepBuffer {
    pub uniform: wgpu::Buffer,
    table: wgpu::Buffer,
    capacity: usize,
}

const STEP_BYTES: u64 = std::mem::size_of::<Step>() as u64;

impl StepBuffer {
    pub fn new(gpu: &Gpu, label: &str, capacity: usize) -> StepBuffer {
        let uniform = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(&format!("{label}.step")),
            contents: bytemuck::bytes_of(&Step::default()),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let table = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(&format!("{label}.step_table")),
            size: STEP_BYTES * capacity.max(1) as u64,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        StepBuffer { uniform, table, capacity: capacity.max(1) }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sets the uniform directly, for one-off work outside a training submit.
    pub fn set(&self, gpu: &Gpu, step: &Step) {
        gpu.queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(step));
    }

    /// Uploads the steps of the coming submit (at most `capacity`).
    pub fn stage(&self, gpu: &Gpu, steps: &[Step]) {
        assert!(steps.len() <= self.capacity, "{} steps staged, room for {}", steps.len(), self.capacity);
        gpu.queue.write_buffer(&self.table, 0, bytemuck::cast_slice(steps));
    }

    /// Records the copy that makes staged step `i` current; call outside a compute pass.
    pub fn select(&self, encoder: &mut wgpu::CommandEncoder, i: usize) {
        encoder.copy_buffer_to_buffer(&self.table, i as u64 * STEP_BYTES, &self.uniform, 0, STEP_BYTES);
    }
}

/// Steps to run through a StepBuffer, as the profiler takes them.
pub struct StagedSteps<'a> {
    pub buffer: &'a StepBuffer,
    pub steps: &'a [Step],
}

impl StepInputs for StagedSteps<'_> {
    fn count(&self) -> usize {
        self.steps.len()
    }

    fn capacity(&self) -> usize {
        self.buffer.capacity()
    }

    fn stage(&self, gpu: &Gpu, range: std::ops::Range<usize>) {
        self.buffer.stage(gpu, &self.steps[range]);
    }

    fn select(&self, encoder: &mut wgpu::CommandEncoder, i: usize) {
        self.buffer.select(encoder, i);
    }
}

/// Records `steps` consecutive training steps into one command buffer and submits it without
/// waiting. Each step begins with the copy that makes its Step current, then one compute pass.
pub fn submit_steps(gpu: &Gpu, program: &Program, buffer: &StepBuffer, steps: &[Step]) -> wgpu::SubmissionIndex {
    buffer.stage(gpu, steps);
    let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("train steps") });
    for i in 0..steps.len() {
        buffer.select(&mut encoder, i);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("train step"), timestamp_writes: None });
        program.record(&mut pass);
    }
    gpu.queue.submit(Some(encoder.finish()))
}
