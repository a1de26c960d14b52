use std::fmt;

use super::error::GpuError;
use super::family::{implicit_conv_wanted, subgroups_fit, MatmulImpl};
use super::pipelines::Pipelines;

/// A graphics API to restrict the adapter search to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

impl BackendChoice {
    fn backends(self) -> wgpu::Backends {
        match self {
            BackendChoice::Vulkan => wgpu::Backends::VULKAN,
            BackendChoice::Metal => wgpu::Backends::METAL,
            BackendChoice::Dx12 => wgpu::Backends::DX12,
            BackendChoice::Gl => wgpu::Backends::GL,
        }
    }
}

/// How to choose the adapter: by default a hardware GPU first, software rasterisers last.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    pub backend: Option<BackendChoice>,
    /// Case-insensitive substring of the adapter's name.
    pub adapter: Option<String>,
}

/// What `wgen devices` prints for each adapter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub timestamps: bool,
    pub f16: bool,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver: {}, timestamps: {}, f16: {})",
            self.name,
            self.backend,
            self.device_type,
            if self.driver.is_empty() { "?" } else { &self.driver },
            yes_no(self.timestamps),
            yes_no(self.f16)
        )
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn instance(backend: Option<BackendChoice>) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(b) = backend {
        desc.backends = b.backends();
    }
    wgpu::Instance::new(desc)
}

fn summary(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let features = adapter.features();
    AdapterSummary {
        name: info.name,
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: format!("{:?}", info.device_type),
        driver: [info.driver, info.driver_info]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        f16: features.contains(wgpu::Features::SHADER_F16),
    }
}

/// Lower is better: hardware before software, native APIs before GL.
fn rank(adapter: &wgpu::Adapter) -> (u8, u8) {
    let info = adapter.get_info();
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let api = u8::from(info.backend == wgpu::Backend::Gl);
    (kind, api)
}

/// Every adapter the enabled back ends can see, best first.
pub fn list_adapters(backend: Option<BackendChoice>) -> Vec<AdapterSummary> {
    sorted_adapters(&instance(backend)).iter().map(summary).collect()
}

fn sorted_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(rank);
    adapters
}

/// An open device with its queue and the kernels compiled for it.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub matmul: MatmulImpl,
    /// Whether shaders/matmul_subgroup.wgsl can run here (8-lane subgroups).
    pub subgroup_matmul: bool,
    /// Whether convolutions may run as implicit products (shaders/conv_subgroup.wgsl) where
    /// the subgroup family runs: `WGEN_CONV=im2col` keeps them on im2col.
    pub implicit_conv: bool,
    /// Conv plans timed on this device with this matmul family (`nn::ConvPlan::chosen`).
    pub conv_tuning: std::sync::Arc<std::sync::Mutex<super::ConvTuning>>,
    pub(super) pipelines: Pipelines,
    /// Set by wgpu's device-lost callback (and, in a browser, by the first uncaptured error).
    lost: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// A small storage buffer for a kernel's writable binding that a launch never writes: on
    /// WebGPU two writable bindings of one dispatch may not share a buffer.
    pub unused: wgpu::Buffer,
}

impl Gpu {
    pub fn new(options: &GpuOptions) -> Result<Gpu, GpuError> {
        let instance = instance(options.backend);
        let adapters = sorted_adapters(&instance);
        let backend = options
            .backend
            .map(|b| format!(" for backend {b:?}").to_lowercase())
            .unwrap_or_default();
        if adapters.is_empty() {
            return Err(GpuError::NoAdapter { backend });
        }
        let adapter = match &options.adapter {
            None => adapters[0].clone(),
            Some(wanted) => {
                let needle = wanted.to_lowercase();
                adapters
                    .iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&needle))
                    .cloned()
                    .ok_or_else(|| GpuError::NoMatchingAdapter {
                        wanted: wanted.clone(),
                        available: adapters
                            .iter()
                            .map(|a| a.get_info().name)
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?
            }
        };
        pollster::block_on(Self::open(&adapter))
    }

    /// The adapter the platform prefers, a high-performance one where it has a choice: the
    /// only way a browser offers one (WebGPU lists none).
    pub async fn preferred() -> Result<Gpu, GpuError> {
        let instance = instance(None);
        let options = wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
        let adapter = instance.request_adapter(&options).await.map_err(|_| GpuError::NoAdapter { backend: String::new() })?;
        Self::open(&adapter).await
    }

    async fn open(adapter: &wgpu::Adapter) -> Result<Gpu, GpuError> {
        let info = adapter.get_info();
        // Timestamps and subgroups are requested when offered: asking costs nothing; only
        // `wgen profile` writes timestamps, only the subgroup matmul uses subgroups.
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        // The defaults are smaller than many adapters offer (lavapipe's storage bindings reach
        // 128 MiB against the default 128 MiB, buffers 2 GiB against 256 MiB): take what it has.
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgen"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|source| GpuError::RequestDevice { adapter: info.name.clone(), source })?;
        let subgroup_matmul = subgroups_fit(&info, features);
        let matmul = MatmulImpl::for_adapter(&info, features, subgroup_matmul)?;
        let implicit_conv = implicit_conv_wanted()?;
        let lost = std::sync::Arc::new(std::sync::Mutex::new(None));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *flag.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{reason:?}: {message}"));
        });
        // A browser reports a validation error as a console warning and drops the command
        // buffer, so training would go on computing nothing: keep the first, for the next read
        // to fail with. Native wgpu's default (a panic at the error) stays.
        #[cfg(target_arch = "wasm32")]
        {
            let flag = lost.clone();
            device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
                flag.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| format!("GPU error: {e}"));
            }));
        }
        let unused = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Ok(Gpu {
            lost,
            unused,
            device,
            queue,
            matmul,
            subgroup_matmul,
            implicit_conv,
            conv_tuning: Default::default(),
            info,
            limits,
            features,
            pipelines: Pipelines::default(),
        })
    }

    /// The same device with another matmul family, its own pipeline cache and no conv plans
    /// timed yet, for benchmarks that compare the families side by side in one run.
    pub fn with_matmul(&self, matmul: MatmulImpl) -> Gpu {
        Gpu {
            device: self.device.clone(),
            queue: self.queue.clone(),
            info: self.info.clone(),
            limits: self.limits.clone(),
            features: self.features,
            matmul,
            subgroup_matmul: self.subgroup_matmul,
            implicit_conv: self.implicit_conv,
            conv_tuning: Default::default(),
            pipelines: Pipelines::default(),
            lost: self.lost.clone(),
            unused: self.unused.clone(),
        }
    }

    /// The same device with convolutions on the implicit products (where it runs them) or on
    /// im2col, for benchmarks that compare the two.
    pub fn with_conv(&self, implicit: bool) -> Gpu {
        Gpu { implicit_conv: implicit, ..self.with_matmul(self.matmul) }
    }

    /// The matmul families this adapter can run, tiled first.
    pub fn matmul_families(&self) -> Vec<MatmulImpl> {
        let mut all = vec![MatmulImpl::Tiled, MatmulImpl::Vec4];
        if self.subgroup_matmul {
            all.push(MatmulImpl::Subgroup);
        }
        all
    }

    /// `name (backend)`, for logs and run configs.
    pub fn adapter_name(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }

    /// Refuses a buffer the adapter cannot bind, before any work is done.
    pub fn check_binding_size(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit {
            return Err(GpuError::TooLarge {
                what: what.to_string(),
                needed: bytes,
                limit,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        Ok(())
    }

    /// Why the device was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// An error naming the kept checkpoint folder once the device is lost.
    pub fn check_lost(&self, kept: &std::path::Path) -> Result<(), GpuError> {
        match self.lost() {
            Some(reason) => Err(GpuError::Lost { reason, kept: kept.display().to_string() }),
            None => Ok(()),
        }
    }

    /// Blocks until the queue is idle.
    pub fn wait(&self) {
        // A lost device surfaces through the device-lost callback; nothing to do here.
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }

    /// Copies `len` elements of `buffer` from element `offset` back to the host. Not for hot
    /// paths: it waits for the queue.
    pub fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, offset: u64, len: usize) -> Result<Vec<T>, GpuError> {
        pollster::block_on(self.read_async(buffer, offset, len))
    }

    /// `read` as a future, for a caller that must not block (a browser, whose event loop
    /// completes the mapping): native back ends have done the copy before it is first polled.
    pub async fn read_async<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, offset: u64, len: usize) -> Result<Vec<T>, GpuError> {
        let size = std::mem::size_of::<T>();
        let bytes = (len * size) as u64;
        // Copies must be 4-byte multiples; round up and cut afterwards.
        let padded = bytes.div_ceil(wgpu::COPY_BUFFER_ALIGNMENT) * wgpu::COPY_BUFFER_ALIGNMENT;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: padded.max(4),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        encoder.copy_buffer_to_buffer(buffer, offset * size as u64, &staging, 0, padded);
        self.queue.submit(Some(encoder.finish()));
        let slice = staging.slice(..);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // Native back ends run the callback inside poll; on WebGPU poll does nothing.
        self.wait();
        let fail = |detail: String| GpuError::Readback {
            what: format!("a buffer of {} bytes", buffer.size()),
            detail,
        };
        rx.await
            .map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        #[cfg(target_arch = "wasm32")]
        if let Some(reason) = self.lost() {
            return Err(fail(reason));
        }
        let view = slice.get_mapped_range().map_err(|e| fail(e.to_string()))?;
        let out = bytemuck::pod_collect_to_vec::<u8, T>(&view[..bytes as usize]);
        drop(view);
        staging.unmap();
        Ok(out)
    }
}
