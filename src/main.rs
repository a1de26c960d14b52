fn main() {
    // Mesa's Vulkan drivers print a confusing "error:" line when this is unset; give them a
    // directory so every "error:" a user sees is ours.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    let code = match wgen::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
