//! The plan a conv layer trains with: timed per shape on adapters where that is wanted, each
//! product on every path the adapter offers, the fastest kept (`ConvPlan::chosen`).

use std::collections::BTreeMap;

use super::conv::ConvShape;
use super::conv_operands::ConvOperands;
use crate::gpu::{time_launches, ConvPath, ConvPlan, Gpu, GpuError, Launch, TunedConv};

/// Repetitions each candidate pass is timed over (after a warm-up).
const REPS: usize = 3;

impl ConvPlan {
    /// The plan training runs `shape` with over `batch` images: the one timed on this device
    /// for that shape and batch if any (`Gpu::conv_tuning`, loaded from the user's cache by
    /// `train::settle_conv`), else timed now where the tuning says so, else the rule
    /// (`for_layer`).
    pub fn chosen(gpu: &Gpu, shape: &ConvShape, batch: usize) -> Result<ConvPlan, GpuError> {
        let key = format!("{shape} ×{batch}");
        {
            let mut tuning = gpu.conv_tuning.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(plan) = tuning.plans.get(&key).map(|t| t.plan).filter(|p| p.runs_on(gpu)) {
                tuning.used.insert(key);
                return Ok(plan);
            }
            if !tuning.tune {
                return Ok(ConvPlan::for_layer(gpu, shape, batch));
            }
        }
        // Only the rule runs here: nothing to time or remember.
        let Some(tuned) = tune(gpu, shape, batch)? else {
            return Ok(ConvPlan::for_layer(gpu, shape, batch));
        };
        let plan = tuned.plan;
        let mut tuning = gpu.conv_tuning.lock().unwrap_or_else(|e| e.into_inner());
        tuning.plans.insert(key.clone(), tuned);
        tuning.fresh.insert(key.clone());
        tuning.used.insert(key);
        Ok(plan)
    }

    /// Whether `gpu` can run it: the implicit products need the subgroup family (a plan read
    /// from the cache file could name them anywhere), and see `is_runnable`.
    fn runs_on(&self, gpu: &Gpu) -> bool {
        let implicit = [self.output, self.input, self.weight].contains(&ConvPath::Implicit);
        self.is_runnable() && (!implicit || ConvPath::on(gpu) == ConvPath::Implicit)
    }
}

/// The plans worth timing against the rule on `gpu`: every product implicit, every product on
/// im2col, and the weight gradient unsplit, where they differ from it.
fn candidates(gpu: &Gpu, shape: &ConvShape, batch: usize) -> Vec<(&'static str, ConvPlan)> {
    let rule = ConvPlan::for_layer(gpu, shape, batch);
    let mut all = vec![("rule", rule)];
    if ConvPath::on(gpu) == ConvPath::Implicit {
        let implicit = ConvPlan { output: ConvPath::Implicit, input: ConvPath::Implicit, weight: ConvPath::Implicit, ..rule };
        all.extend([("implicit", implicit), ("im2col", ConvPlan::im2col(gpu, shape, batch))]);
    }
    if rule.splits > 1 {
        all.push(("unsplit", ConvPlan { splits: 1, ..rule }));
    }
    let mut distinct: Vec<(&'static str, ConvPlan)> = Vec::new();
    for (name, plan) in all {
        if distinct.iter().all(|(_, p)| *p != plan) {
            distinct.push((name, plan));
        }
    }
    distinct
}

/// Each candidate's forward, dX and dW passes of a Conv2d of `shape` timed on `gpu` (a
/// ConvTranspose2d runs the same three products), then the runnable mix of one candidate's
/// forward, another's dX and a third's dW (and its splits) that takes least time; ties keep
/// the rule, the first candidate. None where the rule is the only candidate.
fn tune(gpu: &Gpu, shape: &ConvShape, batch: usize) -> Result<Option<TunedConv>, GpuError> {
    let candidates = candidates(gpu, shape, batch);
    if candidates.len() == 1 {
        return Ok(None);
    }
    let mut ms = BTreeMap::new();
    let operands = ConvOperands::new(gpu, "tune", *shape, false, batch)?;
    let mut times = Vec::new();
    for (name, plan) in &candidates {
        let passes = operands.passes(gpu, *plan)?;
        let mut t = [0.0; 3];
        for (i, pass) in ["forward", "dX", "dW"].into_iter().enumerate() {
            let launches: Vec<&Launch> = passes.launches[i].iter().collect();
            t[i] = time_launches(gpu, &launches, REPS).0.as_secs_f64() * 1e3;
            ms.insert(format!("{name} {pass}"), (t[i] * 1e3).round() / 1e3);
        }
        times.push(t);
    }
    let mut best = (f64::INFINITY, candidates[0].1);
    for (f, (_, forward)) in candidates.iter().enumerate() {
        for (x, (_, dx)) in candidates.iter().enumerate() {
            for (w, (_, dw)) in candidates.iter().enumerate() {
                let plan = ConvPlan { output: forward.output, input: dx.input, weight: dw.weight, splits: dw.splits };
                let t = times[f][0] + times[x][1] + times[w][2];
                if plan.is_runnable() && t < best.0 {
                    best = (t, plan);
                }
            }
        }
    }
    Ok(Some(TunedConv { plan: best.1, ms }))
}
