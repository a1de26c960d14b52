//! The two models, built from the `nn` launchers: a flat parameter buffer with named views,
//! the MLP graphs over it, and the VAE and GAN training steps.

pub mod classifier;
pub mod gan;
pub mod layers;
pub mod network;
pub mod params;
pub mod spectral;
pub mod vae;

pub use layers::Init;
pub use params::{Average, ParamLayout, Parameters, Weights};

/// The classes a conditional sampler asks for unless told otherwise: row i asks for i mod k,
/// so any n rows ask for every class about equally.
pub fn cycling_classes(n: usize, k: usize) -> Vec<usize> {
    (0..n).map(|i| i % k.max(1)).collect()
}

/// How a conditional model shows class `c`: the name of its folder, or its number.
pub fn class_label(names: Option<&[String]>, c: usize) -> String {
    names.and_then(|n| n.get(c)).cloned().unwrap_or_else(|| c.to_string())
}

/// The names of a grid with a row per class (`class_label` of each), for a conditional model.
pub fn class_row_labels(classes: Option<usize>, names: Option<&[String]>) -> Option<Vec<String>> {
    classes.map(|k| (0..k).map(|c| class_label(names, c)).collect())
}

/// Writes the classes a conditional sampler's rows ask for.
pub fn ask_classes(gpu: &crate::gpu::Gpu, labels: &crate::gpu::Tensor, classes: &[usize]) {
    assert_eq!(labels.len(), classes.len(), "a class per sampled row");
    labels.write(gpu, &classes.iter().map(|&c| c as f32).collect::<Vec<_>>());
}

/// (model, layer, in, out) of every Linear layer of the MLP GAN and VAE, read from their layer
/// lists (the VAE's mu and logvar heads run as one matmul, `encoder.head`): the shapes the
/// matmul tuner and `wgen bench kernels` time.
pub fn linear_layers() -> Vec<(&'static str, String, usize, usize)> {
    let (g, d) = gan::layers(&gan::GanConfig::mlp());
    let (enc, dec) = vae::layers(&vae::VaeConfig::default());
    let linear = |model, layers: Vec<layers::LayerSpec>| {
        layers.into_iter().filter(|l| matches!(l.kind, layers::LayerKind::Linear)).map(move |l| (model, l.name, l.inp, l.out))
    };
    linear("gan", g.into_iter().chain(d).collect()).chain(linear("vae", enc.into_iter().chain(dec).collect())).collect()
}

/// (model, layer) of every conv layer of the conv models, for `wgen bench conv`.
pub fn conv_layers() -> Vec<(&'static str, layers::LayerSpec)> {
    let (enc, dec) = vae::layers(&vae::VaeConfig { arch: vae::VaeArch::Conv, ..vae::VaeConfig::default() });
    let (g, d) = gan::layers(&gan::GanConfig::dcgan());
    let conv = |model, layers: Vec<layers::LayerSpec>| layers.into_iter().filter(|l| l.conv_shape().is_some()).map(move |l| (model, l));
    conv("conv-vae", enc.into_iter().chain(dec).collect()).chain(conv("dcgan", g.into_iter().chain(d).collect())).collect()
}

/// Rows of one sampler that draws `n` images in chunks: at most `max_rows` (what one storage
/// binding holds), a multiple of the `k` classes so the default classes cycle as in one
/// sampler, and never more than `n`.
pub(crate) fn chunk_rows(n: usize, max_rows: usize, k: usize) -> usize {
    let k = k.max(1);
    n.min((max_rows / k * k).max(k))
}

/// Runs a sampler of `rows` rows over `n` images: chunk c draws its noise at rng_step c (so a
/// single chunk is exactly one sampler's draw), after writing the chunk's `asked` classes to
/// `labels` where both exist (else row i asks for i mod k); `read(take)` reads the chunk's first
/// `take` images. Leaves `step` at the default Step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sample_in_chunks(
    gpu: &crate::gpu::Gpu, n: usize, rows: usize, step: &crate::nn::StepBuffer, program: &crate::gpu::Program, labels: Option<&crate::gpu::Tensor>,
    asked: Option<&[usize]>, read: impl Fn(usize) -> Result<Vec<f32>, crate::gpu::GpuError>,
) -> Result<Vec<f32>, crate::gpu::GpuError> {
    let mut images = Vec::new();
    for c in 0..n.div_ceil(rows) {
        let take = rows.min(n - c * rows);
        step.set(gpu, &crate::nn::Step { rng_step: c as u32, ..crate::nn::Step::default() });
        if let (Some(labels), Some(asked)) = (labels, asked) {
            let mut classes = asked[c * rows..c * rows + take].to_vec();
            classes.resize(rows, 0);
            ask_classes(gpu, labels, &classes);
        }
        program.run(gpu, "samples");
        images.extend(read(take)?);
    }
    step.set(gpu, &crate::nn::Step::default());
    Ok(images)
}
