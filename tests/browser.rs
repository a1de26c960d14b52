//! The browser page end to end: `cargo xtask web` builds it, `cargo xtask serve` serves it,
//! headless Chromium (WebGPU on its SwiftShader adapter) trains 100 VAE steps and 50 GAN
//! steps (and two of each conv model) through the page's own buttons, driven over the
//! DevTools protocol. The page's first
//! losses must be native wgen's on the same seed, its download must load in `wgen sample`,
//! and it must log no errors. Screenshots land in `target/tmp/browser/`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wgen::train::{Live, ModelKind, TrainConfig};

/// Kills a child process when the test ends, passed or not.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> PathBuf {
    let candidates = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    std::env::var_os("WGEN_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| candidates.iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success())).map(PathBuf::from))
        .expect("the browser test needs Chromium: apt-get install chromium (or set WGEN_CHROMIUM to a Chrome binary)")
}

/// `cargo xtask ARGS` in its own target folder (the outer cargo holds this checkout's).
fn xtask(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["run", "--quiet", "--release", "--package", "xtask", "--"])
        .args(args)
        .env("CARGO_TARGET_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-build"))
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// The first line a child prints on `stream` that contains `marker`.
fn line_with(stream: impl std::io::Read + Send + 'static, marker: &'static str) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if line.contains(marker) {
                let _ = tx.send(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| panic!("no line with {marker:?} within 120 s"))
}

/// A DevTools protocol session with one page, over the browser's websocket.
struct Cdp {
    ws: tungstenite::WebSocket<TcpStream>,
    next: u64,
    session: Option<String>,
    /// Console errors, exceptions and log errors the page raised.
    errors: Vec<String>,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        let (ws, _) = tungstenite::client(url, stream).expect("a DevTools websocket");
        Cdp { ws, next: 0, session: None, errors: Vec::new() }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let mut msg = json!({"id": self.next, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        self.ws.send(tungstenite::Message::text(msg.to_string())).unwrap();
        loop {
            let text = match self.ws.read().unwrap_or_else(|e| panic!("{method}: no answer from Chromium ({e})")) {
                tungstenite::Message::Text(t) => t.to_string(),
                _ => continue,
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == json!(self.next) {
                assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
            self.note(&v);
        }
    }

    fn note(&mut self, event: &Value) {
        let p = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.errors.push(format!("exception: {}", p["exceptionDetails"])),
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => self.errors.push(format!("console.error: {}", p["args"])),
            Some("Runtime.consoleAPICalled") if p["type"] == "warning" => self.errors.push(format!("console.warn: {}", p["args"])),
            // Dawn reports a WebGPU validation error (and the dropped command buffer) as a warning.
            Some("Log.entryAdded") if p["entry"]["level"] == "error" || p["entry"]["level"] == "warning" => {
                self.errors.push(format!("log ({}): {}", p["entry"]["level"], p["entry"]["text"]))
            }
            _ => {}
        }
    }

    /// Evaluates `expr` in the page, awaiting a promise, and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "awaitPromise": true, "returnByValue": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {}", r["exceptionDetails"]);
        r["result"]["value"].clone()
    }

    fn state(&mut self) -> Value {
        self.eval("wgenPage.state()")
    }

    fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
        std::fs::write(path, base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().unwrap()).unwrap()).unwrap();
    }
}

/// Trains `steps` steps of the page's `model` at its default settings (or `batch`) and seed 0.
fn train_on_the_page(cdp: &mut Cdp, model: &str, steps: u32, batch: Option<usize>) -> Value {
    let batch = batch.map_or(String::new(), |b| format!("document.getElementById('batch').value = {b};"));
    cdp.eval(&format!(
        "(() => {{ const m = document.getElementById('model'); m.value = '{model}'; m.dispatchEvent(new Event('change')); {batch}
           document.getElementById('seed').value = 0; document.getElementById('stop-at').value = {steps};
           document.getElementById('start').click(); }})()"
    ));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(360);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let s = cdp.state();
        assert!(s["error"].is_null() || s["error"] == "", "the page shows a problem: {}", s["error"]);
        let at = s["history"].as_array().and_then(|h| h.last()).map_or(0, |w| w["global"].as_u64().unwrap());
        if at == u64::from(steps) && s["running"] == false && s["lastGrid"] == json!(steps) {
            // Where this test's minutes go (shown with --nocapture).
            eprintln!("{model}: {steps} steps on the page in {:.1} s", started.elapsed().as_secs_f64());
            return s;
        }
        assert!(Instant::now() < deadline, "{model}: step {at} of {steps} after 6 minutes");
    }
}

/// The per-step values of `key` over the page's first single steps.
fn first_steps(state: &Value, key: &str, n: usize) -> Vec<f64> {
    let history = state["history"].as_array().unwrap();
    history[..n]
        .iter()
        .map(|w| {
            assert_eq!(w["steps"], 1, "the page reads the first steps one at a time");
            w["values"][key].as_f64().unwrap()
        })
        .collect()
}

/// The same model natively, with the page's matmul family: each of `keys` over the first `n`
/// steps, one at a time, then the img/s of the `windows` the page submitted after them.
fn native(model: ModelKind, matmul: &str, keys: &[&str], n: usize, windows: &[usize]) -> (Vec<Vec<f64>>, f64) {
    native_on(wgen::data::builtin(), TrainConfig::defaults(model), matmul, keys, n, windows)
}

/// As `native`, on `dataset` with `cfg`.
fn native_on(dataset: wgen::data::Dataset, cfg: TrainConfig, matmul: &str, keys: &[&str], n: usize, windows: &[usize]) -> (Vec<Vec<f64>>, f64) {
    let base = common::gpu();
    let family = base.matmul_families().into_iter().find(|f| format!("{f:?}") == matmul).unwrap_or_else(|| panic!("no {matmul} matmul here"));
    let gpu = base.with_matmul(family);
    let mut live = Live::new(&gpu, &cfg, dataset).unwrap();
    let mut values = vec![Vec::new(); keys.len()];
    for _ in 0..n {
        live.submit(&gpu, 1);
        let w = pollster::block_on(live.losses(&gpu)).unwrap();
        for (v, key) in values.iter_mut().zip(keys) {
            v.push(w.values.iter().find(|(k, _)| k == key).unwrap().1);
        }
    }
    let start = Instant::now();
    let mut images = 0;
    for &steps in windows {
        let mut left = steps;
        while left > 0 {
            left -= live.submit(&gpu, left);
        }
        pollster::block_on(live.losses(&gpu)).unwrap();
        images += steps * cfg.batch;
    }
    (values, images as f64 / start.elapsed().as_secs_f64())
}

/// Drops `files` (relative path, bytes) on the page as a folder, served from `site/name`, and
/// waits until the page has read them.
fn drop_folder(cdp: &mut Cdp, site: &Path, name: &str, files: &[(String, Vec<u8>)]) {
    for (path, bytes) in files {
        let file = site.join(name).join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    cdp.eval("document.getElementById('reset').click()");
    cdp.eval(&format!(
        "(async () => {{ const paths = {};
           const dropped = new DataTransfer();
           for (const path of paths) dropped.items.add(new File([await (await fetch('{name}/' + path)).blob()], path, {{ type: 'image/png' }}));
           document.body.dispatchEvent(new DragEvent('drop', {{ dataTransfer: dropped, bubbles: true, cancelable: true }}));
           while (!document.getElementById('data-source').textContent.includes('{} files')) {{
             if (wgenPage.state().error) throw new Error(wgenPage.state().error);
             await new Promise((r) => setTimeout(r, 50));
           }} }})()",
        json!(paths),
        files.len()
    ));
}

/// The window sizes the page submitted after its single steps.
fn windows(state: &Value, single: usize) -> Vec<usize> {
    state["history"].as_array().unwrap()[single..].iter().map(|w| w["steps"].as_u64().unwrap() as usize).collect()
}

fn assert_matches_native(page: &[f64], native: &[f64], what: &str) {
    // Step 1's loss comes before any update: only the two CPU Vulkans' exp/log differ. Adam's
    // first steps move every weight by about lr whatever its gradient's size, so a rounding
    // difference in a near-zero gradient can flip a weight's step: later losses drift a little.
    for (i, (p, n)) in page.iter().zip(native).enumerate() {
        let tol = if i == 0 { 1e-5 } else { 2e-3 };
        assert!((p - n).abs() <= tol * n.abs().max(1.0), "{what}, step {}: page {p}, native {n} (tolerance {tol} relative)", i + 1);
    }
}

#[test]
fn the_page_trains_in_headless_chromium_as_native_wgen_does() {
    let chromium = chromium();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("downloads")).unwrap();
    let site = tmp.join("site");
    let building = Instant::now();
    let built = xtask(&["web", "--out", site.to_str().unwrap()]).output().expect("cargo runs");
    assert!(built.status.success(), "cargo xtask web failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let report = String::from_utf8_lossy(&built.stdout).to_string();
    eprintln!("{} ({:.0} s)", report.trim(), building.elapsed().as_secs_f64());

    let mut server = xtask(&["serve", site.to_str().unwrap(), "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    let serving = line_with(server.stdout.take().unwrap(), "serving");
    let _server = Reaped(server);
    let url = serving.split_whitespace().find(|w| w.starts_with("http://")).expect("the URL").to_string();

    let mut browser = Command::new(chromium)
        .args(["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--remote-debugging-port=0", "--window-size=1200,1400", "--no-first-run"])
        .arg(format!("--user-data-dir={}", tmp.join("profile").display()))
        .arg("about:blank")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let listening = line_with(browser.stderr.take().unwrap(), "DevTools listening on");
    let _browser = Reaped(browser);
    let mut cdp = Cdp::connect(listening.rsplit(' ').next().unwrap());
    cdp.call("Browser.setDownloadBehavior", json!({"behavior": "allow", "downloadPath": tmp.join("downloads")}));
    let target = cdp.call("Target.createTarget", json!({"url": "about:blank"}))["targetId"].clone();
    let session = cdp.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}))["sessionId"].as_str().unwrap().to_string();
    cdp.session = Some(session);
    for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
        cdp.call(domain, json!({}));
    }
    cdp.call("Page.navigate", json!({"url": url}));
    let deadline = Instant::now() + Duration::from_secs(60);
    while cdp.eval("document.getElementById('state')?.textContent ?? ''") != "ready" {
        let problem = cdp.eval("document.getElementById('problem')?.textContent ?? ''");
        assert!(problem == "" && Instant::now() < deadline, "the page did not get ready: {problem}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The VAE: 100 steps, its first ten against native wgen's, then the download.
    let vae = train_on_the_page(&mut cdp, "vae", 100, None);
    let matmul = vae["describe"]["matmul"].as_str().unwrap().to_string();
    let page_losses = first_steps(&vae, "loss", 10);
    let (native_losses, native_rate) = native(ModelKind::Vae, &matmul, &["loss"], 10, &windows(&vae, 10));
    assert_matches_native(&page_losses, &native_losses[0], "VAE loss");
    let last = vae["history"].as_array().unwrap().last().unwrap()["values"]["loss"].as_f64().unwrap();
    assert!(last < 0.8 * page_losses[0], "the VAE's loss falls: {} at step 1, {last} at step 100", page_losses[0]);
    let elbo = vae["negElbo"].as_f64().expect("the VAE's test pass ran");
    assert!(elbo < page_losses[0], "test −ELBO {elbo} after 100 steps");
    eprintln!(
        "VAE, 100 steps on {} (subgroups {}): loss {:.2} → {last:.2}, test −ELBO {elbo:.1}; {:.0} img/s in the page, {native_rate:.0} img/s natively ({matmul} matmul both)",
        vae["adapter"], vae["describe"]["subgroup_sizes"], page_losses[0], vae["rate"].as_f64().unwrap()
    );
    cdp.screenshot(&tmp.join("vae.png"));
    cdp.eval("document.getElementById('download').click()");
    let file = tmp.join("downloads/model.safetensors");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !file.is_file() {
        assert!(Instant::now() < deadline, "no model.safetensors downloaded within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let grid = tmp.join("downloaded-samples.png");
    let sampled = Command::new(env!("CARGO_BIN_EXE_wgen")).arg("sample").arg(&file).arg("--grid").arg(&grid).arg("--quiet").env("XDG_RUNTIME_DIR", "/tmp").output().unwrap();
    assert!(sampled.status.success(), "wgen sample on the download: {}", String::from_utf8_lossy(&sampled.stderr));
    assert!(grid.is_file());

    // The GAN: reset, 50 steps, its first ten against native wgen's.
    cdp.eval("document.getElementById('reset').click()");
    let gan = train_on_the_page(&mut cdp, "gan", 50, None);
    let keys = ["d_loss", "g_loss", "d_real", "d_fake"];
    let (native_values, native_gan_rate) = native(ModelKind::Gan, &matmul, &keys, 10, &windows(&gan, 10));
    for (key, native_values) in keys.iter().zip(&native_values) {
        assert_matches_native(&first_steps(&gan, key, 10), native_values, &format!("GAN {key}"));
    }
    let d_loss = first_steps(&gan, "d_loss", 10);
    let last_d = gan["history"].as_array().unwrap().last().unwrap()["values"]["d_loss"].as_f64().unwrap();
    assert!(last_d < d_loss[0], "the discriminator's loss falls: {} at step 1, {last_d} at step 50", d_loss[0]);
    eprintln!("GAN, 50 steps: d_loss {:.3} → {last_d:.3}; {:.0} img/s in the page, {native_gan_rate:.0} img/s natively", d_loss[0], gan["rate"].as_f64().unwrap());
    cdp.screenshot(&tmp.join("gan.png"));

    // The conv models, two steps each (a DCGAN step takes seconds on a CPU): the same losses.
    for (model, kind, keys) in [("conv-vae", ModelKind::ConvVae, &["loss"][..]), ("dcgan", ModelKind::Dcgan, &keys[..])] {
        cdp.eval("document.getElementById('reset').click()");
        let state = train_on_the_page(&mut cdp, model, 2, None);
        let (native_values, _) = native(kind, &matmul, keys, 2, &[]);
        for (key, native_values) in keys.iter().zip(&native_values) {
            assert_matches_native(&first_steps(&state, key, 2), native_values, &format!("{model} {key}"));
        }
    }
    // A folder of colour pictures dropped on the page (as files named by their paths, which is
    // what a script can drop): decoded in the page by the same code, the VAE's first steps on
    // it as native wgen's on the same files.
    let pictures = common::colour_pictures(90, 12, 3);
    drop_folder(&mut cdp, &site, "folder-test", &pictures);
    let state = train_on_the_page(&mut cdp, "vae", 3, Some(16));
    assert_eq!(state["describe"]["image"], json!({"channels": 3, "side": 12}), "the page reads the pictures as 12×12 colour");
    let cfg = TrainConfig { batch: 16, ..TrainConfig::defaults(ModelKind::Vae) };
    let (native_values, _) = native_on(common::colour_dataset(90, 12, 3), cfg, &matmul, &["loss"], 3, &[]);
    assert_matches_native(&first_steps(&state, "loss", 3), &native_values[0], "VAE loss on a colour folder");
    cdp.screenshot(&tmp.join("folder.png"));
    // A small folder (classes of 1, 4 and 25 digits) with the form's defaults: the batch
    // shrinks to the training split, as `wgen train --data` shrinks it; a GAN under spectral
    // norm and the hinge loss steps as native wgen does, and the DCGAN under spectral norm steps.
    let small = common::thirty_digits();
    drop_folder(&mut cdp, &site, "small-test", &small);
    cdp.eval("document.getElementById('spectral-norm').checked = true; document.getElementById('loss').value = 'hinge'");
    let state = train_on_the_page(&mut cdp, "gan", 3, None);
    let dataset = common::dataset_of_files(&small);
    let train = dataset.train.count;
    assert_eq!(state["describe"]["batch"], json!(train), "the default batch fits the {train} training images");
    assert_eq!(state["describe"]["spectral_norm"], json!(true));
    let mut cfg = TrainConfig { batch: train, ..TrainConfig::defaults(ModelKind::Gan) };
    cfg.gan.as_mut().unwrap().spectral_norm = true;
    cfg.gan.as_mut().unwrap().loss = wgen::nn::GanLoss::Hinge;
    let (native_values, _) = native_on(dataset, cfg, &matmul, &keys, 3, &[]);
    for (key, native_values) in keys.iter().zip(&native_values) {
        assert_matches_native(&first_steps(&state, key, 3), native_values, &format!("GAN {key} on a small folder under spectral norm"));
    }
    cdp.eval("document.getElementById('reset').click()");
    let state = train_on_the_page(&mut cdp, "dcgan", 2, None);
    assert_eq!(state["describe"]["batch"], json!(train), "the DCGAN's default batch fits too");
    cdp.screenshot(&tmp.join("small-folder.png"));
    // The conditional DCGAN on the folder's classes, and one class picked by name to draw.
    cdp.eval("document.getElementById('reset').click(); document.getElementById('model').value = 'dcgan'; document.getElementById('conditional').checked = true");
    let state = train_on_the_page(&mut cdp, "dcgan", 2, None);
    assert_eq!(state["describe"]["class_names"], json!(["four", "many", "one"]), "the picker lists the folder's classes");
    // A row per class, each named on its left: the grid is wider than its 8 columns of 2×
    // images (8 × 29 + 1 pixels, doubled) by the names' margin; one picked class has none.
    let images_wide = (8 * 29 + 1) * 2;
    let grid_width = |cdp: &mut Cdp| cdp.eval("document.getElementById('grid').width").as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while grid_width(&mut cdp) <= images_wide {
        assert!(Instant::now() < deadline, "the grid of a row per class has no names' margin: {}", cdp.state()["error"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    cdp.screenshot(&tmp.join("class-rows.png"));
    cdp.eval("(() => { const c = document.getElementById('class'); c.value = '1'; c.dispatchEvent(new Event('change')); })()");
    let deadline = Instant::now() + Duration::from_secs(60);
    while cdp.state()["gridClass"] != "many" {
        assert!(Instant::now() < deadline, "the grid of the picked class was not drawn: {}", cdp.state()["error"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(grid_width(&mut cdp), images_wide, "one class's grid: no names");
    cdp.screenshot(&tmp.join("picked-class.png"));
    assert!(cdp.errors.is_empty(), "the page logged errors:\n{}", cdp.errors.join("\n"));
    eprintln!("screenshots: {}", tmp.display());
}
