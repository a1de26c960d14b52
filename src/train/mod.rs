//! Training: epochs of many steps per command buffer, metrics read back once per epoch, and the
//! run's outputs (config, metrics, sample grids, weights).

use crate::gpu::{Gpu, Program};
use crate::nn::{Step, StepBuffer};

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
