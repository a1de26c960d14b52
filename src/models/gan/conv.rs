//! The DCGAN's layers (`GanArch::Conv`): the 28 × 28 DCGAN, and pytorch/examples' at 32 and 64.

use super::{GanConfig, LayerSpec};
use crate::data::ImageShape;
use crate::models::layers::BatchnormSpec;
use crate::nn::{Activation, ConvShape};

/// pytorch/examples' DCGAN rate, G's and D's. On the 3,416 Noto emoji at 32 × 32 it brought
/// FD (wgen's judge) to 130 at epoch 10 in wgen and 120 in PyTorch (docs/studies/emoji.md);
/// the 28 × 28 DCGAN's G 4e-4 and D 2e-5, tuned on 9,000 digits, left D far behind there
/// (D(G(z)) 0.93 after an epoch in both trainers).
pub const EXAMPLES_LR: f32 = 2e-4;

/// The DCGAN's layers (`GanArch::Conv`), named as its PyTorch module's.
///
/// Conditioned on k classes, G's input is [label vector | z] (the label's learned embedding, as
/// the MLP GAN's) and D, whose convolutions read the image alone, is a projection
/// discriminator: its last layer gives a shared logit and one per class (`GanConfig::d_heads`).
pub(super) fn conv_layers(cfg: &GanConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    assert!(cfg.classes.is_none() || cfg.projection, "a conditional DCGAN's D meets the label through its projection only");
    if cfg.is_examples() {
        return examples_layers(cfg);
    }
    let bn = |name: &str, groups| Some(BatchnormSpec { groups, ..BatchnormSpec::new(name, cfg.bn_eps, cfg.bn_momentum) });
    let ImageShape { channels, side } = cfg.image;
    let deconv1 = ConvShape::transposed(128, 64, side / 4, side / 4, 4, 2, 1);
    let deconv2 = ConvShape::transposed(64, channels, side / 2, side / 2, 4, 2, 1);
    let fc = LayerSpec { batchnorm: bn("generator.bn0", 1), ..LayerSpec::new("generator.fc", cfg.latent + cfg.label_width(), deconv1.out_len(), cfg.g_activation) };
    let generator = vec![
        if cfg.classes.is_some() { fc.padded() } else { fc },
        LayerSpec { batchnorm: bn("generator.bn1", 1), ..LayerSpec::conv_transpose2d("generator.deconv1", deconv1, cfg.g_activation) },
        LayerSpec::conv_transpose2d("generator.deconv2", deconv2, cfg.output.activation()),
    ];
    let conv1 = ConvShape::conv2d(channels, 64, side, side, 4, 2, 1);
    let conv2 = ConvShape::conv2d(64, 128, side / 2, side / 2, 4, 2, 1);
    let discriminator = vec![
        LayerSpec::conv2d("discriminator.conv1", conv1, cfg.d_activation),
        // Real and fake batches: two groups.
        LayerSpec { batchnorm: bn("discriminator.bn2", 2).filter(|_| cfg.d_batchnorm), ..LayerSpec::conv2d("discriminator.conv2", conv2, cfg.d_activation) },
        LayerSpec::new("discriminator.fc", conv2.out_len(), cfg.d_heads(), Activation::Identity),
    ];
    (generator, discriminator)
}

/// pytorch/examples' DCGAN (ngf = ndf = 64) at S = 64, and with one stage fewer at S = 32: G
/// ConvTranspose2d(z → 512, k4 s1 p0) from 1 × 1 to 4 × 4, then ConvTranspose2d(k4 s2 p1)
/// halving the channels as it doubles the side (512 → 256 → 128 → 64), each with BatchNorm2d
/// and ReLU, and ConvTranspose2d(64 → C) → tanh; D the mirror, Conv2d(k4 s2 p1) C → 64 (no batch
/// norm) → 128 → 256 → 512, LeakyReLU 0.2, then Conv2d(512 → 1, k4 s1 p0), the logit. Its
/// convolutions have biases, which PyTorch's leave out (bias=False): before a batch norm a
/// bias changes nothing, and G's last and D's first and last layers keep one.
fn examples_layers(cfg: &GanConfig) -> (Vec<LayerSpec>, Vec<LayerSpec>) {
    const WIDTH: usize = 64;
    let ImageShape { channels, side } = cfg.image;
    let stages = (side / 4).trailing_zeros() as usize;
    let bn = |name: String, groups| Some(BatchnormSpec { groups, ..BatchnormSpec::new(&name, cfg.bn_eps, cfg.bn_momentum) });
    let mut generator = Vec::new();
    let (mut c, mut s) = (WIDTH << (stages - 1), 4);
    let first = ConvShape::transposed(cfg.latent + cfg.label_width(), c, 1, 1, 4, 1, 0);
    generator.push(LayerSpec { batchnorm: bn("generator.bn1".into(), 1), ..LayerSpec::conv_transpose2d("generator.deconv1", first, cfg.g_activation) });
    for i in 2..=stages {
        let shape = ConvShape::transposed(c, c / 2, s, s, 4, 2, 1);
        let layer = LayerSpec::conv_transpose2d(&format!("generator.deconv{i}"), shape, cfg.g_activation);
        generator.push(LayerSpec { batchnorm: bn(format!("generator.bn{i}"), 1), ..layer });
        (c, s) = (c / 2, 2 * s);
    }
    let last = ConvShape::transposed(c, channels, s, s, 4, 2, 1);
    generator.push(LayerSpec::conv_transpose2d(&format!("generator.deconv{}", stages + 1), last, cfg.output.activation()));
    let mut discriminator = Vec::new();
    let (mut c, mut s) = (channels, side);
    for i in 1..=stages {
        let shape = ConvShape::conv2d(c, WIDTH << (i - 1), s, s, 4, 2, 1);
        let layer = LayerSpec::conv2d(&format!("discriminator.conv{i}"), shape, cfg.d_activation);
        // Real and fake batches: two groups.
        let batchnorm = if i > 1 { bn(format!("discriminator.bn{i}"), 2).filter(|_| cfg.d_batchnorm) } else { None };
        discriminator.push(LayerSpec { batchnorm, ..layer });
        (c, s) = (WIDTH << (i - 1), s / 2);
    }
    let logit = ConvShape::conv2d(c, cfg.d_heads(), s, s, 4, 1, 0);
    discriminator.push(LayerSpec::conv2d(&format!("discriminator.conv{}", stages + 1), logit, Activation::Identity));
    (generator, discriminator)
}

