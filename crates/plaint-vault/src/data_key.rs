//! A customer's data key, and the form it is stored in: wrapped (encrypted)
//! by a master key, bound to the customer and its own id.

use std::fmt;

use plaint_domain::values::CustomerRef;
use ring::aead::{self, LessSafeKey, UnboundKey};

use crate::NoRandomness;
use crate::secret::{KEY_BYTES, MasterKeys, NONCE_BYTES, TAG_BYTES};

/// Which of a customer's data keys: each erasure ends one, and the next
/// complaint from that customer starts another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(uuid::Uuid);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

/// A customer's data key, ready to seal and open.
pub struct DataKey {
    id: KeyId,
    pub(crate) key: LessSafeKey,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// Its id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A new key for `customer`, and its wrapped form to store.
    pub fn generate(
        customer: &CustomerRef,
        master: &MasterKeys,
    ) -> Result<(DataKey, WrappedKey), NoRandomness> {
        let raw = crate::random::<KEY_BYTES>()?;
        let id = KeyId(uuid::Uuid::from_bytes(crate::random::<16>()?));
        let wrapped = WrappedKey::wrap(customer, id, &raw, master)?;
        Ok((DataKey::from_raw(id, &raw)?, wrapped))
    }

    fn from_raw(id: KeyId, raw: &[u8; KEY_BYTES]) -> Result<Self, NoRandomness> {
        let key = UnboundKey::new(&aead::CHACHA20_POLY1305, raw).map_err(|_| NoRandomness)?;
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }
}

const MAGIC: &[u8; 3] = b"PK1";
const WRAPPED_LEN: usize = MAGIC.len() + 16 + 8 + NONCE_BYTES + KEY_BYTES + TAG_BYTES;

/// A data key as stored: encrypted by a master key.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    id: KeyId,
    master_id: [u8; 8],
    nonce: [u8; NONCE_BYTES],
    sealed: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("id", &self.id)
            .field("master_id", &self.master_id())
            .finish_non_exhaustive()
    }
}

/// Why a stored key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    /// The bytes are not a wrapped key.
    #[error("a stored data key is damaged")]
    Damaged,
    /// It was wrapped by a master key the service was not given.
    #[error(
        "a data key is wrapped by master key {0}, which is not in PLAINT_MASTER_KEY_FILE: \
         the file is wrong or lost"
    )]
    UnknownMaster(String),
    /// The master key of that id does not open it: it was altered, or is
    /// another customer's.
    #[error("a stored data key does not open with its master key: it was altered or moved")]
    Forged,
}

impl WrappedKey {
    fn wrap(
        customer: &CustomerRef,
        id: KeyId,
        raw: &[u8; KEY_BYTES],
        master: &MasterKeys,
    ) -> Result<Self, NoRandomness> {
        let (master_id, nonce, sealed) = master.wrap(raw, &associated(customer, id))?;
        Ok(Self {
            id,
            master_id,
            nonce,
            sealed,
        })
    }

    /// The data key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The id of the master key that wraps it (hex).
    pub fn master_id(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.master_id)
    }

    /// Whether the current master key wraps it already.
    pub fn is_current(&self, master: &MasterKeys) -> bool {
        self.master_id == master.current_id()
    }

    fn raw(
        &self,
        customer: &CustomerRef,
        master: &MasterKeys,
    ) -> Result<[u8; KEY_BYTES], UnwrapError> {
        if !master.holds(self.master_id) {
            return Err(UnwrapError::UnknownMaster(self.master_id()));
        }
        let plain = master
            .unwrap(
                self.master_id,
                self.nonce,
                &self.sealed,
                &associated(customer, self.id),
            )
            .ok_or(UnwrapError::Forged)?;
        <[u8; KEY_BYTES]>::try_from(plain.as_slice()).map_err(|_| UnwrapError::Damaged)
    }

    /// The data key, for `customer`.
    pub fn unwrap(
        &self,
        customer: &CustomerRef,
        master: &MasterKeys,
    ) -> Result<DataKey, UnwrapError> {
        DataKey::from_raw(self.id, &self.raw(customer, master)?).map_err(|_| UnwrapError::Damaged)
    }

    /// The same data key wrapped by the current master key.
    pub fn rewrap(
        &self,
        customer: &CustomerRef,
        master: &MasterKeys,
    ) -> Result<WrappedKey, RewrapError> {
        let raw = self.raw(customer, master)?;
        Ok(WrappedKey::wrap(customer, self.id, &raw, master)?)
    }

    /// Its stored bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(self.id.0.as_bytes());
        out.extend_from_slice(&self.master_id);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Reads stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, UnwrapError> {
        if bytes.len() != WRAPPED_LEN || !bytes.starts_with(MAGIC) {
            return Err(UnwrapError::Damaged);
        }
        let rest = &bytes[MAGIC.len()..];
        let (id, rest) = rest.split_at(16);
        let (master_id, rest) = rest.split_at(8);
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let id = uuid::Uuid::from_slice(id).map_err(|_| UnwrapError::Damaged)?;
        Ok(Self {
            id: KeyId(id),
            master_id: master_id.try_into().map_err(|_| UnwrapError::Damaged)?,
            nonce: nonce.try_into().map_err(|_| UnwrapError::Damaged)?,
            sealed: sealed.to_vec(),
        })
    }
}

/// Why a key could not be re-wrapped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RewrapError {
    /// It cannot be unwrapped.
    #[error(transparent)]
    Unwrap(#[from] UnwrapError),
    /// No randomness for the new nonce.
    #[error(transparent)]
    Random(#[from] NoRandomness),
}

/// Binds a wrapped key to its customer and id: a stored key moved to another
/// customer does not open.
fn associated(customer: &CustomerRef, id: KeyId) -> Vec<u8> {
    let mut ad = b"plaint data key\0".to_vec();
    ad.extend_from_slice(customer.as_str().as_bytes());
    ad.push(0);
    ad.extend_from_slice(id.0.as_bytes());
    ad
}
