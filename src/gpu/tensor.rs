use wgpu::util::DeviceExt;

use super::{Gpu, GpuError};

/// A labelled f32 storage buffer with its shape (row-major). Cloning shares the buffer.
#[derive(Clone)]
pub struct Tensor {
    pub buffer: wgpu::Buffer,
    pub shape: Vec<usize>,
    pub label: String,
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// Buffers are whole vec4s: kernels that bind them as `array<vec4<f32>>` see every element,
/// the last partial vec4 included, and no binding is below the 16-byte minimum.
fn padded_size(bytes: usize) -> usize {
    bytes.div_ceil(16).max(1) * 16
}

impl Tensor {
    pub fn zeros(gpu: &Gpu, label: &str, shape: &[usize]) -> Result<Tensor, GpuError> {
        let len: usize = shape.iter().product();
        let bytes = padded_size(len * 4) as u64;
        gpu.check_binding_size(label, bytes)?;
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: USAGE,
            mapped_at_creation: false,
        });
        Ok(Tensor {
            buffer,
            shape: shape.to_vec(),
            label: label.to_string(),
        })
    }

    pub fn from_slice(gpu: &Gpu, label: &str, shape: &[usize], data: &[f32]) -> Result<Tensor, GpuError> {
        let len: usize = shape.iter().product();
        assert_eq!(len, data.len(), "{label}: shape {shape:?} does not hold {} values", data.len());
        Self::from_bytes(gpu, label, shape, bytemuck::cast_slice(data))
    }

    /// A buffer of raw 32-bit words (u32 indices, packed bytes) with a nominal shape.
    pub fn from_bytes(gpu: &Gpu, label: &str, shape: &[usize], bytes: &[u8]) -> Result<Tensor, GpuError> {
        let size = padded_size(bytes.len());
        gpu.check_binding_size(label, size as u64)?;
        let mut padded = bytes.to_vec();
        padded.resize(size, 0);
        let buffer = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: &padded,
            usage: USAGE,
        });
        Ok(Tensor {
            buffer,
            shape: shape.to_vec(),
            label: label.to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn read(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        gpu.read(&self.buffer, 0, self.len())
    }

    pub async fn read_async(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        gpu.read_async(&self.buffer, 0, self.len()).await
    }

    pub fn write(&self, gpu: &Gpu, data: &[f32]) {
        gpu.queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
    }

    /// The whole tensor as an owned region (sharing the buffer).
    pub fn region(&self) -> Region {
        let v = self.view();
        Region { buffer: self.buffer.clone(), offset: 0, rows: v.rows, cols: v.cols }
    }

    /// The whole tensor as a matrix view: leading dimension × the rest.
    pub fn view(&self) -> View<'_> {
        let rows = self.shape.first().copied().unwrap_or(1);
        View::new(&self.buffer, 0, rows, self.len() / rows.max(1))
    }
}

/// A [rows, cols] row-major window into a buffer, starting `offset` elements in, rows `stride`
/// elements apart. Lets a layer read half of a concatenated batch, a parameter inside the flat
/// parameter buffer, or some columns of one (the image or the label part of a conditioned
/// layer's weight). Only matmul operands may have `stride != cols`; every other kernel asserts
/// a contiguous view.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

impl<'a> View<'a> {
    /// A contiguous view: rows `cols` apart.
    pub fn new(buffer: &'a wgpu::Buffer, offset: usize, rows: usize, cols: usize) -> View<'a> {
        View { buffer, offset, rows, cols, stride: cols }
    }

    /// Rows `start..start + rows` of this view.
    pub fn rows(self, start: usize, rows: usize) -> View<'a> {
        assert!(start + rows <= self.rows, "rows {start}..{} of {}", start + rows, self.rows);
        View {
            offset: self.offset + start * self.stride,
            rows,
            ..self
        }
    }

    /// Columns `start..start + cols` of every row.
    pub fn columns(self, start: usize, cols: usize) -> View<'a> {
        assert!(start + cols <= self.cols, "columns {start}..{} of {}", start + cols, self.cols);
        View { offset: self.offset + start, cols, ..self }
    }

    pub fn is_contiguous(&self) -> bool {
        self.stride == self.cols || self.rows <= 1
    }
}

/// An owned [rows, cols] window of a shared buffer, for graphs that keep views into buffers
/// other graphs own (the generator writing the fake half of the discriminator's input).
#[derive(Clone)]
pub struct Region {
    pub buffer: wgpu::Buffer,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
}

impl Region {
    /// Reads the first `rows` rows back, each value mapped through `f` (to pixels, say).
    pub fn read_rows(&self, gpu: &Gpu, rows: usize, f: impl Fn(f32) -> f32) -> Result<Vec<f32>, GpuError> {
        pollster::block_on(self.read_rows_async(gpu, rows, f))
    }

    pub async fn read_rows_async(&self, gpu: &Gpu, rows: usize, f: impl Fn(f32) -> f32) -> Result<Vec<f32>, GpuError> {
        Ok(gpu.read_async::<f32>(&self.buffer, self.offset as u64, rows * self.cols).await?.into_iter().map(f).collect())
    }

    pub fn view(&self) -> View<'_> {
        View::new(&self.buffer, self.offset, self.rows, self.cols)
    }

    pub fn rows(&self, start: usize, rows: usize) -> Region {
        let v = self.view().rows(start, rows);
        Region { buffer: self.buffer.clone(), offset: v.offset, rows, cols: self.cols }
    }
}
