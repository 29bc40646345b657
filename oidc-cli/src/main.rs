//! The `oidc` command.
fn main() {}
