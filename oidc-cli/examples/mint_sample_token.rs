//! Writes `examples/tokens/sample.jwt` and `examples/tokens/jwks.json` from the committed
//! sample key. Run it with `cargo run -p oidc-cli --example mint_sample_token`; the output is
//! the same on every run, and the CLI tests fail if the committed files drift from it.

#[path = "../tests/support/sample.rs"]
#[allow(dead_code)]
mod sample;

fn main() -> std::io::Result<()> {
    for (name, contents) in sample::sample_files() {
        let path = sample::tokens_dir().join(name);
        std::fs::write(&path, contents)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
