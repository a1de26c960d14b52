//! Which path each of a convolution's products takes, and the plans timed on this adapter.
//! The types live beside the matmul family because the device carries its timed plans;
//! `nn::ConvPlan::chosen` decides, times and reads them, `train::settle_conv` loads and keeps
//! them in the user's cache folder.

use std::collections::{BTreeMap, BTreeSet};

/// How one of a convolution's products runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConvPath {
    /// Receptive fields copied out (im2col) or summed back (col2im) around a plain matmul of
    /// the adapter's family, with NCHW ↔ channels-last transposes.
    Im2col,
    /// shaders/conv_subgroup.wgsl: the gather inside the product.
    Implicit,
}

/// The paths of a conv layer's three products, named as a Conv2d's (a ConvTranspose2d's
/// forward is its Conv2d's `input` product and its input gradient the `output` one), and the
/// number of chunks the weight gradient's long sum is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConvPlan {
    /// Output side from input side: a Conv2d's forward.
    pub output: ConvPath,
    /// Input side from output side: a Conv2d's input gradient.
    pub input: ConvPath,
    pub weight: ConvPath,
    pub splits: usize,
}

impl ConvPlan {
    /// Every product through im2col and the matmul family, unsplit: what any adapter runs.
    pub const IM2COL: ConvPlan = ConvPlan { output: ConvPath::Im2col, input: ConvPath::Im2col, weight: ConvPath::Im2col, splits: 1 };

    /// Whether a layer can run it either way round: an im2col weight gradient reads what the
    /// forward saved on im2col (a Conv2d's forward is the output product, a ConvTranspose2d's
    /// the input one), so it wants both of the others on im2col.
    pub fn is_runnable(&self) -> bool {
        self.weight == ConvPath::Implicit || (self.output == ConvPath::Im2col && self.input == ConvPath::Im2col)
    }
}

/// A plan timed on this adapter, and the milliseconds each candidate's passes took.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TunedConv {
    pub plan: ConvPlan,
    pub ms: BTreeMap<String, f64>,
}

/// The conv plans timed on this device and matmul family, by layer shape and batch.
#[derive(Debug, Default)]
pub struct ConvTuning {
    /// Whether a shape with no plan here is timed now (else it follows the rule).
    pub tune: bool,
    pub plans: BTreeMap<String, TunedConv>,
    /// Shapes timed in this process, to be remembered.
    pub fresh: BTreeSet<String>,
    /// Shapes whose plan was taken, for the run's record.
    pub used: BTreeSet<String>,
}

impl ConvTuning {
    /// The timed plans taken so far, by shape and batch (empty where the rule decided).
    pub fn used_plans(&self) -> BTreeMap<String, ConvPlan> {
        self.used.iter().filter_map(|k| self.plans.get(k).map(|t| (k.clone(), t.plan))).collect()
    }

    /// The plans timed in this process, to be remembered.
    pub fn fresh_plans(&self) -> BTreeMap<String, TunedConv> {
        self.fresh.iter().filter_map(|k| self.plans.get(k).map(|t| (k.clone(), t.clone()))).collect()
    }
}
