//! Host-side launchers: each builds a kernel's params uniform and bind group once and returns a
//! `Launch` to record every step. Shapes are checked here; a mismatch is a programming error.

mod activations;
mod adam;
mod augment;
mod batchnorm;
mod classify;
mod conv;
mod conv_implicit;
mod conv_layer;
mod conv_operands;
mod conv_tune;
mod ema;
mod embedding;
mod gather;
mod linear;
mod losses;
mod random;
mod spectral;
mod step;

pub use activations::Activation;
pub use adam::{adam, AdamConfig, AdamParams};
pub use augment::{diff_augment, diff_augment_backward, shift_images, AugmentParams, AugmentPolicy, ShiftParams, AUGMENT_DRAWS};
pub use batchnorm::{batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train, check_column, BatchGroups, BatchnormParams, BatchnormTensors, BATCHNORM_COLUMN_MOST};
pub use conv::{channel_sum, col2im, im2col, transpose_blocks, ConvParams, ConvShape, Epilogue};
pub use conv_implicit::{conv_input, conv_output, conv_taps, conv_weight, reads_nchw, split_chunks, taps_len, ConvGemmParams, ConvPath, ConvPlan, WeightDy};
pub use conv_layer::{conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward, ConvBuffers, ConvScratch};
pub use conv_operands::{ConvOperands, ConvPasses};
pub use classify::{iwae_log_weight, logsumexp_groups, softmax_cross_entropy, softmax_rows, IwaeParams, XentParams};
pub use ema::{ema, EmaParams};
pub use embedding::{class_logit_backward, class_logit_forward, copy_columns, embedding_add, embedding_backward, embedding_forward, EmbedParams, LabelVectors};
pub use gather::{gather_labels, gather_rows, GatherParams};
pub use linear::{
    backward_input_params, backward_weight_params, forward_params, matmul_backward_input, matmul_backward_input_with, matmul_backward_weight,
    matmul_backward_weight_split, matmul_backward_weight_with, matmul_forward, matmul_forward_with, matmul_naive,
    LayerOperands, MatmulParams,
};
pub use losses::{bce_logits, gan_loss, GanLoss, GanLossParts, reparam_kl_backward, reparam_kl_forward, sum_accumulate, BceParams, GanLossParams, KlParams, SumParams};
pub use random::{fill_labels, fill_normal, fill_uniform, RngParams};
pub use spectral::{spectral_backward, spectral_power, spectral_scale, spectral_scratch_len, SpectralParams, SpectralTensors, SPECTRAL_EPS};
pub use step::{submit_steps, StagedSteps, Step, StepBuffer};

/// Workgroups of 256 threads covering `n` items, laid out within the adapter's limits.
fn grid_for(gpu: &crate::gpu::Gpu, n: usize, per_group: usize) -> [u32; 3] {
    crate::gpu::grid_1d(n.div_ceil(per_group) as u32, gpu.limits.max_compute_workgroups_per_dimension)
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).expect("sizes fit in u32: buffers are limited far below 4 G elements")
}
