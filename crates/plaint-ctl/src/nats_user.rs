//! `plaint-ctl nats-user`: a NATS user as an nkey pair, for the server
//! configuration in `deploy/nats/`. The seed goes to a file only its owner can
//! read; what is printed (the public key, a configuration stanza) is not secret.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

/// Settings of `plaint-ctl nats-user`.
#[derive(Debug, Clone, Args)]
pub struct NatsUserArgs {
    /// The user's name: a helpdesk integration's (its inbound subject, its
    /// inbox prefix and the source system it speaks for) or a service's.
    pub name: String,
    /// Where the seed is kept: made (mode 0600) when missing, else read, so a
    /// second run prints the same user.
    #[arg(long)]
    pub seed_file: PathBuf,
    /// Subject prefix of the deployment.
    #[arg(long, env = "PLAINT_PREFIX", default_value = "plaint")]
    pub prefix: String,
    /// The event log's stream name (its outbound stream is `<stream>_OUTBOUND`).
    #[arg(long, env = "PLAINT_STREAM", default_value = "COMPLAINTS")]
    pub stream: String,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Print::Stanza)]
    pub print: Print,
}

/// What `plaint-ctl nats-user` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Print {
    /// A helpdesk integration's user entry for `accounts.conf`.
    Stanza,
    /// The public key alone (for `PLAINT_NKEY_<NAME>`).
    PublicKey,
}

/// Runs `plaint-ctl nats-user`.
pub fn run(args: &NatsUserArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let pair = key_pair(&args.seed_file)?;
    let public = pair.public_key();
    match args.print {
        Print::PublicKey => println!("{public}"),
        Print::Stanza => print!(
            "{}",
            stanza(&args.prefix, &args.stream, &args.name, &public)
        ),
    }
    Ok(())
}

/// Names that fit in one subject token and an inbox prefix.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("the name {name:?} must be 1..=64 ASCII letters, digits, '-' or '_'");
    }
    Ok(())
}

/// The pair whose seed is in `path`, made and stored there when missing.
fn key_pair(path: &Path) -> anyhow::Result<nkeys::KeyPair> {
    match std::fs::read_to_string(path) {
        Ok(seed) => nkeys::KeyPair::from_seed(seed.trim())
            .map_err(|e| anyhow::anyhow!("{} holds no nkey user seed: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pair = nkeys::KeyPair::new_user();
            let seed = pair
                .seed()
                .map_err(|e| anyhow::anyhow!("cannot encode the seed: {e}"))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{seed}").with_context(|| format!("cannot write {}", path.display()))?;
            Ok(pair)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The user entry of integration `name` with public key `public`: it
/// publishes to its inbound subject and reads its outbound messages through
/// its own durable consumer on `<stream>_OUTBOUND`, nothing else.
fn stanza(prefix: &str, stream: &str, name: &str, public: &str) -> String {
    format!(
        r#"{{
  nkey: {public}
  permissions: {{
    publish: {{
      allow: [
        "{prefix}.helpdesk.inbound.{name}"
        "$JS.API.CONSUMER.INFO.{stream}_OUTBOUND.{name}"
        "$JS.API.CONSUMER.MSG.NEXT.{stream}_OUTBOUND.{name}"
        "$JS.ACK.{stream}_OUTBOUND.{name}.>"
      ]
    }}
    subscribe: {{ allow: ["_INBOX_{name}.>"] }}
  }}
}}
"#
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme.nk");
        let made = key_pair(&path).unwrap();
        let read = key_pair(&path).unwrap();
        assert_eq!(made.public_key(), read.public_key());
        assert!(made.public_key().starts_with('U'));
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn the_stanza_allows_the_integrations_subject_and_inbox_only() {
        let s = stanza("plaint", "COMPLAINTS", "acme", "UABC");
        assert!(s.contains("nkey: UABC"));
        assert!(s.contains(r#""plaint.helpdesk.inbound.acme""#));
        assert!(s.contains(r#""$JS.API.CONSUMER.MSG.NEXT.COMPLAINTS_OUTBOUND.acme""#));
        assert!(s.contains(r#""$JS.ACK.COMPLAINTS_OUTBOUND.acme.>""#));
        assert!(s.contains(r#"subscribe: { allow: ["_INBOX_acme.>"] }"#));
        assert_eq!(s.matches("$JS.").count(), 3, "nothing else of the API: {s}");
    }

    #[test]
    fn names_that_break_subjects_are_refused() {
        assert!(check_name("acme").is_ok());
        assert!(check_name("a.b").is_err());
        assert!(check_name("a*").is_err());
        assert!(check_name("").is_err());
    }
}
