//! `pystore key generate NAME`.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::output::{print_json, Ui};
use crate::sign::SecretKey;

/// Writes `NAME.secret` (0600) and `NAME.public` into `dir`; prints the public key last.
pub(super) fn generate(ui: Ui, name: &str, dir: &Path) -> Result<bool> {
    let key = SecretKey::generate(name)?;
    let (secret, public) = key.write(dir)?;
    let public_key = key.public().to_string();
    if ui.json {
        print_json(
            &json!({"secret_file": secret, "public_file": public, "public_key": public_key}),
        )?;
    } else {
        if !ui.quiet {
            eprintln!(
                "wrote {} (keep it secret: sign with --sign-key or PYSTORE_SIGNING_KEY) and {}",
                secret.display(),
                public.display()
            );
            eprintln!("trust it with PYSTORE_TRUSTED_KEYS=\"{public_key}\"");
        }
        println!("{public_key}");
    }
    Ok(true)
}
