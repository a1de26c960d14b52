//! Per-kernel GPU time of a program run for many steps, through wgpu-profiler. With timestamps
//! allowed inside passes, a scope wraps each dispatch of the step's single pass; with
//! pass-boundary timestamps only, each dispatch gets its own pass (in profiling runs alone);
//! with none, the wall clock times whole steps. Timestamps never change what is computed.

use std::collections::HashMap;
use std::time::Instant;

use super::{Gpu, Launch, Program};

/// The per-step inputs of a profiled run, made current as training makes them: a group of
/// steps is uploaded before each submit, then each step starts with a copy selecting its own.
pub trait StepInputs {
    /// Steps to run.
    fn count(&self) -> usize;
    /// Steps one upload holds.
    fn capacity(&self) -> usize;
    /// Uploads steps `range` for the coming submit.
    fn stage(&self, gpu: &Gpu, range: std::ops::Range<usize>);
    /// Records the copy that makes step `i` of the staged group current (outside a pass).
    fn select(&self, encoder: &mut wgpu::CommandEncoder, i: usize);
}

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
    /// Host time spent staging each step's inputs (its Step; streamed data, its batch).
    pub stage_ns_per_step: f64,
    pub events: Vec<TraceEvent>,
}

/// Steps recorded per profiled submit.
const STEPS_PER_SUBMIT: usize = 16;

/// Runs `steps` (one program run each, as training records them) with a wgpu-profiler scope
/// around every dispatch.
pub fn profile(gpu: &Gpu, program: &Program, steps: &dyn StepInputs) -> ProfileReport {
    let launches: Vec<&Launch> = program.launches().collect();
    let clock = clock_of(gpu);
    let settings = wgpu_profiler::GpuProfilerSettings {
        enable_timer_queries: clock != ProfileClock::WallClock,
        enable_debug_groups: false,
        ..Default::default()
    };
    let mut profiler = wgpu_profiler::GpuProfiler::new(&gpu.device, settings).expect("valid profiler settings");
    let period = gpu.queue.get_timestamp_period();
    let mut by_name: HashMap<String, f64> = HashMap::new();
    let mut events = Vec::new();
    let mut gpu_step_ns = 0.0;
    let mut wall_ns = 0.0;
    let mut stage_ns = 0.0;
    let origin = Instant::now();
    let mut gpu_origin: Option<f64> = None;
    let per_submit = STEPS_PER_SUBMIT.min(steps.capacity());
    for (c, first) in (0..steps.count()).step_by(per_submit).enumerate() {
        let group = first..(first + per_submit).min(steps.count());
        let host_start = origin.elapsed().as_nanos() as f64;
        steps.stage(gpu, group.clone());
        let staged = origin.elapsed().as_nanos() as f64;
        stage_ns += staged - host_start;
        events.push(TraceEvent { name: format!("stage {} steps", group.len()), track: Track::Host, start_ns: host_start, dur_ns: staged - host_start });
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
        record_steps(&mut encoder, &mut profiler, &launches, clock, steps, group.len());
        profiler.resolve_queries(&mut encoder);
        let recorded = origin.elapsed().as_nanos() as f64;
        let submitted = Instant::now();
        gpu.queue.submit(Some(encoder.finish()));
        // Every scope was closed above, so ending the frame cannot fail.
        let _ = profiler.end_frame();
        gpu.wait();
        wall_ns += submitted.elapsed().as_nanos() as f64 + (recorded - host_start);
        let host_end = origin.elapsed().as_nanos() as f64;
        events.push(TraceEvent { name: format!("record {} steps", group.len()), track: Track::Host, start_ns: staged, dur_ns: recorded - staged });
        events.push(TraceEvent { name: format!("submit and wait (chunk {c})"), track: Track::Host, start_ns: recorded, dur_ns: host_end - recorded });
        let Some(results) = profiler.process_finished_frame(period) else { continue };
        let spans: Vec<(String, f64, f64)> = results
            .into_iter()
            .filter_map(|r| r.time.map(|t| (r.label, t.start * 1e9, t.end * 1e9)))
            .collect();
        if spans.is_empty() {
            continue;
        }
        let first = *gpu_origin.get_or_insert(spans.iter().map(|s| s.1).fold(f64::INFINITY, f64::min));
        let (lo, hi) = spans.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s.1), hi.max(s.2)));
        gpu_step_ns += hi - lo;
        for (name, start, end) in spans {
            *by_name.entry(name.clone()).or_default() += end - start;
            events.push(TraceEvent { name, track: Track::Gpu, start_ns: start - first, dur_ns: end - start });
        }
    }
    let mut rows = if clock == ProfileClock::WallClock { Vec::new() } else { kernel_rows(&launches, &by_name, steps.count()) };
    rows.sort_by(|a, b| b.total_ns.total_cmp(&a.total_ns));
    let n = steps.count().max(1) as f64;
    ProfileReport {
        clock,
        steps: steps.count(),
        dispatches_per_step: launches.len(),
        rows,
        gpu_ns_per_step: (clock != ProfileClock::WallClock).then_some(gpu_step_ns / n),
        wall_ns_per_step: wall_ns / n,
        stage_ns_per_step: stage_ns / n,
        events,
    }
}

/// The best clock the adapter offers: timestamps inside passes, at pass boundaries, or none.
fn clock_of(gpu: &Gpu) -> ProfileClock {
    if gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES) {
        ProfileClock::InsidePasses
    } else if gpu.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        ProfileClock::PassBoundaries
    } else {
        ProfileClock::WallClock
    }
}

/// Records `count` staged steps, each launch in its own timed scope: one pass per launch where
/// timestamps only fit pass boundaries, else one pass per step.
fn record_steps(
    encoder: &mut wgpu::CommandEncoder, profiler: &mut wgpu_profiler::GpuProfiler, launches: &[&Launch], clock: ProfileClock, steps: &dyn StepInputs,
    count: usize,
) {
    for i in 0..count {
        steps.select(encoder, i);
        if clock == ProfileClock::PassBoundaries {
            for launch in launches {
                let query = profiler.begin_pass_query(launch.name(), encoder);
                {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(&launch.label),
                        timestamp_writes: query.compute_pass_timestamp_writes(),
                    });
                    launch.record(&mut pass);
                }
                profiler.end_query(encoder, query);
            }
        } else {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
            for launch in launches {
                let mut scope = profiler.scope(launch.name(), &mut pass);
                launch.record(&mut scope);
            }
        }
    }
}

/// One row per kernel name, in the step's order: its GPU time over every step and its calls.
fn kernel_rows(launches: &[&Launch], by_name: &HashMap<String, f64>, steps: usize) -> Vec<KernelRow> {
    let mut rows: Vec<KernelRow> = Vec::new();
    for launch in launches {
        let name = launch.name();
        match rows.iter_mut().find(|r| r.name == name) {
            Some(row) => row.calls += steps as u64,
            None => rows.push(KernelRow {
                total_ns: by_name.get(&name).copied().unwrap_or(0.0),
                name,
                calls: steps as u64,
                flops: launch.flops,
                bytes: launch.bytes,
            }),
        }
    }
    rows
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
