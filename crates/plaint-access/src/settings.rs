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
    /// Service tokens from the organisation's identity provider.
    #[command(flatten)]
    pub jwt: JwtSettings,
    /// The bootstrap admin key handed over by a program that embeds a
    /// service (tests); never read from flags or the environment.
    #[arg(skip)]
    pub admin_key: Option<KeyText>,
}

/// How service tokens of the organisation's identity provider (JWTs) are
/// checked. Without a JWKS file no JWT is accepted.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct JwtSettings {
    /// A file holding the identity provider's public keys as a JWK set
    /// (JSON, `{"keys": [...]}`). It must be usable at start-up; after that
    /// it is re-read every 10 s, and a change that leaves no usable key is
    /// logged and ignored. Unset (the default): JWTs are not accepted.
    #[arg(long = "jwt-jwks-file", env = "PLAINT_JWT_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,
    /// The issuer (`iss`) a token must name; required with a JWKS file.
    #[arg(long = "jwt-issuer", env = "PLAINT_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// The audience (`aud`) a token must name; required with a JWKS file.
    #[arg(long = "jwt-audience", env = "PLAINT_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// The one signature algorithm accepted, whatever a token's header says.
    /// Only asymmetric ones: a shared secret would let every service that
    /// checks tokens also mint them.
    #[arg(long = "jwt-algorithm", env = "PLAINT_JWT_ALGORITHM", value_enum, default_value_t = JwtAlgorithm::RS256)]
    pub algorithm: JwtAlgorithm,
    /// The claim holding the token's scopes: a space-separated string or an
    /// array of strings. Names that are not plaint scopes are ignored.
    #[arg(long = "jwt-scopes-claim", env = "PLAINT_JWT_SCOPES_CLAIM", default_value = DEFAULT_SCOPES_CLAIM)]
    pub scopes_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[arg(long = "jwt-leeway-secs", env = "PLAINT_JWT_LEEWAY_SECS", default_value_t = DEFAULT_LEEWAY_SECS)]
    pub leeway_secs: u64,
}

const DEFAULT_SCOPES_CLAIM: &str = "scope";
const DEFAULT_LEEWAY_SECS: u64 = 30;

impl Default for JwtSettings {
    /// As documented: JWTs off.
    fn default() -> Self {
        Self {
            jwks_file: None,
            issuer: None,
            audience: None,
            algorithm: JwtAlgorithm::RS256,
            scopes_claim: DEFAULT_SCOPES_CLAIM.to_owned(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// The asymmetric JWT signature algorithms; HMAC ones are not offered.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
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
