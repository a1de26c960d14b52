//! `wgen train vae|conv-vae|gan|dcgan|classifier`: flags, over an optional config file, over the defaults → a checked
//! TrainConfig → training.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::progress::Console;
use crate::gpu::Gpu;
use crate::train::{self, Settings};

/// The settings of a run; each is a flag, or a key of the same name in `--config FILE`.
#[derive(Args, Debug, Default, Clone, PartialEq)]
pub struct TrainArgs {
    /// Every setting of the run: a flag each, or a key of the same name in --config.
    #[command(flatten)]
    pub settings: Settings,
    /// Take settings from this TOML file (keys are the flag names); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the interrupted or finished run in this folder (only --epochs may change).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Stop as Ctrl-C would once this many steps are done (for tests of resuming).
    #[arg(long, hide = true)]
    stop_after_steps: Option<u32>,
}

impl TrainArgs {
    /// The flags as settings, over the `--config` file's where given: `Settings::build` then
    /// picks the defaults and checks every value.
    pub fn settings(&self) -> Result<Settings> {
        Ok(match &self.config {
            Some(path) => self.settings.clone().over(read_config_file(path)?),
            None => self.settings.clone(),
        })
    }
}

/// Reads a config file: unknown keys and wrong types are refused with the file and key named.
fn read_config_file(path: &Path) -> Result<Settings> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| text[..span.start].matches('\n').count() + 1);
        let source = text.lines().nth(line - 1).unwrap_or("").trim();
        anyhow::anyhow!("{}: line {line} (`{source}`): {}", path.display(), e.message())
    })
}

pub fn run(gpu: &Gpu, args: &TrainArgs, quiet: bool) -> Result<i32> {
    let mut console = Console::new(quiet, args.stop_after_steps)?;
    let result = match &args.resume {
        Some(dir) => {
            let others = Settings { model: None, epochs: None, ..args.settings.clone() };
            if others != Settings::default() || args.config.is_some() {
                bail!("--resume continues with the run's own settings (its config.json); only --epochs may be given with it");
            }
            if let Some(model) = args.settings.model {
                let ran = train::run_model(dir)?;
                if ran != model {
                    bail!("{} is a {} run; resume it with `wgen train {} --resume {}` (or without the model)", dir.display(), ran.name(), ran.name(), dir.display());
                }
            }
            train::resume(gpu, dir, args.settings.epochs, &mut console)
        }
        None => {
            let cfg = args.settings()?.build()?;
            train::train(gpu, &cfg, &mut console)
        }
    };
    console.finish();
    match result {
        Ok(summary) => {
            console.say(&format!("done: {0}/model.safetensors, {0}/curves.png, {0}/samples/", summary.out.display()));
            Ok(0)
        }
        Err(e) => match e.downcast::<train::Interrupted>() {
            Ok(stop) => {
                eprintln!("{stop}");
                Ok(130)
            }
            Err(e) => Err(e),
        },
    }
}
