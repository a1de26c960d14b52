use std::time::{Duration, Instant};

use super::{Gpu, Launch};

/// Where a measured duration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// Timestamps written by the GPU at the compute pass's boundaries.
    GpuTimestamps,
    /// The host's clock around submit-and-wait, for adapters without timestamp queries.
    WallClock,
}

/// Time of one repetition of `launches`, measured over `reps` repetitions recorded into one
/// compute pass (after one unmeasured warm-up), so per-submit overhead is spread thin.
pub fn time_launches(gpu: &Gpu, launches: &[&Launch], reps: usize) -> (Duration, Clock) {
    gpu.run("warm-up", launches);
    let reps = reps.max(1);
    let timestamps = gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY);
    let queries = timestamps.then(|| {
        gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timing"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    });
    let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("timing.resolve"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("timing") });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("timing"),
            timestamp_writes: queries.as_ref().map(|q| wgpu::ComputePassTimestampWrites {
                query_set: q,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            }),
        });
        for _ in 0..reps {
            for launch in launches {
                launch.record(&mut pass);
            }
        }
    }
    if let Some(q) = &queries {
        encoder.resolve_query_set(q, 0..2, &resolve, 0);
    }
    let start = Instant::now();
    gpu.queue.submit(Some(encoder.finish()));
    gpu.wait();
    let wall = start.elapsed();
    if queries.is_some() {
        if let Ok(ticks) = gpu.read::<u64>(&resolve, 0, 2) {
            let ns = ticks[1].wrapping_sub(ticks[0]) as f64 * f64::from(gpu.queue.get_timestamp_period());
            if ns > 0.0 {
                return (Duration::from_secs_f64(ns * 1e-9 / reps as f64), Clock::GpuTimestamps);
            }
        }
    }
    (wall / reps as u32, Clock::WallClock)
}
