//! wgen in the browser: `wgen::train::Live` behind wasm-bindgen, for `web/app.js`. The page
//! steps the model a few steps per animation frame and awaits every readback as a promise; the
//! kernels, launchers and training step are the library's, unchanged.

use serde_json::json;
use wasm_bindgen::prelude::*;
use wgen::data;
use wgen::gpu::Gpu;
use wgen::train::{Live, ModelKind, Settings};

fn js(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// The page's models by the names `wgen train` takes.
fn model_kind(model: &str) -> Result<ModelKind, JsError> {
    [ModelKind::Vae, ModelKind::ConvVae, ModelKind::Gan, ModelKind::Dcgan]
        .into_iter()
        .find(|k| k.name() == model)
        .ok_or_else(|| js(format!("unknown model {model}: vae, conv-vae, gan or dcgan")))
}

/// [learning rate (G's, for a GAN), batch] of `wgen train MODEL [--conditional]`'s defaults,
/// so the page's form starts where the command line does.
#[wasm_bindgen]
pub fn defaults(model: String, conditional: bool) -> Result<Vec<f64>, JsError> {
    let settings = Settings { model: Some(model_kind(&model)?), conditional: Some(conditional), ..Settings::default() };
    let cfg = settings.build().map_err(js)?;
    // Through f32's shortest decimal, so the field shows 0.0004, not 0.0004000000189989805.
    let lr = cfg.adam.lr.to_string().parse().unwrap_or(f64::from(cfg.adam.lr));
    Ok(vec![lr, cfg.batch as f64])
}

/// What the page's form sets: `wgen train`'s flags of the same names (`loss` and `augment`
/// as typed there; empty: the default). A learning rate or batch of 0 was left at the model's
/// default, which then fits the data as the command line's does (a smaller batch on a small
/// folder, pytorch/examples' rate for its DCGAN).
struct Form {
    model: String,
    lr: f32,
    batch: usize,
    seed: u32,
    conditional: bool,
    size: Option<usize>,
    loss: String,
    augment: String,
    spectral_norm: bool,
}

/// A model being trained on the page's WebGPU device.
#[wasm_bindgen]
pub struct Trainer {
    gpu: Gpu,
    live: Live,
}

#[wasm_bindgen]
impl Trainer {
    /// Opens the browser's GPU and builds `model` (vae, conv-vae, gan, dcgan) with the given
    /// learning rate, batch and seed on the four MNIST files' bytes (gzip or plain, in the
    /// order train images, train labels, test images, test labels).
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        model: String, lr: f32, batch: usize, seed: u32, conditional: bool, loss: String, augment: String, spectral_norm: bool, train_images: Vec<u8>, train_labels: Vec<u8>, test_images: Vec<u8>,
        test_labels: Vec<u8>,
    ) -> Result<Trainer, JsError> {
        let names = data::FILES.map(|f| format!("{f}.gz"));
        let [a, b, c, d] = names.clone();
        let files = [(a, train_images), (b, train_labels), (c, test_images), (d, test_labels)];
        let dataset = data::from_files(files, "the page's mnist-10k".to_string()).map_err(js)?;
        Trainer::build(Form { model, lr, batch, seed, conditional, size: None, loss, augment, spectral_norm }, dataset).await
    }

    /// As `create`, on a folder of images the user picked: `paths` relative to it
    /// (`/`-separated; class subfolders give labels), each file's bytes in `bytes`, one after
    /// another, `lengths` long. Read as `wgen train --data DIR [--size N]` reads a folder
    /// (`size` 0: the size the images share), decoded here by the same code.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_from_folder(
        model: String, lr: f32, batch: usize, seed: u32, conditional: bool, loss: String, augment: String, spectral_norm: bool, size: usize, name: String, paths: Vec<String>, lengths: Vec<u32>,
        bytes: Vec<u8>,
    ) -> Result<Trainer, JsError> {
        if paths.len() != lengths.len() {
            return Err(js("a length for every path"));
        }
        let mut files = std::collections::BTreeMap::new();
        let mut at = 0;
        for (path, &n) in paths.iter().zip(&lengths) {
            let end = at + n as usize;
            let file = bytes.get(at..end).ok_or_else(|| js("the files' bytes end early"))?;
            if data::folder::listed(path) {
                files.insert(path.clone(), file);
            }
            at = end;
        }
        let listed: Vec<String> = files.keys().cloned().collect();
        let read = |path: &str| Ok(files[path].to_vec());
        let options = data::ImageOptions { size: (size > 0).then_some(size), ..Default::default() };
        let dataset = data::folder::from_images(&listed, &read, &name, &options, &mut |_, _| {}).map_err(js)?;
        let size = Some(dataset.shape().side);
        Trainer::build(Form { model, lr, batch, seed, conditional, size, loss, augment, spectral_norm }, dataset).await
    }

    async fn build(form: Form, dataset: data::Dataset) -> Result<Trainer, JsError> {
        let settings = Settings {
            model: Some(model_kind(&form.model)?),
            lr: (form.lr > 0.0).then_some(form.lr),
            batch: (form.batch > 0).then_some(form.batch),
            seed: Some(u64::from(form.seed)),
            conditional: Some(form.conditional),
            size: form.size,
            loss: match form.loss.as_str() {
                "" => None,
                name => Some(serde_json::from_value(json!(name)).map_err(|_| js(format!("unknown loss {name}: bce or hinge")))?),
            },
            augment: (!form.augment.is_empty()).then(|| form.augment.parse()).transpose().map_err(js)?,
            spectral_norm: form.spectral_norm.then_some(true),
            ..Settings::default()
        };
        // The command line's checks and defaults: the page's form is its flags.
        let cfg = settings.build().map_err(js)?;
        let gpu = Gpu::preferred().await.map_err(|e| js(format!("{e} (this page needs WebGPU)")))?;
        let live = Live::new(&gpu, &cfg, dataset).map_err(|e| js(format!("{e:#}")))?;
        Ok(Trainer { gpu, live })
    }

    /// Submits up to `n` steps in one command buffer, never past an epoch's end; returns how
    /// many.
    pub fn submit(&mut self, n: usize) -> usize {
        self.live.submit(&self.gpu, n)
    }

    /// JSON `{global, epoch, steps, values: {key: mean}}`: the training metrics over the steps
    /// since the last call. Resolves once those steps have run.
    pub async fn losses(&mut self) -> Result<String, JsError> {
        let w = self.live.losses(&self.gpu).await.map_err(|e| js(format!("{e:#}")))?;
        let values: serde_json::Map<String, serde_json::Value> = w.values.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        Ok(json!({"global": w.global, "epoch": w.epoch, "steps": w.steps, "values": values}).to_string())
    }

    /// The fixed-noise samples, [rows, C·H·W] in [0, 1], 8 to a row: a conditional model's a
    /// row per class, or with `class` ≥ 0 every one of that class.
    pub async fn grid(&self, class: i32) -> Result<Vec<f32>, JsError> {
        let class = usize::try_from(class).ok();
        self.live.grid(&self.gpu, class).await.map_err(|e| js(format!("{e:#}")))
    }

    /// VAE: JSON `{neg_elbo, originals, reconstructions}` for the test split and its first
    /// `shown` images; `null` for a GAN.
    pub async fn test_pass(&self, shown: usize) -> Result<String, JsError> {
        let pass = self.live.test_pass(&self.gpu, shown).await.map_err(|e| js(format!("{e:#}")))?;
        Ok(match pass {
            Some(p) => json!({"neg_elbo": p.neg_elbo, "originals": p.originals, "reconstructions": p.reconstructions}).to_string(),
            None => "null".to_string(),
        })
    }

    /// The bytes of `model.safetensors`, as `wgen train` writes it.
    pub async fn model_safetensors(&self) -> Result<Vec<u8>, JsError> {
        self.live.model_safetensors(&self.gpu).await.map_err(|e| js(format!("{e:#}")))
    }

    /// JSON: the run's settings, the matmul family, steps per epoch and every dispatch of one
    /// training step in order (`[{phase, kernel, file, layer, shape}]`) for the kernel list.
    pub fn describe(&self) -> String {
        let cfg = self.live.config();
        let (classes, class_names) = match (&cfg.vae, &cfg.gan) {
            (Some(v), _) => (v.classes, v.class_names.as_deref()),
            (_, Some(g)) => (g.classes, g.class_names.as_deref()),
            _ => (None, None),
        };
        let program = self.live.program();
        let launches: Vec<_> = program
            .phases
            .iter()
            .flat_map(|phase| {
                phase.launches.iter().map(move |l| {
                    let (file, entry) = l.kernel.location();
                    json!({"phase": phase.name, "kernel": entry, "file": file, "layer": l.label, "shape": l.detail})
                })
            })
            .collect();
        json!({
            "model": cfg.model.name(),
            "batch": cfg.batch,
            "lr": cfg.adam.lr,
            "seed": cfg.seed,
            "classes": classes,
            "loss": cfg.gan.as_ref().map(|g| g.loss),
            "augment": cfg.gan.as_ref().map(|g| g.augment.to_string()),
            "spectral_norm": cfg.gan.as_ref().map(|g| g.spectral_norm),
            // What the class picker lists: a folder's class names, else the class numbers.
            "class_names": classes.map(|k| class_names.map_or_else(|| (0..k).map(|c| c.to_string()).collect(), <[String]>::to_vec)),
            "notes": self.live.notes,
            "matmul": format!("{:?}", self.gpu.matmul),
            // The subgroup matmul wants exactly 8 lanes; otherwise a tiled family runs.
            "subgroup_sizes": [self.gpu.info.subgroup_min_size, self.gpu.info.subgroup_max_size],
            "steps_per_epoch": self.live.steps_per_epoch(),
            "image": self.live.image(),
            "launches": launches,
        })
        .to_string()
    }
}
