//! Customers' data keys, in a JetStream key-value bucket next to the log.
//!
//! The bucket (`<stream>_KEYS`) has the log's replicas and file storage, so
//! it fails and recovers with the log; each customer has at most one key,
//! under their pseudonym, wrapped by the current master key. A key is
//! stored (and acknowledged) before the first event sealed with it is
//! appended, so nothing unreadable is ever stored. Erasure purges the
//! customer's entry, history included; the marker it leaves tells an erased
//! customer from one never seen.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::Context;
use async_nats::jetstream::kv::{self, Operation, Store};
use async_nats::jetstream::stream::StorageType;
use bytes::Bytes;
use futures::StreamExt;
use plaint_domain::values::CustomerRef;
use plaint_vault::data_key::UnwrapError;
use plaint_vault::{DataKey, MasterKeys, Pseudonyms, SecretError, WrappedKey};

use crate::error::{BusError, while_doing};
use crate::names::Names;

/// Unwrapped keys kept for reading; a reader follows erasures from the log
/// and forgets the key of an erased customer.
const CACHED_KEYS: usize = 10_000;
/// The entry that proves the master key file matches the stored keys.
const CHECK_KEY: &str = "master-key-check";
/// Concurrent reads of the bucket while re-wrapping.
const REWRAP_CONCURRENCY: usize = 16;

/// Where the master keys and the pseudonym secret are.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PersonalDataSettings {
    /// File of master keys (64 hex digits a line, current first) that wrap
    /// customers' data keys.
    #[arg(long = "master-key-file", env = "PLAINT_MASTER_KEY_FILE")]
    pub master_key_file: PathBuf,
    /// File holding the secret (64 hex digits) of customers' pseudonyms.
    #[arg(long = "pseudonym-secret-file", env = "PLAINT_PSEUDONYM_SECRET_FILE")]
    pub pseudonym_secret_file: PathBuf,
}

impl PersonalDataSettings {
    /// Secret files for a test system under `prefix`, written once under
    /// the temporary directory: every process of that system derives the
    /// same keys from the prefix, so they agree without sharing anything.
    pub fn for_tests(prefix: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir()
            .join("plaint-test-secrets")
            .join(prefix);
        std::fs::create_dir_all(&dir)?;
        let write = |name: &str, label: &str| -> std::io::Result<PathBuf> {
            let path = dir.join(name);
            if !path.exists() {
                // Written aside and renamed, so a concurrent reader never
                // sees half a file; every writer writes the same bytes.
                let line = plaint_vault::secret::derived_key_line(&format!("{label}:{prefix}"));
                let aside = dir.join(format!("{name}.{}", std::process::id()));
                std::fs::write(&aside, format!("{line}\n"))?;
                std::fs::rename(&aside, &path)?;
            }
            Ok(path)
        };
        Ok(Self {
            master_key_file: write("master.key", "plaint test master key")?,
            pseudonym_secret_file: write("pseudonym.key", "plaint test pseudonym secret")?,
        })
    }
}

/// Why the data keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// A secret file is missing or malformed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The master keys do not match the stored data keys.
    #[error("{0}")]
    WrongMaster(UnwrapError),
    /// A stored key is damaged or cannot be unwrapped.
    #[error("the data key of customer {customer}: {source}")]
    Key {
        /// Whose.
        customer: String,
        /// Why.
        #[source]
        source: UnwrapError,
    },
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// No randomness for a new key.
    #[error("the system's random source failed")]
    NoRandomness,
}

impl KeyStoreError {
    /// As the bus reports it: NATS failures as they are, anything else as
    /// personal data that could not be sealed or opened.
    pub(crate) fn into_bus(self) -> BusError {
        match self {
            KeyStoreError::Bus(b) => b,
            other => BusError::Sealing(other.to_string()),
        }
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erasure {
    /// The key was there and is gone now.
    Erased,
    /// It was erased before and nothing has been stored for it since.
    AlreadyErased,
    /// The system never held a key for this customer.
    NeverSeen,
}

/// What a re-wrap did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Keys now wrapped by the current master key that were not before.
    pub rewrapped: u64,
    /// Keys already wrapped by it.
    pub current: u64,
}

/// The data keys: get, create, erase, re-wrap.
#[derive(Clone)]
pub struct DataKeys {
    client: async_nats::Client,
    store: Store,
    master: Arc<MasterKeys>,
    pseudonyms: Arc<Pseudonyms>,
    cache: Arc<Mutex<lru::LruCache<CustomerRef, Arc<DataKey>>>>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeys")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl DataKeys {
    /// Reads the secrets, opens (provisioning when needed) the bucket, and
    /// checks that the master keys open what it holds.
    pub async fn open(
        js: &Context,
        names: &Names,
        replicas: usize,
        settings: &PersonalDataSettings,
    ) -> Result<Self, KeyStoreError> {
        let master = MasterKeys::from_file(&settings.master_key_file)?;
        let pseudonyms = Pseudonyms::from_file(&settings.pseudonym_secret_file)?;
        let bucket = names.data_key_bucket();
        let store = match js.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket,
                    description: "customers' data keys, wrapped by the master key".into(),
                    history: 1,
                    storage: StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    BusError::JetStream(while_doing("cannot provision the data keys", e))
                })?,
        };
        let keys = Self {
            client: js.client(),
            store,
            master: Arc::new(master),
            pseudonyms: Arc::new(pseudonyms),
            cache: Arc::new(Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(CACHED_KEYS).unwrap_or(NonZeroUsize::MIN),
            ))),
        };
        keys.check_master().await?;
        Ok(keys)
    }

    /// The pseudonyms customers are known by.
    pub fn pseudonyms(&self) -> &Pseudonyms {
        &self.pseudonyms
    }

    /// The id of the master key new data keys are wrapped by.
    pub fn master_key_id(&self) -> String {
        self.master.ids().into_iter().next().unwrap_or_default()
    }

    /// The same, to keep.
    pub fn shared_pseudonyms(&self) -> Arc<Pseudonyms> {
        Arc::clone(&self.pseudonyms)
    }

    /// Proves the master keys match the bucket: the first service to start
    /// leaves a key wrapped by its master key; every later start must open it.
    async fn check_master(&self) -> Result<(), KeyStoreError> {
        let check = check_ref();
        for _ in 0..3 {
            if let Some(bytes) = self.entry(CHECK_KEY).await? {
                let wrapped = WrappedKey::from_bytes(&bytes).map_err(KeyStoreError::WrongMaster)?;
                wrapped
                    .unwrap(&check, &self.master)
                    .map_err(KeyStoreError::WrongMaster)?;
                return Ok(());
            }
            let (_, wrapped) =
                DataKey::generate(&check, &self.master).map_err(|_| KeyStoreError::NoRandomness)?;
            match self
                .store
                .create(CHECK_KEY, Bytes::from(wrapped.to_bytes()))
                .await
            {
                Ok(_) => return Ok(()),
                // Another process wrote one first: that one is checked.
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(BusError::Unavailable(while_doing(
                        "cannot store the master key check",
                        e,
                    ))
                    .into());
                }
            }
        }
        Err(BusError::Unavailable(while_doing(
            "cannot store the master key check",
            "it changed under every attempt",
        ))
        .into())
    }

    /// Fails at once while the connection is down: a request would only
    /// wait out its timeout, and the caller (a write being answered) must
    /// hear UNAVAILABLE promptly.
    fn connected(&self) -> Result<(), BusError> {
        if self.client.connection_state() == async_nats::connection::State::Connected {
            Ok(())
        } else {
            Err(BusError::Unavailable(while_doing(
                "cannot reach the data keys",
                "not connected to NATS",
            )))
        }
    }

    async fn entry(&self, key: &str) -> Result<Option<Bytes>, BusError> {
        self.connected()?;
        self.store
            .get(key)
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot read a data key", e)))
    }

    /// The customer's current data key, read from the bucket (never from the
    /// cache: sealing with a key erased meanwhile would store data nobody
    /// can read).
    pub async fn current(
        &self,
        customer: &CustomerRef,
    ) -> Result<Option<Arc<DataKey>>, KeyStoreError> {
        let Some(bytes) = self.entry(customer.as_str()).await? else {
            return Ok(None);
        };
        let key = Arc::new(self.unwrap(customer, &bytes)?);
        self.remember(customer, &key);
        Ok(Some(key))
    }

    /// The customer's key for reading: from the cache when there.
    pub async fn for_reading(
        &self,
        customer: &CustomerRef,
    ) -> Result<Option<Arc<DataKey>>, KeyStoreError> {
        if let Some(key) = self.cached(customer) {
            return Ok(Some(key));
        }
        self.current(customer).await
    }

    /// The customer's current key, created and stored first when they have
    /// none (never seen, or erased).
    pub async fn current_or_new(
        &self,
        customer: &CustomerRef,
    ) -> Result<Arc<DataKey>, KeyStoreError> {
        for _ in 0..3 {
            if let Some(key) = self.current(customer).await? {
                return Ok(key);
            }
            let (key, wrapped) = DataKey::generate(customer, &self.master)
                .map_err(|_| KeyStoreError::NoRandomness)?;
            match self
                .store
                .create(customer.as_str(), Bytes::from(wrapped.to_bytes()))
                .await
            {
                Ok(_) => {
                    let key = Arc::new(key);
                    self.remember(customer, &key);
                    return Ok(key);
                }
                // Another writer created it first: use theirs.
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(
                        BusError::Unavailable(while_doing("cannot store a data key", e)).into(),
                    );
                }
            }
        }
        Err(BusError::Unavailable(while_doing(
            "cannot store a data key",
            "the key changed under every attempt",
        ))
        .into())
    }

    /// Deletes the customer's key and its history from the bucket.
    pub async fn erase(&self, customer: &CustomerRef) -> Result<Erasure, KeyStoreError> {
        self.connected()?;
        let entry = self
            .store
            .entry(customer.as_str())
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot read a data key", e)))?;
        let erasure = match entry.map(|e| e.operation) {
            None => Erasure::NeverSeen,
            Some(Operation::Delete | Operation::Purge) => Erasure::AlreadyErased,
            Some(Operation::Put) => {
                self.store.purge(customer.as_str()).await.map_err(|e| {
                    BusError::Unavailable(while_doing("cannot erase a data key", e))
                })?;
                Erasure::Erased
            }
        };
        // After the purge, so that no read in between puts the key back.
        self.forget(customer);
        Ok(erasure)
    }

    /// Drops a cached key (its customer was erased).
    pub fn forget(&self, customer: &CustomerRef) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.pop(customer);
        }
    }

    /// Wraps every stored key with the current master key; keys it wraps
    /// already are left alone. Safe to run again after an interruption.
    pub async fn rewrap_all(&self) -> Result<Rewrapped, KeyStoreError> {
        let keys = self
            .store
            .keys()
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot list the data keys", e)))?;
        let results = keys
            .map(|name| async move {
                let name = name.map_err(|e| {
                    BusError::Unavailable(while_doing("cannot list the data keys", e))
                })?;
                self.rewrap_one(&name).await
            })
            .buffer_unordered(REWRAP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut report = Rewrapped::default();
        for r in results {
            if r? {
                report.rewrapped += 1;
            } else {
                report.current += 1;
            }
        }
        Ok(report)
    }

    /// Re-wraps one entry; `true` when it changed.
    async fn rewrap_one(&self, name: &str) -> Result<bool, KeyStoreError> {
        let customer = if name == CHECK_KEY {
            check_ref()
        } else {
            match CustomerRef::parse(name) {
                Ok(c) => c,
                Err(_) => return Ok(false),
            }
        };
        let Some(entry) = self
            .store
            .entry(name)
            .await
            .map_err(|e| BusError::Unavailable(while_doing("cannot read a data key", e)))?
        else {
            return Ok(false);
        };
        if entry.operation != Operation::Put {
            return Ok(false);
        }
        let wrapped =
            WrappedKey::from_bytes(&entry.value).map_err(|source| KeyStoreError::Key {
                customer: name.to_owned(),
                source,
            })?;
        if wrapped.is_current(&self.master) {
            return Ok(false);
        }
        let fresh = wrapped
            .rewrap(&customer, &self.master)
            .map_err(|e| match e {
                plaint_vault::data_key::RewrapError::Unwrap(source) => KeyStoreError::Key {
                    customer: name.to_owned(),
                    source,
                },
                plaint_vault::data_key::RewrapError::Random(_) => KeyStoreError::NoRandomness,
            })?;
        // Only if nobody erased or replaced it meanwhile.
        match self
            .store
            .update(name, Bytes::from(fresh.to_bytes()), entry.revision)
            .await
        {
            Ok(_) => Ok(true),
            Err(_) => Ok(false),
        }
    }

    fn unwrap(&self, customer: &CustomerRef, bytes: &[u8]) -> Result<DataKey, KeyStoreError> {
        WrappedKey::from_bytes(bytes)
            .and_then(|w| w.unwrap(customer, &self.master))
            .map_err(|source| KeyStoreError::Key {
                customer: customer.to_string(),
                source,
            })
    }

    fn cached(&self, customer: &CustomerRef) -> Option<Arc<DataKey>> {
        self.cache.lock().ok()?.get(customer).cloned()
    }

    fn remember(&self, customer: &CustomerRef, key: &Arc<DataKey>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.put(customer.clone(), Arc::clone(key));
        }
    }
}

/// The pseudonym the master-key check is stored for: no customer's (all
/// zeros is not the HMAC of anything anyone can name).
fn check_ref() -> CustomerRef {
    CustomerRef::from_digest(&[0; 16])
}
