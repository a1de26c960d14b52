//! The browser build: the library (gpu, nn, models, the training step, data, images) compiles
//! for wasm32-unknown-unknown, where wgpu runs on WebGPU and nothing may block.

use std::process::Command;

#[test]
fn library_builds_for_webassembly_with_no_native_only_code_in_its_path() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output().map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"));
    assert!(installed.unwrap_or(true), "the browser build needs the WebAssembly target: rustup target add wasm32-unknown-unknown");
    // Its own target folder: the outer cargo holds this checkout's.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm32-check");
    let out = Command::new(env!("CARGO"))
        .args(["check", "--lib", "--quiet", "--target", "wasm32-unknown-unknown", "--target-dir"])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo check --lib --target wasm32-unknown-unknown failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_preferred_adapter_opens_and_reads_back_through_a_future() {
    // The browser's path (request_adapter, then awaited readbacks), driven natively.
    let gpu = pollster::block_on(wgen::gpu::Gpu::preferred()).expect("an adapter (lavapipe on CI)");
    let values: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
    let t = wgen::gpu::Tensor::from_slice(&gpu, "values", &[37], &values).unwrap();
    let back: Vec<f32> = pollster::block_on(gpu.read_async(&t.buffer, 3, 30)).unwrap();
    assert_eq!(back, values[3..33]);
}
