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
