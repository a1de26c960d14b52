use std::collections::HashMap;
use std::sync::Mutex;

use super::Gpu;

/// The prelude every kernel module starts with: activations, the Step struct, reductions.
const PRELUDE: &str = include_str!("../../shaders/common.wgsl");

/// Every kernel file in `shaders/`, by name. The prelude is not listed: it is no module alone.
pub const SHADER_FILES: &[(&str, &str)] = &[
    ("matmul", include_str!("../../shaders/matmul.wgsl")),
    ("matmul_vec4", include_str!("../../shaders/matmul_vec4.wgsl")),
    ("matmul_subgroup", include_str!("../../shaders/matmul_subgroup.wgsl")),
    ("batchnorm", include_str!("../../shaders/batchnorm.wgsl")),
    ("bce_logits", include_str!("../../shaders/bce_logits.wgsl")),
    ("gan_loss", include_str!("../../shaders/gan_loss.wgsl")),
    ("reparam_kl", include_str!("../../shaders/reparam_kl.wgsl")),
    ("sum_accumulate", include_str!("../../shaders/sum_accumulate.wgsl")),
    ("adam", include_str!("../../shaders/adam.wgsl")),
    ("ema", include_str!("../../shaders/ema.wgsl")),
    ("random", include_str!("../../shaders/random.wgsl")),
    ("gather", include_str!("../../shaders/gather.wgsl")),
    ("augment", include_str!("../../shaders/augment.wgsl")),
    ("softmax_xent", include_str!("../../shaders/softmax_xent.wgsl")),
    ("iwae", include_str!("../../shaders/iwae.wgsl")),
    ("embedding", include_str!("../../shaders/embedding.wgsl")),
    ("conv", include_str!("../../shaders/conv.wgsl")),
];

/// The WGSL a module is compiled from: the prelude, then the kernel file.
pub fn module_source(file: &str) -> Option<String> {
    SHADER_FILES
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, body)| format!("{PRELUDE}\n{body}"))
}

/// Every compute entry point wgen dispatches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Kernel {
    MatmulForward,
    MatmulBackwardInput,
    MatmulBackwardWeight,
    MatmulNaive,
    MatmulForwardVec4,
    MatmulBackwardInputVec4,
    MatmulBackwardWeightVec4,
    MatmulForwardSubgroup,
    MatmulBackwardInputSubgroup,
    MatmulBackwardWeightSubgroup,
    BatchnormForwardTrain,
    BatchnormForwardEval,
    BatchnormBackward,
    BceLogits,
    GanLoss,
    ReparamKlForward,
    ReparamKlBackward,
    SumAccumulate,
    Adam,
    Ema,
    FillUniform,
    FillNormal,
    FillLabels,
    EmbeddingForward,
    EmbeddingBackward,
    CopyColumns,
    ClassLogitForward,
    ClassLogitBackward,
    GatherRows,
    GatherLabels,
    ShiftImages,
    SoftmaxCrossEntropy,
    SoftmaxRows,
    IwaeLogWeight,
    LogsumexpGroups,
    Im2col,
    Col2im,
    TransposeBlocks,
    ChannelSum,
}

impl Kernel {
    /// (file in shaders/, entry point)
    pub fn location(self) -> (&'static str, &'static str) {
        match self {
            Kernel::MatmulForward => ("matmul", "matmul_forward"),
            Kernel::MatmulBackwardInput => ("matmul", "matmul_backward_input"),
            Kernel::MatmulBackwardWeight => ("matmul", "matmul_backward_weight"),
            Kernel::MatmulNaive => ("matmul", "matmul_naive"),
            Kernel::MatmulForwardVec4 => ("matmul_vec4", "matmul_forward_vec4"),
            Kernel::MatmulBackwardInputVec4 => ("matmul_vec4", "matmul_backward_input_vec4"),
            Kernel::MatmulBackwardWeightVec4 => ("matmul_vec4", "matmul_backward_weight_vec4"),
            Kernel::MatmulForwardSubgroup => ("matmul_subgroup", "matmul_forward_subgroup"),
            Kernel::MatmulBackwardInputSubgroup => ("matmul_subgroup", "matmul_backward_input_subgroup"),
            Kernel::MatmulBackwardWeightSubgroup => ("matmul_subgroup", "matmul_backward_weight_subgroup"),
            Kernel::BatchnormForwardTrain => ("batchnorm", "batchnorm_forward_train"),
            Kernel::BatchnormForwardEval => ("batchnorm", "batchnorm_forward_eval"),
            Kernel::BatchnormBackward => ("batchnorm", "batchnorm_backward"),
            Kernel::BceLogits => ("bce_logits", "bce_logits"),
            Kernel::GanLoss => ("gan_loss", "gan_loss"),
            Kernel::ReparamKlForward => ("reparam_kl", "reparam_kl_forward"),
            Kernel::ReparamKlBackward => ("reparam_kl", "reparam_kl_backward"),
            Kernel::SumAccumulate => ("sum_accumulate", "sum_accumulate"),
            Kernel::Adam => ("adam", "adam"),
            Kernel::Ema => ("ema", "ema"),
            Kernel::FillUniform => ("random", "fill_uniform"),
            Kernel::FillNormal => ("random", "fill_normal"),
            Kernel::FillLabels => ("random", "fill_labels"),
            Kernel::EmbeddingForward => ("embedding", "embedding_forward"),
            Kernel::EmbeddingBackward => ("embedding", "embedding_backward"),
            Kernel::CopyColumns => ("embedding", "copy_columns"),
            Kernel::ClassLogitForward => ("embedding", "class_logit_forward"),
            Kernel::ClassLogitBackward => ("embedding", "class_logit_backward"),
            Kernel::GatherRows => ("gather", "gather_rows"),
            Kernel::GatherLabels => ("gather", "gather_labels"),
            Kernel::ShiftImages => ("augment", "shift_images"),
            Kernel::SoftmaxCrossEntropy => ("softmax_xent", "softmax_cross_entropy"),
            Kernel::SoftmaxRows => ("softmax_xent", "softmax_rows"),
            Kernel::IwaeLogWeight => ("iwae", "iwae_log_weight"),
            Kernel::LogsumexpGroups => ("iwae", "logsumexp_groups"),
            Kernel::Im2col => ("conv", "im2col"),
            Kernel::Col2im => ("conv", "col2im"),
            Kernel::TransposeBlocks => ("conv", "transpose_blocks"),
            Kernel::ChannelSum => ("conv", "channel_sum"),
        }
    }

    pub fn entry_point(self) -> &'static str {
        self.location().1
    }
}

/// Compiled modules and pipelines, built on first use and kept for the device's lifetime.
#[derive(Default)]
pub(crate) struct Pipelines {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<Kernel, wgpu::ComputePipeline>>,
}

impl Gpu {
    /// The pipeline for `kernel`; its bind group layout is derived from what the entry point
    /// uses, so each launcher binds exactly those slots.
    pub fn pipeline(&self, kernel: Kernel) -> wgpu::ComputePipeline {
        if let Some(p) = self.pipelines.pipelines.lock().unwrap().get(&kernel) {
            return p.clone();
        }
        let (file, entry) = kernel.location();
        let module = self.module(file);
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.pipelines.pipelines.lock().unwrap().insert(kernel, pipeline.clone());
        pipeline
    }

    fn module(&self, file: &'static str) -> wgpu::ShaderModule {
        let mut modules = self.pipelines.modules.lock().unwrap();
        modules
            .entry(file)
            .or_insert_with(|| {
                let source = module_source(file).expect("every Kernel names a listed shader file");
                self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(file),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                })
            })
            .clone()
    }
}
