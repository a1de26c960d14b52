//! What the trainer shows: a progress bar on a terminal, plain lines in logs, nothing with -q;
//! and Ctrl-C, which stops at the next submit with a checkpoint (a second Ctrl-C quits at once).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::train::Monitor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Plain,
    Bar,
}

pub struct Console {
    mode: Mode,
    bar: Option<ProgressBar>,
    interrupt: Arc<AtomicBool>,
    stop_after: Option<u32>,
}

impl Console {
    pub fn new(quiet: bool, stop_after: Option<u32>) -> Result<Console> {
        let interrupt = Arc::new(AtomicBool::new(false));
        let flag = interrupt.clone();
        // A handler may already be installed (tests run several commands in one process).
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("interrupted twice: quitting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!("\nstopping after the current submit (Ctrl-C again to quit at once)...");
        });
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stdout().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        };
        Ok(Console { mode, bar: None, interrupt, stop_after })
    }

    /// A line that stays on screen (not in quiet mode).
    pub fn say(&self, line: &str) {
        match (&self.bar, self.mode) {
            (_, Mode::Quiet) => {}
            (Some(bar), _) => bar.println(line),
            (None, _) => println!("{line}"),
        }
    }

    fn start_bar(&mut self, prefix: &str, len: usize, done: usize) {
        if self.mode != Mode::Bar {
            return;
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ETA {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix.to_string());
        bar.set_position(done as u64);
        self.bar = Some(bar);
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Monitor for Console {
    fn say(&mut self, line: &str) {
        Console::say(self, line);
    }

    fn epoch_start(&mut self, epoch: u32, epochs: u32, steps: usize, done: usize) {
        self.start_bar(&format!("epoch {epoch}/{epochs}"), steps, done);
    }

    /// A bar while a folder's images are decoded the first time, a line when they are.
    fn decoding(&mut self, done: usize, total: usize) {
        if self.bar.is_none() {
            self.start_bar("decoding images", total, 0);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
        if done == total {
            self.finish();
            self.say(&format!("decoded {total} images (kept in the cache folder for the next run)"));
        }
    }

    fn tick(&mut self, done: usize, running: Option<&str>, img_per_s: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            if let Some(running) = running {
                bar.set_message(format!("{running}  {img_per_s:.0} img/s"));
            }
        }
    }

    fn wants_running(&self) -> bool {
        self.mode == Mode::Bar
    }

    fn epoch_end(&mut self, line: &str) {
        self.finish();
        self.say(line);
    }

    fn interrupted(&mut self, global_step: u32) -> bool {
        self.interrupt.load(Ordering::SeqCst) || self.stop_after.is_some_and(|s| global_step >= s)
    }
}
