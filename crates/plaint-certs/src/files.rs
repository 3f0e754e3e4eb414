//! Writing a local set (CA, server, client) into a directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::{Authority, Issued};

/// The names the server certificate always covers: what a client on the same
/// machine dials.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The files of a local set, in the directory given to [`LocalSet::paths`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFiles {
    /// The CA certificate: what servers and clients trust.
    pub ca_cert: PathBuf,
    /// The CA key: needed only to issue more certificates.
    pub ca_key: PathBuf,
    /// The server certificate.
    pub server_cert: PathBuf,
    /// The server key.
    pub server_key: PathBuf,
    /// The client certificate, for mutual TLS.
    pub client_cert: PathBuf,
    /// The client key.
    pub client_key: PathBuf,
}

impl SetFiles {
    fn all(&self) -> [(&Path, bool); 6] {
        [
            (&self.ca_cert, false),
            (&self.ca_key, true),
            (&self.server_cert, false),
            (&self.server_key, true),
            (&self.client_cert, false),
            (&self.client_key, true),
        ]
    }
}

/// A CA with one server and one client certificate.
#[derive(Debug)]
pub struct LocalSet {
    /// The CA.
    pub ca: Authority,
    /// The server certificate.
    pub server: Issued,
    /// The client certificate.
    pub client: Issued,
}

impl LocalSet {
    /// A new set: the server certificate names localhost, 127.0.0.1 and ::1,
    /// then `extra_names` (DNS names or IP addresses, such as the compose
    /// services' names).
    pub fn new(extra_names: &[String]) -> anyhow::Result<Self> {
        let ca = Authority::new("plaint local CA")?;
        let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|n| (*n).to_owned()).collect();
        for name in extra_names {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let server = ca.server(&names)?;
        let client = ca.client("plaint client")?;
        Ok(Self { ca, server, client })
    }

    /// Where a set lives in `dir`: `ca.pem`, `ca.key`, `server.pem`,
    /// `server.key`, `client.pem`, `client.key`.
    pub fn paths(dir: &Path) -> SetFiles {
        SetFiles {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }

    /// Writes the set into `dir` (created if missing); keys readable by
    /// their owner only. Refuses when any of the files exists, unless
    /// `force`: replacing a CA invalidates every certificate it signed.
    pub fn write(&self, dir: &Path, force: bool) -> anyhow::Result<SetFiles> {
        let files = Self::paths(dir);
        if !force {
            let existing: Vec<String> = files
                .all()
                .iter()
                .filter(|(p, _)| p.exists())
                .map(|(p, _)| p.display().to_string())
                .collect();
            if !existing.is_empty() {
                bail!(
                    "{} already exist(s); pass --force to replace the whole set",
                    existing.join(", ")
                );
            }
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let contents = [
            &self.ca.issued().cert_pem,
            self.ca.issued().key_pem(),
            &self.server.cert_pem,
            self.server.key_pem(),
            &self.client.cert_pem,
            self.client.key_pem(),
        ];
        for ((path, secret), text) in files.all().into_iter().zip(contents) {
            write_file(path, text, secret)?;
        }
        Ok(files)
    }
}

fn write_file(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mode = if secret { 0o600 } else { 0o644 };
        options.mode(mode);
        // An existing file keeps its mode through open: set it first, so a
        // key is never readable by others, not even for a moment.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_six_files_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let set = LocalSet::new(&["intake".to_owned()]).unwrap();
        let files = set.write(dir.path(), false).unwrap();
        for (path, secret) in files.all() {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{}", path.display());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, if secret { 0o600 } else { 0o644 });
            }
        }
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        LocalSet::new(&[])
            .unwrap()
            .write(dir.path(), false)
            .unwrap();
        let before = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        let err = LocalSet::new(&[])
            .unwrap()
            .write(dir.path(), false)
            .unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
            before
        );
        LocalSet::new(&[]).unwrap().write(dir.path(), true).unwrap();
        assert_ne!(
            std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
            before
        );
    }
}
