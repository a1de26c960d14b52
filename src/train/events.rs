//! TensorBoard event files: `tensorboard --logdir runs` shows every run's metrics, sample grids
//! and settings side by side. Each start of a run, new or resumed, writes its own
//! `events.out.tfevents.*` file; the step axis is the global step.
//!
//! A resumed run may restart from a checkpoint older than the last epoch it logged (after a
//! crash, or `--checkpoint-every`): its file opens with a session START at the step after the
//! checkpoint, which tells TensorBoard to drop the earlier files' points from that step on, as
//! PyTorch's `SummaryWriter(purge_step=…)` does, so no step is shown twice.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use image::codecs::png::PngDecoder;
use image::ImageDecoder;
use serde_json::{Map, Value};
use tfrecord::protobuf::summary::value::Value as Content;
use tfrecord::protobuf::summary::{self, Image};
use tfrecord::protobuf::{event::What, session_log::SessionStatus, summary_metadata::PluginData, tensor_shape_proto::Dim};
use tfrecord::protobuf::{DataType, Event, SessionLog, Summary, SummaryMetadata, TensorProto, TensorShapeProto};
use tfrecord::{EventWriter, EventWriterConfig};

/// What names an event file to TensorBoard.
pub const EVENT_FILE_MARK: &str = "tfevents";

/// The tag of the run's settings (TensorBoard's Text tab).
pub const SETTINGS_TAG: &str = "settings";

/// The event file of one start of a run.
pub struct Events {
    writer: EventWriter<BufWriter<File>>,
    path: PathBuf,
}

impl Events {
    /// A new event file in `dir` for a run that starts after `global` steps (0: a new run),
    /// opening with the file version TensorBoard needs to honour restarts, the restart mark
    /// when resuming, and `settings` (markdown) as text.
    pub fn start(dir: &Path, global: u32, settings: &str) -> Result<Events> {
        // Named so that a later start sorts after every earlier one: TensorBoard reads a
        // folder's files in name order, and the restart mark must come after what it purges.
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let earlier = std::fs::read_dir(dir).map_or(0, |d| d.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(EVENT_FILE_MARK)).count());
        let path = dir.join(format!("events.out.{EVENT_FILE_MARK}.{seconds:010}.wgen.{earlier:03}"));
        let writer = EventWriter::create(&path, EventWriterConfig { auto_flush: false }).with_context(|| format!("cannot write {}", path.display()))?;
        let mut events = Events { writer, path };
        events.write(i64::from(global), What::FileVersion("brain.Event:2".into()))?;
        let first = if global == 0 {
            0
        } else {
            let restart = i64::from(global) + 1;
            events.write(restart, What::SessionLog(SessionLog { status: SessionStatus::Start.into(), ..Default::default() }))?;
            restart
        };
        events.summary(first, SETTINGS_TAG, text(settings), Some(plugin("text")))?;
        events.flush()?;
        Ok(events)
    }

    /// One epoch's record of metrics.jsonl at its `step`: each number a scalar under its key,
    /// each list of numbers one scalar per entry (`class_shares/3`), and the epoch's sample
    /// grids (PNG files) as images under their tags.
    pub fn epoch(&mut self, record: &Map<String, Value>, grids: &[(&str, PathBuf)]) -> Result<()> {
        let step = record.get("step").and_then(Value::as_i64).context("an epoch record without its step")?;
        for (key, value) in record.iter().filter(|(k, _)| *k != "step") {
            match value {
                Value::Number(n) => self.scalar(step, key, n.as_f64().unwrap_or(f64::NAN))?,
                Value::Array(list) => {
                    for (i, v) in list.iter().enumerate() {
                        if let Some(v) = v.as_f64() {
                            self.scalar(step, &format!("{key}/{i}"), v)?;
                        }
                    }
                }
                _ => {}
            }
        }
        for (tag, path) in grids.iter().filter(|(_, p)| p.exists()) {
            let png = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            // The size and channels from the header: the file goes in as it is, undecoded.
            let header = PngDecoder::new(std::io::Cursor::new(&png)).with_context(|| format!("{} is not a PNG", path.display()))?;
            let ((width, height), colorspace) = (header.dimensions(), i32::from(header.color_type().channel_count()));
            let image = Image { height: height as i32, width: width as i32, colorspace, encoded_image_string: png };
            self.summary(step, tag, Content::Image(image), None)?;
        }
        self.flush()
    }

    fn scalar(&mut self, step: i64, tag: &str, value: f64) -> Result<()> {
        self.summary(step, tag, Content::SimpleValue(value as f32), None)
    }

    fn summary(&mut self, step: i64, tag: &str, content: Content, metadata: Option<SummaryMetadata>) -> Result<()> {
        let value = summary::Value { tag: tag.to_string(), metadata, value: Some(content), ..Default::default() };
        self.write(step, What::Summary(Summary { value: vec![value] }))
    }

    fn write(&mut self, step: i64, what: What) -> Result<()> {
        let wall_time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        self.writer.write_event(Event { wall_time, step, what: Some(what), source_metadata: None }).with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn flush(&mut self) -> Result<()> {
        self.writer.flush().with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A string tensor of one element, as TensorBoard's text plugin reads it.
fn text(markdown: &str) -> Content {
    Content::Tensor(TensorProto {
        dtype: DataType::DtString.into(),
        tensor_shape: Some(TensorShapeProto { dim: vec![Dim { size: 1, name: String::new() }], unknown_rank: false }),
        string_val: vec![markdown.as_bytes().to_vec()],
        ..Default::default()
    })
}

fn plugin(name: &str) -> SummaryMetadata {
    SummaryMetadata { plugin_data: Some(PluginData { plugin_name: name.to_string(), content: Vec::new() }), ..Default::default() }
}
