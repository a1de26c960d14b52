//! `cargo xtask web [--out DIR]` builds the browser page: web/ for wasm32 with WebGPU, its JS
//! glue (wasm-bindgen's own library, pinned to web/'s version, so no CLI to install), the page,
//! the shaders it links to and the built-in digits it trains on. `cargo xtask serve [DIR]`
//! serves the folder on 127.0.0.1.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Build and serve wgen's browser page")]
struct Args {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the page into a folder (default: target/web).
    Web {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve a built page on http://127.0.0.1:PORT/ until stopped.
    Serve {
        /// The folder `cargo xtask web` wrote (default: target/web).
        dir: Option<PathBuf>,
        /// 0 picks a free port; the URL line says which.
        #[arg(long, default_value_t = 8000)]
        port: u16,
    },
}

fn main() {
    let args = Args::parse();
    let result = match args.command {
        Task::Web { out } => build(&out.unwrap_or_else(|| target_dir().join("web"))),
        Task::Serve { dir, port } => serve(&dir.unwrap_or_else(|| target_dir().join("web")), port),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ sits in the repository").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn build(out: &Path) -> Result<()> {
    let root = root();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--package", "wgen-web", "--target", "wasm32-unknown-unknown", "--target-dir"])
        .arg(target_dir())
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building web/ for wasm32 failed (is the target installed? rustup target add wasm32-unknown-unknown)");
    }
    let wasm = target_dir().join("wasm32-unknown-unknown/release/wgen_web.wasm");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        .typescript(false)
        // As the CLI does: `init()` with no argument fetches the .wasm beside the glue.
        .omit_default_module_path(false)
        .generate(out.join("pkg"))
        .context("wasm-bindgen could not generate the JS glue")?;
    for page in ["index.html", "app.js", "style.css"] {
        copy(&root.join("web").join(page), &out.join(page))?;
    }
    copy_matching(&root.join("shaders"), &out.join("shaders"), ".wgsl")?;
    copy_matching(&root.join("assets/mnist-10k"), &out.join("data"), "")?;
    let bytes = std::fs::read(out.join("pkg/wgen_web_bg.wasm"))?;
    let mut gz = flate2::read::GzEncoder::new(&bytes[..], flate2::Compression::best());
    let gzipped = gz.read_to_end(&mut Vec::new())?;
    println!("built the page into {} (wasm {} KB, {} KB gzipped); serve it with: cargo xtask serve {}", out.display(), bytes.len() / 1024, gzipped / 1024, out.display());
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Every file in `from` whose name ends with `suffix`, into `to`.
fn copy_matching(from: &Path, to: &Path, suffix: &str) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let path = entry?.path();
        if path.is_file() && path.to_string_lossy().ends_with(suffix) {
            copy(&path, &to.join(path.file_name().expect("a file has a name")))?;
        }
    }
    Ok(())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("wgsl") | Some("md") | Some("txt") => "text/plain; charset=utf-8",
        Some("png") => "image/png",
        // The IDX .gz files are fetched as bytes and inflated by the page's own reader.
        _ => "application/octet-stream",
    }
}

fn serve(dir: &Path, port: u16) -> Result<()> {
    if !dir.join("index.html").is_file() {
        bail!("no page in {}; build it first with: cargo xtask web", dir.display());
    }
    let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {e} (try --port 0)"))?;
    let port = server.server_addr().to_ip().map_or(port, |a| a.port());
    println!("serving {} at http://127.0.0.1:{port}/ (Ctrl-C stops)", dir.display());
    let root = dir.canonicalize()?;
    for request in server.incoming_requests() {
        let path = request.url().split(['?', '#']).next().unwrap_or("/").trim_start_matches('/').to_string();
        let path = if path.is_empty() { "index.html".to_string() } else { path };
        let file = root.join(&path).canonicalize().ok().filter(|f| f.starts_with(&root) && f.is_file());
        let response = match file.and_then(|f| std::fs::read(&f).ok().map(|b| (f, b))) {
            Some((f, body)) => {
                let header = tiny_http::Header::from_bytes("Content-Type", content_type(&f)).expect("a valid header");
                request.respond(tiny_http::Response::from_data(body).with_header(header))
            }
            None => request.respond(tiny_http::Response::from_string(format!("{path}: not found")).with_status_code(404)),
        };
        if let Err(e) = response {
            eprintln!("{path}: {e}");
        }
    }
    Ok(())
}
