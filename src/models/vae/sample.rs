//! Drawing from a trained VAE's decoder: z from the prior (or given), batch norm on running
//! statistics, logits turned into pixel values on the host.

use super::*;
use crate::gpu::{Gpu, GpuError, Program, Tensor};
use crate::models::network::{BatchnormMode, Forward};
use crate::nn::{self, LabelVectors, StepBuffer};

/// A decoder logit as the pixel value it stands for: its sigmoid, taken in f64 and the
/// negative side written as e^x / (1 + e^x) so no logit overflows.
pub fn pixel(logit: f32) -> f32 {
    let x = f64::from(logit);
    let p = if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) };
    p as f32
}

/// `n` prior samples' pixel probabilities [n, C·H·W], decoded `max_rows` at a time (chunks whose
/// row count is a multiple of the class count, so the asked-for classes cycle as in one
/// sampler): chunk c draws its z at rng_step c, so a single chunk (any MLP VAE at 5,000) is
/// exactly one sampler's draw. A conditional model's row i asks for `asked[i]`, or i mod k
/// without it. Leaves `step` at the default Step.
pub fn sample_images(gpu: &Gpu, vae: &Vae, n: usize, step: &StepBuffer, seed: u64, asked: Option<&[usize]>) -> Result<Vec<f32>, GpuError> {
    let rows = crate::models::chunk_rows(n, vae.max_rows(gpu), vae.config.label_width());
    let sampler = VaeSampler::new(gpu, vae, rows, &step.uniform, seed)?;
    let read = |take| sampler.decoder.output().read_rows(gpu, take, pixel);
    crate::models::sample_in_chunks(gpu, n, rows, step, &sampler.program, sampler.labels.as_ref(), asked, read)
}

/// Decodes `rows` latent vectors: `program` draws them from N(0, I) with a fixed key (and,
/// conditioned, asks for the classes in `labels`, which the host writes: row i asks for class
/// i mod k until then); `decode` reads an `input` the host wrote whole (z, or [z | label
/// vector] conditioned, so a row can blend two classes): grids, interpolations, the manifold.
pub struct VaeSampler {
    pub z: Tensor,
    /// [rows] class indices as f32, conditioned only
    pub labels: Option<Tensor>,
    /// [rows, latent (+ k + pad)]: what the decoder reads (z itself when unconditioned)
    pub input: Tensor,
    pub decoder: Forward,
    pub program: Program,
    pub decode: Program,
}

impl VaeSampler {
    pub fn new(gpu: &Gpu, vae: &Vae, rows: usize, step: &wgpu::Buffer, seed: u64) -> Result<VaeSampler, GpuError> {
        let latent = vae.config.latent;
        let z = Tensor::zeros(gpu, "sample.z", &[rows, latent])?;
        let mut program = Program::default();
        program.phase("noise", vec![nn::fill_normal(gpu, "sample.z", step, z.view(), STREAM_SAMPLE, seed)]);
        let (labels, input) = match vae.config.classes {
            Some(k) => {
                let classes: Vec<f32> = crate::models::cycling_classes(rows, k).iter().map(|&c| c as f32).collect();
                let labels = Tensor::from_slice(gpu, "sample.labels", &[rows], &classes)?;
                let input = Tensor::zeros(gpu, "sample.decoder.input", &[rows, input_widths(&vae.config).1])?;
                let mut condition = vec![
                    nn::copy_columns(gpu, "decoder.input", z.view(), input.view().columns(0, latent)),
                    nn::embedding_forward(gpu, "decoder.one_hot", labels.view(), LabelVectors::OneHot, input.view().columns(latent, k)),
                ];
                if let Some((means, _)) = vae.prior_mean() {
                    condition.push(nn::embedding_add(gpu, "prior.mean", labels.view(), LabelVectors::Table(means), input.view().columns(0, latent)));
                }
                program.phase("condition", condition);
                (Some(labels), input)
            }
            None => (None, z.clone()),
        };
        let decoder = vae.decoder.forward_buffers(gpu, input.region(), None)?;
        program.phase("decoder.forward", vae.decoder.forward_launches(gpu, &vae.params, &decoder, BatchnormMode::Eval));
        let mut decode = Program::default();
        decode.phase("decoder.forward", vae.decoder.forward_launches(gpu, &vae.params, &decoder, BatchnormMode::Eval));
        Ok(VaeSampler { z, labels, input, decoder, program, decode })
    }
}
