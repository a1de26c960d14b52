use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Map, Value};

use super::{metadata, round, StepCore, TrainConfig, Trainee};
use crate::eval::EvalParts;
use crate::data::DeviceSplit;
use crate::gpu::{Gpu, Tensor};
use crate::models::classifier::{Classifier, ClassifierGraph, METRIC_SLOTS, TEST_CORRECT, TEST_LOSS, TRAIN_CORRECT, TRAIN_LOSS};
use crate::models::Parameters;
use crate::nn::StepBuffer;

pub struct ClassifierRun {
    classifier: Classifier,
    core: StepCore,
    eval: EvalParts<ClassifierGraph>,
    test_count: usize,
    _graph: ClassifierGraph,
}

impl ClassifierRun {
    pub fn new(gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, test: &DeviceSplit) -> Result<ClassifierRun> {
        let cc = cfg.classifier.clone().unwrap_or_default();
        let (_, _, values, state) = Classifier::initial(&cc, cfg.seed);
        let classifier = Classifier::new(gpu, &cc, &values, &state)?;
        let metrics = Tensor::zeros(gpu, "classifier.metrics", &[METRIC_SLOTS])?;
        let steps = StepBuffer::new(gpu, "classifier.train", cfg.steps_per_submit);
        classifier.net.check_training(gpu, cfg.batch)?;
        let graph = ClassifierGraph::new(gpu, &classifier, cfg.batch, "classifier.train", true)?;
        let program = graph.train_program(gpu, &classifier, train, &steps.uniform, cfg.seed, &metrics, &cfg.adam);
        let eval = EvalParts::new(gpu, "classifier.eval", test.count, |rows, step| {
            let g = ClassifierGraph::new(gpu, &classifier, rows, "classifier.eval", false)?;
            let p = g.eval_program(gpu, &classifier, test, step, &metrics);
            Ok((g, p))
        })?;
        let core = StepCore { batch: cfg.batch, steps, program, metrics };
        Ok(ClassifierRun { classifier, core, eval, test_count: test.count, _graph: graph })
    }
}

impl Trainee for ClassifierRun {
    fn core(&self) -> &StepCore {
        &self.core
    }

    fn parameters(&self) -> &Parameters {
        &self.classifier.params
    }

    fn before_readback(&mut self, gpu: &Gpu) -> Result<()> {
        self.eval.submit(gpu);
        Ok(())
    }

    fn epoch_record(&mut self, _gpu: &Gpu, _epoch: u32, sums: &[f32], steps: usize, _out: &Path) -> Result<Map<String, Value>> {
        let (n, s) = (self.test_count as f64, steps as f64);
        let mut r = Map::new();
        r.insert("train_loss".into(), json!(round(f64::from(sums[TRAIN_LOSS]) / s, 4)));
        r.insert("train_acc".into(), json!(round(f64::from(sums[TRAIN_CORRECT]) / s, 4)));
        r.insert("test_loss".into(), json!(round(f64::from(sums[TEST_LOSS]) / n, 4)));
        r.insert("test_acc".into(), json!(round(f64::from(sums[TEST_CORRECT]) / n, 4)));
        Ok(r)
    }

    fn running(&self, sums: &[f32], steps: usize) -> String {
        let n = steps.max(1) as f32;
        format!("loss {:.4} acc {:.3}", sums[TRAIN_LOSS] / n, sums[TRAIN_CORRECT] / n)
    }

    fn losses(&self, sums: &[f32], steps: usize) -> Vec<(&'static str, f64)> {
        let n = steps.max(1) as f64;
        vec![("loss", f64::from(sums[TRAIN_LOSS]) / n), ("accuracy", f64::from(sums[TRAIN_CORRECT]) / n)]
    }

    fn summary(&self, r: &Map<String, Value>) -> String {
        let f = |k: &str| r.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
        format!(
            "train_loss {:.4}  train_acc {:.4}  test_loss {:.4}  test_acc {:.4}  {:>7.0} img/s",
            f("train_loss"),
            f("train_acc"),
            f("test_loss"),
            f("test_acc"),
            f("img_per_s")
        )
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["training loss", "training accuracy", "test loss", "test accuracy"]
    }

    fn curves(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        vec![("cross-entropy", vec!["train_loss", "test_loss"]), ("accuracy", vec!["train_acc", "test_acc"])]
    }

    fn model_metadata(&self) -> Result<HashMap<String, String>> {
        metadata("classifier", &self.classifier.config)
    }
}
