//! The epoch loop every model trains by: per epoch, the shuffle, the steps in submits of
//! `steps_per_submit`, the metrics read once, the samples scored, the record written, the
//! checkpoint saved; Ctrl-C saves a checkpoint mid-epoch.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use super::best::{keep_best, Best};
use super::{checkpoint, round, Interrupted, Monitor, Position, RunSummary, SampleEval, TrainConfig, Trainee};
use crate::data::DeviceSplit;
use crate::gpu::Gpu;

pub(super) fn run_epochs<T: Trainee>(
    gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, mut trainee: T, ckpt: Option<checkpoint::Checkpoint>, sample_eval: Option<SampleEval>,
    monitor: &mut dyn Monitor,
) -> Result<RunSummary> {
    let batch = trainee.batch();
    let steps_per_epoch = train.count / batch;
    let slots = trainee.metrics().len();
    let Resumed { mut at, sums: mut resumed_sums, mut records } = match &ckpt {
        Some(ckpt) => resume_point(gpu, cfg, &trainee, ckpt)?,
        None => Resumed { at: Position { epoch: 1, step_in_epoch: 0, global: 0 }, sums: None, records: Vec::new() },
    };
    let mut best = Best::of(&records);
    if let Some(b) = best.as_ref().filter(|_| cfg.keep_best == Some(true)) {
        b.name_in_config(&cfg.out)?;
    }
    let metrics_path = cfg.out.join("metrics.jsonl");
    let mut metrics_file = std::fs::File::create(&metrics_path).with_context(|| format!("cannot write {}", metrics_path.display()))?;
    for r in &records {
        writeln!(metrics_file, "{}", Value::Object(r.clone()))?;
    }
    #[cfg(not(target_arch = "wasm32"))]
    let panels = curve_panels(&trainee, sample_eval.is_some());
    #[cfg(not(target_arch = "wasm32"))]
    let mut events = super::events::Events::start(&cfg.out, at.global, &format!("```json\n{}\n```", serde_json::to_string_pretty(cfg)?))?;
    for epoch in at.epoch..=cfg.epochs {
        let start = Instant::now();
        let first_step = if epoch == at.epoch { at.step_in_epoch } else { 0 };
        at = Position { epoch, step_in_epoch: first_step, global: at.global };
        at.start_epoch(gpu, cfg, train, &trainee, resumed_sums.take());
        train_epoch(gpu, cfg, train, &mut trainee, monitor, steps_per_epoch, &mut at, start)?;
        gpu.wait();
        gpu.check_lost(&cfg.out)?;
        let train_seconds = start.elapsed().as_secs_f64();
        trainee.before_readback(gpu)?;
        let sums = trainee.metrics().read(gpu)?;
        refuse_divergence(cfg, &trainee, &sums, epoch, at.global, (steps_per_epoch - first_step) as u32)?;

        let mut record = Map::new();
        record.insert("epoch".into(), json!(epoch));
        record.insert("step".into(), json!(at.global));
        record.extend(trainee.epoch_record(gpu, epoch, &sums, steps_per_epoch, &cfg.out)?);
        if let Some(se) = sample_eval.as_ref().filter(|se| epoch % se.every == 0) {
            score_samples(gpu, &trainee, se, &mut record)?;
            if cfg.keep_best == Some(true) {
                keep_best(gpu, cfg, &trainee, &mut best, &mut record)?;
            }
        }
        record.insert("img_per_s".into(), json!(round(((steps_per_epoch - first_step) * batch) as f64 / train_seconds, 1)));
        record.insert("seconds".into(), json!(round(start.elapsed().as_secs_f64(), 2)));
        writeln!(metrics_file, "{}", Value::Object(record.clone()))?;
        metrics_file.flush()?;
        records.push(record);
        #[cfg(not(target_arch = "wasm32"))]
        {
            super::curves::draw(&cfg.out.join("curves.png"), &records, &panels)?;
            let grids = [("samples", super::epoch_grid(&cfg.out, "", epoch)), ("reconstructions", super::epoch_grid(&cfg.out, "recon-", epoch))];
            events.epoch(&records[records.len() - 1], &grids)?;
        }
        let last = records.last().expect("just pushed");
        monitor.epoch_end(&format!("epoch {epoch:>3}/{}  {}{}", cfg.epochs, trainee.summary(last), scores_text(last)));
        if epoch == cfg.epochs || (cfg.checkpoint_every > 0 && epoch % cfg.checkpoint_every == 0) {
            let next = Position { epoch: epoch + 1, step_in_epoch: 0, global: at.global };
            checkpoint::save(gpu, &cfg.out, trainee.parameters(), &vec![0.0; slots], &next, trainee.model_metadata()?)?;
        }
    }
    Ok(RunSummary { out: cfg.out.clone(), records })
}

/// Where a checkpoint left the run.
struct Resumed {
    at: Position,
    /// The metric sums of its unfinished epoch.
    sums: Option<Vec<f32>>,
    /// The records of the epochs it had finished (later ones will be redone).
    records: Vec<Map<String, Value>>,
}

fn resume_point<T: Trainee>(gpu: &Gpu, cfg: &TrainConfig, trainee: &T, ckpt: &checkpoint::Checkpoint) -> Result<Resumed> {
    let (at, sums) = checkpoint::restore(gpu, ckpt, trainee.parameters(), &trainee.model_metadata()?)?;
    let text = std::fs::read_to_string(cfg.out.join("metrics.jsonl")).unwrap_or_default();
    let records = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
        .filter(|r| r.get("epoch").and_then(Value::as_u64).is_some_and(|e| e < u64::from(at.epoch)))
        .collect();
    Ok(Resumed { at, sums: Some(sums), records })
}

/// The panels of curves.png: the model's own, then the sample scores when they are taken.
#[cfg(not(target_arch = "wasm32"))]
fn curve_panels<T: Trainee>(trainee: &T, scored: bool) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut panels = trainee.curves();
    if scored {
        panels.push(("FD to the test split", vec!["fd"]));
        if trainee.asked(1).is_some() {
            panels.push(("samples of the asked-for class", vec!["class_agreement"]));
        }
    }
    panels
}

/// Submits the rest of `at`'s epoch, moving `at`; ticks the monitor, and on an interrupt saves a
/// checkpoint at the step reached and returns `Interrupted`.
#[allow(clippy::too_many_arguments)]
fn train_epoch<T: Trainee>(
    gpu: &Gpu, cfg: &TrainConfig, train: &DeviceSplit, trainee: &mut T, monitor: &mut dyn Monitor, steps_per_epoch: usize, at: &mut Position, start: Instant,
) -> Result<()> {
    let batch = trainee.batch();
    let first_step = at.step_in_epoch;
    monitor.epoch_start(at.epoch, cfg.epochs, steps_per_epoch, first_step);
    let mut last_tick = Instant::now();
    while at.step_in_epoch < steps_per_epoch {
        at.submit(gpu, cfg, train, trainee, cfg.steps_per_submit, steps_per_epoch);
        let first = at.step_in_epoch;
        let img_per_s = ((first - first_step) * batch) as f64 / start.elapsed().as_secs_f64();
        if monitor.interrupted(at.global) {
            gpu.wait();
            let sums = trainee.metrics().read(gpu)?;
            checkpoint::save(gpu, &cfg.out, trainee.parameters(), &sums, at, trainee.model_metadata()?)?;
            return Err(Interrupted { epoch: at.epoch, step: at.global, out: cfg.out.clone() }.into());
        }
        if monitor.wants_running() && last_tick.elapsed().as_secs_f64() > 0.25 {
            let sums = trainee.metrics().read(gpu)?;
            monitor.tick(first, Some(&trainee.running(&sums, first)), img_per_s);
            last_tick = Instant::now();
        } else {
            monitor.tick(first, None, img_per_s);
        }
    }
    Ok(())
}

/// Stops the run at the first metric that is not finite, naming it and the steps.
fn refuse_divergence<T: Trainee>(cfg: &TrainConfig, trainee: &T, sums: &[f32], epoch: u32, global: u32, steps: u32) -> Result<()> {
    let Some(i) = sums.iter().position(|v| !v.is_finite()) else { return Ok(()) };
    let kept = if cfg.out.join("checkpoint.safetensors").exists() {
        format!("the last good checkpoint is kept in {}", cfg.out.display())
    } else {
        "no checkpoint had been written yet".to_string()
    };
    bail!("training diverged in epoch {epoch} (steps {}..{global}): the {} is {}; {kept}. Try a lower --lr", global + 1 - steps, trainee.metric_names()[i], sums[i])
}

/// Scores `se.samples` samples into the epoch's record.
fn score_samples<T: Trainee>(gpu: &Gpu, trainee: &T, se: &SampleEval, record: &mut Map<String, Value>) -> Result<()> {
    let Some(images) = trainee.samples(gpu, se.samples)? else { return Ok(()) };
    let s = crate::eval::score(&se.features, gpu, &images, &se.reference, trainee.asked(se.samples).as_deref())?;
    record.insert("fd".into(), json!(round(s.fd, 3)));
    if let Some(a) = &s.agreement {
        record.insert("class_agreement".into(), json!(round(a.overall, 4)));
        record.insert("class_agreement_per_class".into(), json!(a.per_class.iter().map(|&v| round(v, 4)).collect::<Vec<_>>()));
    }
    record.insert("inception_score".into(), json!(round(s.inception_score, 3)));
    record.insert("modes".into(), json!(s.modes));
    record.insert("smallest_share".into(), json!(round(s.smallest_share, 4)));
    record.insert("effective_classes".into(), json!(round(s.effective_classes, 3)));
    record.insert("class_shares".into(), json!(s.class_shares.iter().map(|&v| round(v, 4)).collect::<Vec<_>>()));
    Ok(())
}

/// The epoch line's scores, where the record has them.
fn scores_text(last: &Map<String, Value>) -> String {
    let scores = match (last.get("fd").and_then(Value::as_f64), last.get("inception_score").and_then(Value::as_f64), last.get("modes")) {
        (Some(fd), Some(is), Some(modes)) => format!(
            "  FD {fd:.1}  IS {is:.2}  classes ≥5% {modes}/{}  smallest {:.1}%  effective {:.2}",
            last.get("class_shares").and_then(Value::as_array).map_or(0, Vec::len),
            100.0 * last.get("smallest_share").and_then(Value::as_f64).unwrap_or(f64::NAN),
            last.get("effective_classes").and_then(Value::as_f64).unwrap_or(f64::NAN)
        ),
        _ => String::new(),
    };
    let best = if last.get("best_epoch").is_some_and(|b| Some(b) == last.get("epoch")) { "  (best so far: kept)" } else { "" };
    scores + best + &last.get("class_agreement").and_then(Value::as_f64).map_or(String::new(), |a| format!("  asked-for class {:.1}%", 100.0 * a))
}
