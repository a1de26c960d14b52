//! The two models, built from the `nn` launchers: a flat parameter buffer with named views,
//! the MLP graphs over it, and the VAE and GAN training steps.

pub mod classifier;
pub mod gan;
pub mod mlp;
pub mod params;
pub mod vae;

pub use params::{Init, ParamLayout, Parameters};
