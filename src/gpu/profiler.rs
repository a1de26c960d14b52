//! Per-kernel GPU time of a program run for many steps. With timestamps allowed inside passes,
//! one is written between consecutive dispatches of the step's single pass; with pass-boundary
//! timestamps only, each dispatch gets its own pass (in profiling runs alone); with none, the
//! wall clock times whole steps. Timestamps never change what is computed.

use std::collections::HashMap;
use std::time::Instant;

use super::{Gpu, Launch, Program};
use crate::nn::{Step, StepBuffer};

/// How the kernels were timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileClock {
    /// A timestamp between consecutive dispatches of one pass.
    InsidePasses,
    /// A pass per dispatch, timed at its boundaries.
    PassBoundaries,
    /// No timestamp queries: whole steps on the host's clock.
    WallClock,
}

/// One kernel launch site, aggregated over the profiled steps.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelRow {
    pub name: String,
    pub calls: u64,
    pub total_ns: f64,
    /// Per call, from the launcher's cost model.
    pub flops: u64,
    pub bytes: u64,
}

impl KernelRow {
    pub fn mean_us(&self) -> f64 {
        self.total_ns / self.calls.max(1) as f64 / 1e3
    }

    pub fn gflops(&self) -> f64 {
        (self.flops * self.calls) as f64 / self.total_ns
    }

    pub fn gbytes_per_s(&self) -> f64 {
        (self.bytes * self.calls) as f64 / self.total_ns
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Track {
    Gpu,
    Host,
}

/// A span for the trace, in nanoseconds from the profile's start on its track's clock.
#[derive(Debug, Clone)]
pub struct TraceEvent {
    pub name: String,
    pub track: Track,
    pub start_ns: f64,
    pub dur_ns: f64,
}

pub struct ProfileReport {
    pub clock: ProfileClock,
    pub steps: usize,
    pub dispatches_per_step: usize,
    /// Sorted by total time, largest first.
    pub rows: Vec<KernelRow>,
    /// First to last timestamp of each step, averaged (None on the wall clock).
    pub gpu_ns_per_step: Option<f64>,
    pub wall_ns_per_step: f64,
    pub events: Vec<TraceEvent>,
}

/// wgpu's cap on one query set.
const MAX_QUERIES: usize = 4096;

/// Runs `steps` (one program run each, as training records them) with timestamps.
pub fn profile(gpu: &Gpu, program: &Program, buffer: &StepBuffer, steps: &[Step]) -> ProfileReport {
    let launches: Vec<&Launch> = program.launches().collect();
    let clock = if gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES) {
        ProfileClock::InsidePasses
    } else if gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        ProfileClock::PassBoundaries
    } else {
        ProfileClock::WallClock
    };
    let per_step = match clock {
        ProfileClock::InsidePasses => launches.len() + 1,
        ProfileClock::PassBoundaries => 2 * launches.len(),
        ProfileClock::WallClock => 0,
    };
    let chunk = MAX_QUERIES.checked_div(per_step).map_or(buffer.capacity(), |c| c.clamp(1, buffer.capacity()));
    let queries = (per_step > 0).then(|| {
        gpu.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("profile"), ty: wgpu::QueryType::Timestamp, count: (per_step * chunk) as u32 })
    });
    let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("profile.resolve"),
        size: (8 * per_step * chunk).max(8) as u64,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let period = f64::from(gpu.queue.get_timestamp_period());
    let mut totals = vec![0.0f64; launches.len()];
    let mut events = Vec::new();
    let mut gpu_step_ns = 0.0;
    let mut wall_ns = 0.0;
    let origin = Instant::now();
    let mut gpu_origin: Option<u64> = None;
    for (c, group) in steps.chunks(chunk).enumerate() {
        let host_start = origin.elapsed().as_nanos() as f64;
        buffer.stage(gpu, group);
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
        for i in 0..group.len() {
            buffer.select(&mut encoder, i);
            let base = (i * per_step) as u32;
            match (&queries, clock) {
                (Some(q), ProfileClock::InsidePasses) => {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
                    pass.write_timestamp(q, base);
                    for (j, launch) in launches.iter().enumerate() {
                        launch.record(&mut pass);
                        pass.write_timestamp(q, base + j as u32 + 1);
                    }
                }
                (Some(q), _) => {
                    for (j, launch) in launches.iter().enumerate() {
                        let at = base + 2 * j as u32;
                        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some(&launch.label),
                            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                query_set: q,
                                beginning_of_pass_write_index: Some(at),
                                end_of_pass_write_index: Some(at + 1),
                            }),
                        });
                        launch.record(&mut pass);
                    }
                }
                (None, _) => {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
                    program.record(&mut pass);
                }
            }
        }
        let used = (per_step * group.len()) as u32;
        if let Some(q) = &queries {
            encoder.resolve_query_set(q, 0..used, &resolve, 0);
        }
        let recorded = origin.elapsed().as_nanos() as f64;
        let submitted = Instant::now();
        gpu.queue.submit(Some(encoder.finish()));
        gpu.wait();
        wall_ns += submitted.elapsed().as_nanos() as f64 + (recorded - host_start);
        let host_end = origin.elapsed().as_nanos() as f64;
        events.push(TraceEvent { name: format!("record {} steps", group.len()), track: Track::Host, start_ns: host_start, dur_ns: recorded - host_start });
        events.push(TraceEvent { name: format!("submit and wait (chunk {c})"), track: Track::Host, start_ns: recorded, dur_ns: host_end - recorded });
        if queries.is_none() {
            continue;
        }
        let Ok(ticks) = gpu.read::<u64>(&resolve, 0, used as usize) else { continue };
        let first = *gpu_origin.get_or_insert(ticks[0]);
        let ns = |t: u64| t.wrapping_sub(first) as f64 * period;
        for i in 0..group.len() {
            let t = &ticks[i * per_step..(i + 1) * per_step];
            for (j, launch) in launches.iter().enumerate() {
                let (start, end) = match clock {
                    ProfileClock::InsidePasses => (t[j], t[j + 1]),
                    _ => (t[2 * j], t[2 * j + 1]),
                };
                let dur = end.wrapping_sub(start) as f64 * period;
                totals[j] += dur;
                events.push(TraceEvent { name: launch.name(), track: Track::Gpu, start_ns: ns(start), dur_ns: dur });
            }
            gpu_step_ns += t[per_step - 1].wrapping_sub(t[0]) as f64 * period;
        }
    }
    let mut rows: Vec<KernelRow> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (j, launch) in launches.iter().enumerate() {
        let name = launch.name();
        let at = *index.entry(name.clone()).or_insert_with(|| {
            rows.push(KernelRow { name, calls: 0, total_ns: 0.0, flops: launch.flops, bytes: launch.bytes });
            rows.len() - 1
        });
        rows[at].calls += steps.len() as u64;
        rows[at].total_ns += totals[j];
    }
    if clock == ProfileClock::WallClock {
        rows.clear();
    }
    rows.sort_by(|a, b| b.total_ns.total_cmp(&a.total_ns));
    let n = steps.len().max(1) as f64;
    ProfileReport {
        clock,
        steps: steps.len(),
        dispatches_per_step: launches.len(),
        rows,
        gpu_ns_per_step: (clock != ProfileClock::WallClock).then_some(gpu_step_ns / n),
        wall_ns_per_step: wall_ns / n,
        events,
    }
}

impl ProfileReport {
    /// The Chrome trace-event JSON (Perfetto, chrome://tracing): one track for GPU kernels,
    /// one for the host.
    pub fn trace_json(&self) -> serde_json::Value {
        let mut events = vec![
            serde_json::json!({"ph": "M", "pid": 1, "tid": 1, "name": "thread_name", "args": {"name": "GPU kernels"}}),
            serde_json::json!({"ph": "M", "pid": 1, "tid": 2, "name": "thread_name", "args": {"name": "host"}}),
        ];
        for e in &self.events {
            events.push(serde_json::json!({
                "name": e.name,
                "cat": match e.track { Track::Gpu => "gpu", Track::Host => "host" },
                "ph": "X",
                "pid": 1,
                "tid": match e.track { Track::Gpu => 1, Track::Host => 2 },
                "ts": e.start_ns / 1e3,
                "dur": e.dur_ns / 1e3,
            }));
        }
        serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" })
    }
}
