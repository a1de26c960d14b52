//! Drawing from a trained generator: batch norm on running statistics, in chunks that fit one
//! storage binding.

use super::*;
use crate::gpu::{Gpu, GpuError, Program, Tensor, View};
use crate::models::network::{BatchnormMode, Forward};
use crate::nn::{self, LabelVectors, StepBuffer};

/// `n` samples [n, C·H·W] in [0, 1], generated `max_rows` at a time (chunks whose row count is a
/// multiple of the class count, so the default classes cycle as in one sampler): chunk c
/// draws its z at rng_step c, so a single chunk (any MLP GAN at 5,000) is exactly one
/// sampler's draw. A conditional model's row i asks for `asked[i]`, or i mod k without it.
/// Leaves `step` at the default Step.
pub fn sample_images(gpu: &Gpu, gan: &Gan, n: usize, step: &StepBuffer, seed: u64, asked: Option<&[usize]>) -> Result<Vec<f32>, GpuError> {
    let rows = crate::models::chunk_rows(n, gan.max_rows(gpu), gan.config.label_width());
    let sampler = GanSampler::new(gpu, gan, rows, &step.uniform, seed)?;
    let output = gan.config.output;
    let read = |take| sampler.generator.output().read_rows(gpu, take, |v| output.to_unit(v));
    crate::models::sample_in_chunks(gpu, n, rows, step, &sampler.program, sampler.labels.as_ref(), asked, read)
}

/// Generates `rows` images, batch norm on running statistics: `program` from noise drawn with
/// a fixed key (and, conditioned, the classes in `labels`, which the host writes: row i asks
/// for class i mod k until then); `decode` from an `input` the host wrote whole (z, or
/// [label vector | z] conditioned, so a row can blend two classes' vectors).
pub struct GanSampler {
    pub z: Tensor,
    /// [rows] class indices as f32, conditioned only
    pub labels: Option<Tensor>,
    /// [rows, latent (+ k + pad)]: what G reads (z itself when unconditioned)
    pub input: Tensor,
    pub generator: Forward,
    pub program: Program,
    pub decode: Program,
}

impl GanSampler {
    pub fn new(gpu: &Gpu, gan: &Gan, rows: usize, step: &wgpu::Buffer, seed: u64) -> Result<GanSampler, GpuError> {
        let cfg = &gan.config;
        let z = Tensor::zeros(gpu, "sample.z", &[rows, cfg.latent])?;
        let mut program = Program::default();
        program.phase("noise", vec![nn::fill_normal(gpu, "sample.z", step, z.view(), STREAM_SAMPLE, seed)]);
        // G's average, when it keeps one: its label table too.
        let weights = gan.params.sampling_weights();
        let (labels, input) = match (cfg.classes, gan.params.layout.find(G_EMBEDDING)) {
            (Some(k), Some(e)) => {
                let table = View::new(weights.values, e.offset, k, k);
                let classes: Vec<f32> = crate::models::cycling_classes(rows, k).iter().map(|&c| c as f32).collect();
                let labels = Tensor::from_slice(gpu, "sample.labels", &[rows], &classes)?;
                let input = Tensor::zeros(gpu, "sample.generator.input", &[rows, input_widths(cfg).0])?;
                program.phase(
                    "condition",
                    vec![
                        nn::embedding_forward(gpu, "generator.label_emb", labels.view(), LabelVectors::Table(table), input.view().columns(0, k)),
                        nn::copy_columns(gpu, "generator.input", z.view(), input.view().columns(k, cfg.latent)),
                    ],
                );
                (Some(labels), input)
            }
            _ => (None, z.clone()),
        };
        let generator = gan.generator.forward_buffers(gpu, input.region(), None)?;
        program.phase("generator.forward", gan.generator.forward_launches(gpu, weights, &generator, BatchnormMode::Eval));
        let mut decode = Program::default();
        decode.phase("generator.forward", gan.generator.forward_launches(gpu, weights, &generator, BatchnormMode::Eval));
        Ok(GanSampler { z, labels, input, generator, program, decode })
    }
}
