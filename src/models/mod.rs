//! The two models, built from the `nn` launchers: a flat parameter buffer with named views,
//! the MLP graphs over it, and the VAE and GAN training steps.

pub mod classifier;
pub mod gan;
pub mod mlp;
pub mod params;
pub mod vae;

pub use params::{Average, Init, ParamLayout, Parameters, Weights};

/// The classes a conditional sampler asks for unless told otherwise: row i asks for i mod k,
/// so any n rows ask for every class about equally.
pub fn cycling_classes(n: usize, k: usize) -> Vec<usize> {
    (0..n).map(|i| i % k.max(1)).collect()
}

/// Writes the classes a conditional sampler's rows ask for.
pub fn ask_classes(gpu: &crate::gpu::Gpu, labels: &crate::gpu::Tensor, classes: &[usize]) {
    assert_eq!(labels.len(), classes.len(), "a class per sampled row");
    labels.write(gpu, &classes.iter().map(|&c| c as f32).collect::<Vec<_>>());
}

/// (model, layer, in, out) of every Linear layer of the two models; the VAE's mu and logvar
/// heads run as one 128 → 64 matmul.
pub const LAYER_SHAPES: &[(&str, &str, usize, usize)] = &[
    ("gan", "generator.fc1", 100, 256),
    ("gan", "generator.fc2", 256, 512),
    ("gan", "generator.fc3", 512, 1024),
    ("gan", "generator.fc4", 1024, 784),
    ("gan", "discriminator.fc1", 784, 512),
    ("gan", "discriminator.fc2", 512, 256),
    ("gan", "discriminator.fc3", 256, 1),
    ("vae", "encoder.fc1", 784, 256),
    ("vae", "encoder.fc2", 256, 128),
    ("vae", "encoder.mu|logvar", 128, 64),
    ("vae", "decoder.fc1", 32, 128),
    ("vae", "decoder.fc2", 128, 256),
    ("vae", "decoder.out", 256, 784),
];

/// (model, layer) of every conv layer of the conv models, for `wgen bench conv`.
pub fn conv_layers() -> Vec<(&'static str, mlp::LayerSpec)> {
    let (enc, dec) = vae::layers(&vae::VaeConfig { arch: vae::VaeArch::Conv, ..vae::VaeConfig::default() });
    let (g, d) = gan::layers(&gan::GanConfig::dcgan());
    let conv = |model, layers: Vec<mlp::LayerSpec>| layers.into_iter().filter(|l| l.conv_shape().is_some()).map(move |l| (model, l));
    conv("conv-vae", enc.into_iter().chain(dec).collect()).chain(conv("dcgan", g.into_iter().chain(d).collect())).collect()
}
