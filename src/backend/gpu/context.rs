//! Adapter and device setup, and turning wgpu's asynchronous failures
//! (validation errors, device loss) into errors a caller can act on.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Optional features Cairn asks for when the adapter has them.
const WANTED_FEATURES: [(wgpu::Features, &str); 3] = [
    (wgpu::Features::SUBGROUP, "subgroups"),
    (wgpu::Features::SHADER_F16, "shader-f16"),
    (wgpu::Features::TIMESTAMP_QUERY, "timestamp-query"),
];

/// Storage buffers the widest kernel binds in one stage (matmul: x, weights,
/// scales, bias, residual, y). WebGPU guarantees 8.
pub const STORAGE_BUFFERS_NEEDED: u32 = 6;

/// A device and queue, what they can do, and the first failure seen on them.
pub struct GpuContext {
    /// The logical device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter's name and backend, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) on Vulkan".
    pub adapter: String,
    /// Whether the adapter is a software rasteriser (lavapipe, SwiftShader, WARP).
    pub software: bool,
    /// Optional features granted, by their WebGPU names.
    pub features: Vec<&'static str>,
    /// The limits the device was created with.
    pub limits: wgpu::Limits,
    failure: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Finds an adapter and opens a device on it, asking for the optional
    /// features the adapter offers and for its largest storage buffers.
    /// Fails with [`Error::Gpu`] when there is no adapter or the device is refused.
    pub async fn new() -> Result<Self> {
        #[cfg(not(target_arch = "wasm32"))]
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        #[cfg(target_arch = "wasm32")]
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("no GPU adapter available ({e})")))?;
        let info = adapter.get_info();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        let name = format!("{} on {:?}", if info.name.is_empty() { "unnamed adapter" } else { &info.name }, info.backend);

        let offered = adapter.features();
        let mut features = wgpu::Features::empty();
        let mut names = Vec::new();
        for (f, n) in WANTED_FEATURES {
            if offered.contains(f) {
                features |= f;
                names.push(n);
            }
        }
        let have = adapter.limits();
        if have.max_storage_buffers_per_shader_stage < STORAGE_BUFFERS_NEEDED {
            return Err(Error::Gpu(format!(
                "{name} allows {} storage buffers per shader stage; Cairn's kernels need {STORAGE_BUFFERS_NEEDED}",
                have.max_storage_buffers_per_shader_stage
            )));
        }
        // WebGPU's defaults, except the buffer sizes, which a large index needs in full.
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
            max_buffer_size: have.max_buffer_size,
            ..wgpu::Limits::default()
        }
        .or_worse_values_from(&have);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("cairn"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("{name} refused a device: {e}")))?;

        let failure = Arc::new(Mutex::new(None));
        let on_error = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            record(&on_error, format!("validation error: {e}"));
        }));
        let on_lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            record(&on_lost, format!("device lost ({reason:?}): {message}"));
        });
        Ok(GpuContext { device, queue, adapter: name, software, features: names, limits, failure })
    }

    /// Opens a device, blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self> {
        super::block_on(Self::new())
    }

    /// Whether the adapter runs on the CPU (a software rasteriser).
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// Whether the device granted an optional feature (by WebGPU name).
    pub fn has(&self, feature: &str) -> bool {
        self.features.contains(&feature)
    }

    /// The first validation error or device loss seen so far, as an error.
    /// Every entry point calls this after its work, so a failure is never silent.
    pub fn check(&self) -> Result<()> {
        match self.failure.lock().map(|f| f.clone()) {
            Ok(Some(message)) => Err(Error::Gpu(format!("{}: {message}", self.adapter))),
            Ok(None) => Ok(()),
            Err(_) => Err(Error::Gpu("error state poisoned".into())),
        }
    }

    /// One line for logs and `--backend` reports.
    pub fn describe(&self) -> String {
        if self.features.is_empty() {
            self.adapter.clone()
        } else {
            format!("{} ({})", self.adapter, self.features.join(", "))
        }
    }

    /// Creates a storage buffer holding `data`.
    pub fn storage<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        // wgpu rejects empty bindings; a one-word buffer stands in for "nothing".
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let zero = [0u8; 4];
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: if bytes.is_empty() { &zero } else { bytes },
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        })
    }

    /// Creates an uninitialised storage buffer of `bytes` (at least 4).
    pub fn scratch(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// Creates a uniform buffer holding `data`.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, data: &T) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(data),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// Creates a buffer the CPU can map to read results back.
    pub fn readback(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Maps `buffer` (filled by an already submitted copy) and returns its
    /// first `bytes` bytes; then checks for errors raised by the submission.
    pub async fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let (tx, rx) = futures_channel::oneshot::channel();
        let slice = buffer.slice(..bytes);
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("{}: waiting for the GPU failed: {e}", self.adapter)))?;
        let mapped = rx.await.map_err(|_| Error::Gpu(format!("{}: the readback was cancelled", self.adapter)))?;
        self.check()?;
        mapped.map_err(|e| Error::Gpu(format!("{}: reading results back failed: {e}", self.adapter)))?;
        let data = {
            let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("{}: mapped range: {e}", self.adapter)))?;
            view.to_vec()
        };
        buffer.unmap();
        Ok(data)
    }
}

fn record(slot: &Mutex<Option<String>>, message: String) {
    if let Ok(mut s) = slot.lock() {
        s.get_or_insert(message);
    }
}
