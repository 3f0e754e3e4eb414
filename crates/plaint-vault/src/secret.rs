//! The master keys and the pseudonym secret, read from secret files.
//!
//! A master-key file holds one key a line, 64 hexadecimal digits each; `#`
//! starts a comment. The first key wraps new data keys; every key in the
//! file unwraps. To rotate: put a new key first, re-wrap the data keys
//! (`plaint-ctl customers rewrap`), then drop the old line.

use std::path::Path;

use data_encoding::HEXLOWER_PERMISSIVE;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::NoRandomness;

/// Bytes of a master key, a data key or the pseudonym secret.
pub const KEY_BYTES: usize = 32;
/// Bytes of an AEAD nonce.
pub(crate) const NONCE_BYTES: usize = 12;
/// Bytes of the AEAD tag.
pub(crate) const TAG_BYTES: usize = 16;

/// Why a secret file cannot be used. Never quotes the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file cannot be read.
    #[error("{setting}: cannot read {path}: {reason}")]
    Unreadable {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
    /// A line is not a key.
    #[error("{setting}: line {line} of {path} is not a key: {expected}")]
    Malformed {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What a key looks like.
        expected: &'static str,
    },
    /// The file holds no key.
    #[error("{setting}: {path} holds no key")]
    Empty {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: String,
    },
}

const KEY_SHAPE: &str = "64 hexadecimal digits (32 bytes)";

/// Reads every key of a secret file, in order.
pub fn read_keys(setting: &'static str, path: &Path) -> Result<Vec<[u8; KEY_BYTES]>, SecretError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SecretError::Unreadable {
        setting,
        path: shown.clone(),
        reason: e.kind().to_string(),
    })?;
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let malformed = || SecretError::Malformed {
            setting,
            path: shown.clone(),
            line: i + 1,
            expected: KEY_SHAPE,
        };
        let bytes = HEXLOWER_PERMISSIVE
            .decode(line.as_bytes())
            .map_err(|_| malformed())?;
        keys.push(<[u8; KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| malformed())?);
    }
    if keys.is_empty() {
        return Err(SecretError::Empty {
            setting,
            path: shown,
        });
    }
    Ok(keys)
}

/// A new random key, as a line for a secret file.
pub fn generate_key_line() -> Result<String, NoRandomness> {
    Ok(HEXLOWER_PERMISSIVE.encode(&crate::random::<KEY_BYTES>()?))
}

fn master_key(raw: &[u8; KEY_BYTES]) -> Option<MasterKey> {
    let digest = ring::digest::digest(&ring::digest::SHA256, raw);
    let id = <[u8; 8]>::try_from(&digest.as_ref()[..8]).ok()?;
    let key = LessSafeKey::new(UnboundKey::new(&aead::CHACHA20_POLY1305, raw).ok()?);
    Some(MasterKey { id, key })
}

/// What [`MasterKeys::wrap`] made: the key's id, the nonce, the ciphertext.
pub(crate) type Wrapped = ([u8; 8], [u8; NONCE_BYTES], Vec<u8>);

/// One master key with its id.
struct MasterKey {
    id: [u8; 8],
    key: LessSafeKey,
}

/// The master keys: the first wraps, all unwrap. Never empty.
pub struct MasterKeys {
    current: MasterKey,
    older: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("ids", &self.ids())
            .finish_non_exhaustive()
    }
}

/// The setting naming the master-key file.
pub const MASTER_KEY_SETTING: &str = "PLAINT_MASTER_KEY_FILE";

impl MasterKeys {
    /// Reads the master keys from their secret file.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        Self::from_keys(&read_keys(MASTER_KEY_SETTING, path)?).ok_or_else(|| SecretError::Empty {
            setting: MASTER_KEY_SETTING,
            path: path.display().to_string(),
        })
    }

    /// The master keys from raw bytes, the first current; `None` for none.
    pub fn from_keys(raw: &[[u8; KEY_BYTES]]) -> Option<Self> {
        let mut keys = raw.iter().map(master_key);
        let current = keys.next()??;
        let older = keys.collect::<Option<Vec<_>>>()?;
        Some(Self { current, older })
    }

    fn all(&self) -> impl Iterator<Item = &MasterKey> {
        std::iter::once(&self.current).chain(&self.older)
    }

    /// The ids of the keys, current first (hex; an id names a key without
    /// revealing it).
    pub fn ids(&self) -> Vec<String> {
        self.all()
            .map(|k| HEXLOWER_PERMISSIVE.encode(&k.id))
            .collect()
    }

    /// Whether a key of id `id` is among these.
    pub(crate) fn holds(&self, id: [u8; 8]) -> bool {
        self.all().any(|k| k.id == id)
    }

    /// The current key's id.
    pub(crate) fn current_id(&self) -> [u8; 8] {
        self.current.id
    }

    /// Encrypts `plain` with the current key; returns its id, the nonce and
    /// the ciphertext.
    pub(crate) fn wrap(&self, plain: &[u8], ad: &[u8]) -> Result<Wrapped, NoRandomness> {
        let nonce = crate::random::<NONCE_BYTES>()?;
        let mut out = plain.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(ad), &mut out)
            .map_err(|_| NoRandomness)?;
        Ok((self.current.id, nonce, out))
    }

    /// Decrypts with the key of id `id`, if this set holds it and the bytes
    /// are authentic.
    pub(crate) fn unwrap(
        &self,
        id: [u8; 8],
        nonce: [u8; NONCE_BYTES],
        sealed: &[u8],
        ad: &[u8],
    ) -> Option<Vec<u8>> {
        let key = self.all().find(|k| k.id == id)?;
        let mut buf = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(ad), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// A key derived from `label`, as a line for a secret file: the same label
/// always gives the same key. For tests and demos only, where the processes
/// of one system must agree on their secrets without sharing a file.
pub fn derived_key_line(label: &str) -> String {
    HEXLOWER_PERMISSIVE
        .encode(ring::digest::digest(&ring::digest::SHA256, label.as_bytes()).as_ref())
}
