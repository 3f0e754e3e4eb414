//! The start-up settings of access control, the same in both services.

use std::path::PathBuf;

use anyhow::Context;

use crate::api_key::PresentedKey;

/// The environment variable that may hold the bootstrap admin key itself,
/// for platforms that hand secrets over as variables. Not a flag: a secret
/// on a command line is visible to every user of the machine.
pub const ADMIN_KEY_ENV: &str = "PLAINT_ADMIN_KEY";

/// How callers are authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct AccessSettings {
    /// A file holding the bootstrap admin key (`plaint-ctl keys bootstrap`
    /// makes one): a key with every scope that is not in the log, to create
    /// the first real keys. Alternatively the key itself in the
    /// `PLAINT_ADMIN_KEY` environment variable. Without either, only keys
    /// already in the log (and JWTs, when configured) are accepted.
    #[arg(long, env = "PLAINT_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Let anyone list the services through server reflection (by default it
    /// needs a valid credential, of any scope).
    #[arg(long, env = "PLAINT_REFLECTION_OPEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub reflection_open: bool,
    /// Quotas and concurrency caps per caller and for the whole server.
    #[command(flatten)]
    pub limits: plaint_runtime::limits::CallLimits,
    /// The bootstrap admin key handed over by a program that embeds a
    /// service (tests); never read from flags or the environment.
    #[arg(skip)]
    pub admin_key: Option<KeyText>,
}

/// A whole API key held in memory; its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyText(String);

impl KeyText {
    /// Holds `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The key itself, to hand to a child process's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(..)")
    }
}

impl AccessSettings {
    /// The bootstrap admin key, from its file or the environment.
    pub fn bootstrap_key(&self) -> anyhow::Result<Option<PresentedKey>> {
        let (text, from) = match &self.admin_key_file {
            Some(path) => (
                std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "reading the admin key file (PLAINT_ADMIN_KEY_FILE={})",
                        path.display()
                    )
                })?,
                "PLAINT_ADMIN_KEY_FILE",
            ),
            None => match (&self.admin_key, std::env::var(ADMIN_KEY_ENV)) {
                (Some(KeyText(text)), _) => (text.clone(), "the embedded admin key"),
                (None, Ok(text)) => (text, ADMIN_KEY_ENV),
                (None, Err(_)) => return Ok(None),
            },
        };
        PresentedKey::parse(text.trim()).map(Some).with_context(|| {
            format!(
                "{from} does not hold an API key of the form plaint_<16 characters>_<64 hex digits>"
            )
        })
    }
}
