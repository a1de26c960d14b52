//! The GPU runtime: picking an adapter, typed buffers, the pipeline cache and the one place a
//! dispatch is recorded.

mod context;
mod conv_plan;
mod dispatch;
mod error;
mod family;
mod pipelines;
mod profiler;
mod tensor;
mod timing;

pub use context::{list_adapters, AdapterSummary, BackendChoice, Gpu, GpuOptions};
pub use conv_plan::{ConvPath, ConvPlan, ConvTuning, TunedConv};
pub use error::GpuError;
pub use family::MatmulImpl;
pub use dispatch::{grid_1d, grid_rows, Binding, Launch, Phase, Program};
pub use pipelines::{module_source, Kernel, SHADER_FILES};
pub use profiler::{profile, KernelRow, ProfileClock, ProfileReport, StepInputs, TraceEvent, Track};
pub use tensor::{Region, Tensor, View};
pub use timing::{time_launches, Clock};
