//! The CPU twin of every kernel, under the kernel's own name, in f64: the ground truth the GPU
//! tests compare against and that finite differences check. Written for clarity, not speed.

mod activations;
mod adam;
mod augment;
mod batchnorm;
mod classifier_step;
mod classify;
mod conv;
mod ema;
mod embedding;
mod gan_step;
mod gather;
mod losses;
mod matmul;
mod mlp;
mod random;
mod spectral;
mod vae_step;

pub use activations::{activate, activate_grad_from_output, sigmoid};
pub use adam::{adam, adam_scaled};
pub use augment::{diff_augment, diff_augment_backward};
pub use batchnorm::{batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train, BatchnormSaved};
pub use conv::{
    channel_sum, col2im, conv2d_backward_input, conv2d_backward_weight, conv2d_forward, conv_transpose2d_backward_input, conv_transpose2d_backward_weight,
    conv_transpose2d_forward, im2col, transpose_blocks,
};
pub use ema::ema;
pub use embedding::{class_logit_backward, class_logit_forward, columns, concat_columns, embedding_backward, embedding_forward, one_hot_planes};
pub use gather::{gather_rows, shift_images};
pub use losses::{bce_logits, bce_with_logit, gan_hinge_loss, gan_loss, reparam_kl_backward, reparam_kl_forward, sum_accumulate, GanLossOut};
pub use matmul::{matmul_backward_input, matmul_backward_weight, matmul_forward};
pub use random::{fill_labels, fill_normal, fill_uniform, philox4x32_10, to_unit};
pub use mlp::{mlp_backward, mlp_forward, mlp_forward_grouped, MlpForward};
pub use spectral::{spectral_backward, spectral_forward, spectral_grads, spectral_power, SpectralHead};
pub use vae_step::{vae_step, VaeStepOut};
pub use classifier_step::{classifier_step, ClassifierStepOut};
pub use gan_step::{gan_average, gan_step, GanStepOut};
pub use classify::{gather_labels, iwae_log_weight, logsumexp_groups, softmax_cross_entropy, softmax_rows};
