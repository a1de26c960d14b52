use bytemuck::Pod;
use wgpu::util::DeviceExt;

use super::{Gpu, Kernel};

/// Workgroup counts for `groups` workgroups of a 1-D job, folded into y and z when x would pass
/// the adapter's per-axis limit. Kernels recover the index with `linear_workgroup`; the few
/// surplus workgroups of the fold exit on their bounds checks.
pub fn grid_1d(groups: u32, max_per_dim: u32) -> [u32; 3] {
    let groups = groups.max(1);
    if groups <= max_per_dim {
        return [groups, 1, 1];
    }
    let y = groups.div_ceil(max_per_dim);
    if y <= max_per_dim {
        return [max_per_dim, y, 1];
    }
    [max_per_dim, max_per_dim, y.div_ceil(max_per_dim)]
}

/// Grid of a tiled 2-D job: `cols` tiles along x, `rows` tiles along y, folded into z.
pub fn grid_rows(cols: u32, rows: u32, max_per_dim: u32) -> [u32; 3] {
    let rows = rows.max(1);
    if rows <= max_per_dim {
        return [cols.max(1), rows, 1];
    }
    [cols.max(1), max_per_dim, rows.div_ceil(max_per_dim)]
}

/// A buffer bound at one slot, whole or from a byte offset.
#[derive(Clone, Copy)]
pub struct Binding<'a> {
    pub slot: u32,
    pub buffer: &'a wgpu::Buffer,
}

/// One recorded-ahead dispatch: its pipeline, its bind group (params uniform included) and its
/// grid, built once and recorded into as many passes as needed.
pub struct Launch {
    pub kernel: Kernel,
    /// The layer or tensor it works on, e.g. `gen.fc2`, for labels and profiles.
    pub label: String,
    /// Floating-point operations (an FMA counts 2, exp/log/sqrt/sin/cos 1 each) and the bytes
    /// it must move at the least (each input read once, each output written once), for the
    /// profiler's rates. Each launcher states its formula.
    pub flops: u64,
    pub bytes: u64,
    /// Its shape, e.g. `64x256·256x512 leaky_relu:0.2`.
    pub detail: String,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    grid: [u32; 3],
}

impl Launch {
    /// Builds the params uniform (slot 0) and the bind group for `kernel`.
    pub fn new<P: Pod>(
        gpu: &Gpu,
        kernel: Kernel,
        label: impl Into<String>,
        params: &P,
        bindings: &[Binding<'_>],
        grid: [u32; 3],
    ) -> Launch {
        let label = label.into();
        let pipeline = gpu.pipeline(kernel);
        let params_buffer = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(&format!("{label}.{}.params", kernel.entry_point())),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params_buffer.as_entire_binding(),
        }];
        entries.extend(bindings.iter().map(|b| wgpu::BindGroupEntry {
            binding: b.slot,
            resource: b.buffer.as_entire_binding(),
        }));
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("{label}.{}", kernel.entry_point())),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Launch {
            kernel,
            label,
            flops: 0,
            bytes: 0,
            detail: String::new(),
            pipeline,
            bind_group,
            grid,
        }
    }

    /// Attaches the work counts the profiler turns into GFLOP/s and GB/s.
    pub fn with_cost(mut self, flops: u64, bytes: u64, detail: String) -> Launch {
        self.flops = flops;
        self.bytes = bytes;
        self.detail = detail;
        self
    }

    /// The one place a dispatch is recorded.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.grid;
        pass.dispatch_workgroups(x, y, z);
    }

    /// `entry_point layer [shape]`, e.g. `matmul_forward generator.fc2 [64x256·256x512 relu]`.
    pub fn name(&self) -> String {
        format!("{} {} [{}]", self.kernel.entry_point(), self.label, self.detail)
    }

    pub fn grid(&self) -> [u32; 3] {
        self.grid
    }
}

impl Gpu {
    /// Records `launches` into one compute pass, submits and waits. For one-off work and tests;
    /// training records its own command buffers.
    pub fn run(&self, label: &str, launches: &[&Launch]) {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            for launch in launches {
                launch.record(&mut pass);
            }
        }
        self.queue.submit(Some(encoder.finish()));
        self.wait();
    }
}

/// A named group of launches, recorded inside a debug group so captures and profiles show
/// the step's structure (`encoder.forward`, `loss`, `adam`, ...).
pub struct Phase {
    pub name: String,
    pub launches: Vec<Launch>,
}

/// Everything one training step (or evaluation chunk) dispatches, in order, built once.
#[derive(Default)]
pub struct Program {
    pub phases: Vec<Phase>,
}

impl Program {
    pub fn phase(&mut self, name: &str, launches: Vec<Launch>) {
        self.phases.push(Phase { name: name.to_string(), launches });
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        for phase in &self.phases {
            pass.push_debug_group(&phase.name);
            for launch in &phase.launches {
                launch.record(pass);
            }
            pass.pop_debug_group();
        }
    }

    pub fn launches(&self) -> impl Iterator<Item = &Launch> {
        self.phases.iter().flat_map(|p| p.launches.iter())
    }

    pub fn dispatch_count(&self) -> usize {
        self.launches().count()
    }

    /// Records, submits and waits: for evaluation and sampling, not the training loop.
    pub fn run(&self, gpu: &Gpu, label: &str) {
        let mut encoder = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
            self.record(&mut pass);
        }
        gpu.queue.submit(Some(encoder.finish()));
        gpu.wait();
    }
}
