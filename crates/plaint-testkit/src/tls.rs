//! Certificates for TLS tests: a local set in a temporary directory.

use std::path::Path;

use plaint_certs::{LocalSet, SetFiles};
use tempfile::TempDir;

/// A CA with a server certificate for localhost, 127.0.0.1 and ::1 and a
/// client certificate, as `plaint-ctl certs init` writes them; deleted on
/// drop.
#[derive(Debug)]
pub struct TlsFiles {
    dir: TempDir,
    /// The files.
    pub files: SetFiles,
}

impl TlsFiles {
    /// A new set under a fresh temporary directory.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("plaint-tls-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let files = LocalSet::new(&[])
            .and_then(|set| set.write(dir.path(), false))
            .unwrap_or_else(|e| panic!("cannot write the test certificates: {e:#}"));
        Self { dir, files }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TlsFiles {
    fn default() -> Self {
        Self::new()
    }
}
