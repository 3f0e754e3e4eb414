//! Where a client finds its credential.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::Bearer;

/// The environment variable that may hold the credential itself. Not a flag:
/// a secret on a command line is visible to every user of the machine.
pub const API_KEY_ENV: &str = "PLAINT_API_KEY";

/// Where `scripts/demo.sh` keeps the local admin key; used when neither the
/// file setting nor the variable is given and the file exists.
pub const DEFAULT_API_KEY_FILE: &str = ".local/keys/admin.key";

/// How a client authenticates to the services.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct ClientSettings {
    /// A file holding the API key or JWT to present. Alternatively the
    /// credential itself in the `PLAINT_API_KEY` environment variable. Without
    /// either, `.local/keys/admin.key` when it exists, else no credential.
    #[arg(long, global = true, env = "PLAINT_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
}

impl ClientSettings {
    /// The credential to present, from the first source that has one.
    pub fn bearer(&self) -> anyhow::Result<Bearer> {
        if let Some(path) = &self.api_key_file {
            return from_file(path, "PLAINT_API_KEY_FILE");
        }
        if let Ok(token) = std::env::var(API_KEY_ENV) {
            return Bearer::token(&token).with_context(|| format!("{API_KEY_ENV} is unusable"));
        }
        let default = Path::new(DEFAULT_API_KEY_FILE);
        if default.exists() {
            return from_file(default, "the local admin key file");
        }
        Ok(Bearer::none())
    }
}

fn from_file(path: &Path, what: &str) -> anyhow::Result<Bearer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {what} ({})", path.display()))?;
    Bearer::token(&text).with_context(|| format!("{what} ({}) is unusable", path.display()))
}
