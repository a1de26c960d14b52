//! A split on the GPU, in one of two ways; the recorded programs and the gather kernel are the
//! same for both, since either way a batch row k reads image `order[k]` of `pixels`.
//!
//! - Resident: the pixels uploaded once as packed bytes; `order` is the epoch's shuffle
//!   (rewritten each epoch: a few kilobytes, never pixels).
//! - Streamed, for a training split larger than one storage binding (or `--stream`): the images
//!   stay in host memory and `pixels` is a ring of `window` slots. Before each submit `feed`
//!   copies its batches' images into the next slots of a host mirror of the ring, writes the
//!   slots through the queue, and points `order[k]` at the slot of row k. The queue runs the
//!   write after the submits before it, so a slot is never rewritten under a step still reading
//!   it; and `feed` waits for the submit before last, so the host gathers one submit ahead of
//!   the GPU and its staging memory stays at two submits' batches.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;

use super::Split;
use crate::gpu::{Gpu, GpuError, Tensor};

pub struct DeviceSplit {
    /// Resident: [count, channels · side · side] bytes, four to a u32. Streamed: [window, …].
    pub pixels: Tensor,
    /// [count] u32: the slot of `pixels` each row of the epoch reads
    pub order: Tensor,
    /// Resident: [count] label bytes, four to a u32. Streamed: [window].
    pub labels: Tensor,
    pub count: usize,
    stream: Option<RefCell<Stream>>,
}

/// The host side of a streamed split.
struct Stream {
    /// The split, [count, values] bytes, and its labels.
    images: Vec<u8>,
    image_labels: Vec<u8>,
    values: usize,
    /// The epoch's shuffle: row k of the epoch is image `shuffle[k]`.
    shuffle: Vec<u32>,
    /// What `pixels` and `labels` hold, slot by slot, padded as the buffers are: any 4-byte
    /// aligned range of them can be written whole from here.
    pixels: Vec<u8>,
    labels: Vec<u8>,
    window: usize,
    /// The slot the next fed row goes to.
    next: usize,
    /// The last two submits fed, oldest first.
    in_flight: VecDeque<wgpu::SubmissionIndex>,
    /// Bytes written through the queue so far.
    written: u64,
}

impl DeviceSplit {
    /// The whole split, uploaded once.
    pub fn upload(gpu: &Gpu, name: &str, split: &Split) -> Result<DeviceSplit, GpuError> {
        let identity: Vec<u32> = (0..split.count as u32).collect();
        Ok(DeviceSplit {
            pixels: Tensor::from_bytes(gpu, &format!("{name}.pixels"), &[split.count, split.shape.values()], &split.images)?,
            order: Tensor::from_bytes(gpu, &format!("{name}.order"), &[split.count], bytemuck::cast_slice(&identity))?,
            labels: Tensor::from_bytes(gpu, &format!("{name}.labels"), &[split.count], &split.labels)?,
            count: split.count,
            stream: None,
        })
    }

    /// This resident split's images read in `order` (any length, indices repeated at will),
    /// sharing its buffers.
    pub fn reordered(&self, gpu: &Gpu, name: &str, order: &[u32]) -> Result<DeviceSplit, GpuError> {
        assert!(self.stream.is_none(), "{name}: a streamed split holds only a window of its images");
        Ok(DeviceSplit {
            pixels: self.pixels.clone(),
            order: Tensor::from_bytes(gpu, &format!("{name}.order"), &[order.len()], bytemuck::cast_slice(order))?,
            labels: self.labels.clone(),
            count: order.len(),
            stream: None,
        })
    }

    /// The training split: uploaded once where it fits one storage binding and `stream` is not
    /// asked for, else streamed through a ring of `window` images (at least one submit's rows;
    /// more than the split holds where a submit spans epochs: an image may fill two slots).
    pub fn for_training(gpu: &Gpu, split: Split, window: usize, stream: bool) -> Result<DeviceSplit, GpuError> {
        if !stream && gpu.check_binding_size("train.pixels", split.images.len() as u64).is_ok() {
            return DeviceSplit::upload(gpu, "train", &split);
        }
        let window = window.max(1);
        let values = split.shape.values();
        let pixels = vec![0; (window * values).div_ceil(16) * 16];
        let labels = vec![0; window.div_ceil(16) * 16];
        let order = vec![0u32; split.count];
        Ok(DeviceSplit {
            pixels: Tensor::from_bytes(gpu, "train.window.pixels", &[window, values], &pixels)?,
            order: Tensor::from_bytes(gpu, "train.window.order", &[split.count], bytemuck::cast_slice(&order))?,
            labels: Tensor::from_bytes(gpu, "train.window.labels", &[window], &labels)?,
            count: split.count,
            stream: Some(RefCell::new(Stream {
                images: split.images,
                image_labels: split.labels,
                values,
                shuffle: (0..split.count as u32).collect(),
                pixels,
                labels,
                window,
                next: 0,
                in_flight: VecDeque::new(),
                written: 0,
            })),
        })
    }

    /// Sets the order batches are drawn in: `order[k]` is the image of the epoch's row k.
    pub fn set_order(&self, gpu: &Gpu, order: &[u32]) {
        assert_eq!(order.len(), self.count);
        match &self.stream {
            None => gpu.queue.write_buffer(&self.order.buffer, 0, bytemuck::cast_slice(order)),
            Some(stream) => stream.borrow_mut().shuffle.copy_from_slice(order),
        }
    }

    /// Makes `rows` (each a batch's rows of the epoch, together at most the window) readable
    /// by the next submit; nothing to do for a resident split.
    pub fn feed(&self, gpu: &Gpu, rows: &[Range<usize>]) {
        let Some(stream) = &self.stream else { return };
        let mut s = stream.borrow_mut();
        let total: usize = rows.iter().map(ExactSizeIterator::len).sum();
        assert!(total <= s.window, "{total} rows fed at once into a window of {}", s.window);
        let first_slot = s.next;
        for range in rows {
            let slots: Vec<u32> = range.clone().map(|k| s.take_row(k)).collect();
            gpu.queue.write_buffer(&self.order.buffer, (range.start * 4) as u64, bytemuck::cast_slice(&slots));
        }
        // The submit before last must be done before a third is staged.
        if s.in_flight.len() >= 2 {
            let oldest = s.in_flight.pop_front().expect("two in flight");
            let _ = gpu.device.poll(wgpu::PollType::Wait { submission_index: Some(oldest), timeout: None });
        }
        let pieces = [(first_slot, (first_slot + total).min(s.window)), (0, (first_slot + total).saturating_sub(s.window))];
        for (start, end) in pieces.into_iter().filter(|(a, b)| a < b) {
            let v = s.values;
            s.written += write_aligned(gpu, &self.pixels.buffer, &s.pixels, start * v..end * v);
            s.written += write_aligned(gpu, &self.labels.buffer, &s.labels, start..end);
        }
    }

    /// Notes the submit that read the rows fed last, so the next `feed` can wait for it.
    pub fn submitted(&self, index: wgpu::SubmissionIndex) {
        if let Some(stream) = &self.stream {
            stream.borrow_mut().in_flight.push_back(index);
        }
    }

    /// Streamed: (images the ring holds, bytes written through the queue so far).
    pub fn streamed(&self) -> Option<(usize, u64)> {
        self.stream.as_ref().map(|s| {
            let s = s.borrow();
            (s.window, s.written)
        })
    }
}

impl Stream {
    /// Copies the image of the epoch's row `k` into the next slot of the mirror; returns it.
    fn take_row(&mut self, k: usize) -> u32 {
        let (slot, v) = (self.next, self.values);
        let image = self.shuffle[k] as usize;
        self.pixels[slot * v..(slot + 1) * v].copy_from_slice(&self.images[image * v..(image + 1) * v]);
        self.labels[slot] = self.image_labels[image];
        self.next = (slot + 1) % self.window;
        slot as u32
    }
}

/// Writes `bytes` of `mirror` to the same bytes of `buffer`, widened to 4-byte boundaries
/// (copies must be aligned; the mirror holds what the widened edges already are). Returns the
/// bytes written.
fn write_aligned(gpu: &Gpu, buffer: &wgpu::Buffer, mirror: &[u8], bytes: Range<usize>) -> u64 {
    let align = wgpu::COPY_BUFFER_ALIGNMENT as usize;
    let (lo, hi) = (bytes.start / align * align, bytes.end.div_ceil(align) * align);
    gpu.queue.write_buffer(buffer, lo as u64, &mirror[lo..hi]);
    (hi - lo) as u64
}
