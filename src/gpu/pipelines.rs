use std::collections::HashMap;
use std::sync::Mutex;

use super::Gpu;

/// The prelude every kernel module starts with: activations, the Step struct, reductions.
const PRELUDE: &str = include_str!("../../shaders/common.wgsl");

/// The subgroup kernels' block and 4 × 4 steps, after the prelude in files named `*_subgroup`.
const SUBGROUP_PRELUDE: &str = include_str!("../../shaders/subgroup_common.wgsl");

/// Declares every kernel once: its shader file (in `shaders/`, without `.wgsl`) and its entry
/// point. From the one table come `SHADER_FILES`, the `Kernel` enum, `Kernel::ALL` and
/// `Kernel::location`, so a new kernel is one line here (and a new file one block).
macro_rules! kernels {
    ($($file:literal => { $($kernel:ident: $entry:literal,)+ },)+) => {
        /// Every kernel file in `shaders/`, by name. The prelude is not listed: it is no module alone.
        pub const SHADER_FILES: &[(&str, &str)] = &[$(($file, include_str!(concat!("../../shaders/", $file, ".wgsl")))),+];

        /// Every compute entry point wgen dispatches.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum Kernel {
            $($($kernel,)+)+
        }

        impl Kernel {
            /// Every kernel, in the table's order.
            pub const ALL: &[Kernel] = &[$($(Kernel::$kernel,)+)+];

            /// (file in shaders/, entry point)
            pub fn location(self) -> (&'static str, &'static str) {
                match self {
                    $($(Kernel::$kernel => ($file, $entry),)+)+
                }
            }
        }
    };
}

kernels! {
    "matmul" => {
        MatmulForward: "matmul_forward",
        MatmulBackwardInput: "matmul_backward_input",
        MatmulBackwardWeight: "matmul_backward_weight",
        MatmulNaive: "matmul_naive",
    },
    "matmul_vec4" => {
        MatmulForwardVec4: "matmul_forward_vec4",
        MatmulBackwardInputVec4: "matmul_backward_input_vec4",
        MatmulBackwardWeightVec4: "matmul_backward_weight_vec4",
        MatmulReduceSplitsVec4: "matmul_reduce_splits_vec4",
    },
    "matmul_subgroup" => {
        MatmulForwardSubgroup: "matmul_forward_subgroup",
        MatmulBackwardInputSubgroup: "matmul_backward_input_subgroup",
        MatmulBackwardWeightSubgroup: "matmul_backward_weight_subgroup",
    },
    "batchnorm" => {
        BatchnormForwardTrain: "batchnorm_forward_train",
        BatchnormForwardEval: "batchnorm_forward_eval",
        BatchnormBackward: "batchnorm_backward",
    },
    "bce_logits" => {
        BceLogits: "bce_logits",
    },
    "gan_loss" => {
        GanLoss: "gan_loss",
    },
    "reparam_kl" => {
        ReparamKlForward: "reparam_kl_forward",
        ReparamKlBackward: "reparam_kl_backward",
    },
    "sum_accumulate" => {
        SumAccumulate: "sum_accumulate",
    },
    "adam" => {
        Adam: "adam",
    },
    "ema" => {
        Ema: "ema",
    },
    "random" => {
        FillUniform: "fill_uniform",
        FillNormal: "fill_normal",
        FillLabels: "fill_labels",
    },
    "gather" => {
        GatherRows: "gather_rows",
        GatherLabels: "gather_labels",
    },
    "augment" => {
        ShiftImages: "shift_images",
    },
    "spectral_norm" => {
        SpectralNormalise: "spectral_normalise",
        SpectralSigma: "spectral_sigma",
        SpectralScale: "spectral_scale",
        SpectralDot: "spectral_dot",
        SpectralTotal: "spectral_total",
        SpectralGrad: "spectral_grad",
    },
    "diff_augment" => {
        DiffAugment: "diff_augment",
        DiffAugmentBackward: "diff_augment_backward",
    },
    "softmax_xent" => {
        SoftmaxCrossEntropy: "softmax_cross_entropy",
        SoftmaxRows: "softmax_rows",
    },
    "iwae" => {
        IwaeLogWeight: "iwae_log_weight",
        LogsumexpGroups: "logsumexp_groups",
    },
    "embedding" => {
        EmbeddingForward: "embedding_forward",
        EmbeddingBackward: "embedding_backward",
        CopyColumns: "copy_columns",
        ClassLogitForward: "class_logit_forward",
        ClassLogitBackward: "class_logit_backward",
    },
    "conv_subgroup" => {
        ConvForwardSubgroup: "conv_forward_subgroup",
        ConvBackwardInputSubgroup: "conv_backward_input_subgroup",
        ConvBackwardWeightSubgroup: "conv_backward_weight_subgroup",
        ConvTaps: "conv_taps",
        ConvReduceSplits: "conv_reduce_splits",
    },
    "conv" => {
        Im2col: "im2col",
        Col2im: "col2im",
        TransposeBlocks: "transpose_blocks",
        ChannelSum: "channel_sum",
    },
}

/// The WGSL a module is compiled from: the prelude (and the subgroup one), then the kernel file.
pub fn module_source(file: &str) -> Option<String> {
    let subgroup = if file.ends_with("_subgroup") { SUBGROUP_PRELUDE } else { "" };
    SHADER_FILES
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, body)| format!("{PRELUDE}\n{subgroup}\n{body}"))
}

impl Kernel {
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
