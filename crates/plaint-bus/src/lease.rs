//! Leases on NATS's key-value store: one holder at a time for work that
//! several replicas could each do (the projector), taken over by another
//! replica within the lease's time to live when its holder dies.
//!
//! The bucket (`<stream>_LEASES`) keeps one value per lease, written by its
//! holder. Values expire `ttl` after they were written (the bucket's
//! `max_age`, enforced by the server, so no clock of a replica matters); the
//! holder writes again every `ttl / 3`, each time expecting the revision it
//! wrote last, so a replica that lost its lease learns it on its next write.
//! Others try to create the key every [`Lease::poll`]: creation succeeds only
//! once the value is gone (expired, or deleted by a holder that stopped).
//!
//! A lease saves work; it does not make work safe. Between a holder's last
//! renewal and its noticing the loss, it may still act for up to `ttl`, so
//! what it guards must stay correct with two actors (the projections are:
//! their checkpoint serializes batches).

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, Store, UpdateErrorKind};
use async_nats::jetstream::{Context, stream::StorageType};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::error::{BusError, while_doing};
use crate::names::Names;

/// How long a lease outlives its holder's last renewal, unless set.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3);

/// The leases' bucket, opened.
#[derive(Clone)]
pub struct Leases {
    store: Store,
    ttl: Duration,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").field("ttl", &self.ttl).finish()
    }
}

/// A lease this process holds: the revision it wrote last.
#[derive(Debug)]
pub struct Held {
    name: String,
    holder: String,
    revision: u64,
}

impl Held {
    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a renewal found.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Still ours, for another `ttl`.
    Kept,
    /// Another replica holds it now (ours expired).
    Lost,
}

impl Leases {
    /// Opens the bucket, provisioning it with `ttl` when missing. A bucket
    /// made with another `ttl` keeps its own (every replica must agree).
    pub async fn open(
        js: &Context,
        names: &Names,
        replicas: usize,
        ttl: Duration,
    ) -> Result<Self, BusError> {
        let bucket = names.lease_bucket();
        let store = match js.get_key_value(&bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket,
                    description: "which replica does work only one may do".into(),
                    history: 1,
                    max_age: ttl,
                    storage: StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| BusError::JetStream(while_doing("cannot provision the leases", e)))?,
        };
        Ok(Self { store, ttl })
    }

    /// How long a lease outlives its holder's last renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often a holder renews.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// How often a replica without the lease tries to take it: a takeover
    /// comes at most this long after the lease expired.
    pub fn poll(&self) -> Duration {
        (self.ttl / 6).max(Duration::from_millis(100))
    }

    /// Takes lease `name` for `holder` when nobody holds it, or when it is
    /// still `holder`'s own from a previous run; `None` when another holds it.
    /// Holder names must be unique among running replicas.
    pub async fn try_take(&self, name: &str, holder: &str) -> Result<Option<Held>, BusError> {
        match self
            .store
            .create(name, Bytes::copy_from_slice(holder.as_bytes()))
            .await
        {
            Ok(revision) => Ok(Some(Held {
                name: name.to_owned(),
                holder: holder.to_owned(),
                revision,
            })),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                self.take_back(name, holder).await
            }
            Err(e) => Err(BusError::Unavailable(while_doing("cannot take a lease", e))),
        }
    }

    /// A replica restarted under the same name (a container keeps its host
    /// name) takes back the lease its previous run left, instead of waiting
    /// for it to expire.
    async fn take_back(&self, name: &str, holder: &str) -> Result<Option<Held>, BusError> {
        let entry = match self.store.entry(name).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(BusError::Unavailable(while_doing("cannot read a lease", e)));
            }
        };
        if entry.operation != kv::Operation::Put || entry.value.as_ref() != holder.as_bytes() {
            return Ok(None);
        }
        let mut held = Held {
            name: name.to_owned(),
            holder: holder.to_owned(),
            revision: entry.revision,
        };
        Ok(match self.renew(&mut held).await? {
            Renewal::Kept => Some(held),
            Renewal::Lost => None,
        })
    }

    /// Writes `held` again, expecting nobody wrote since; `Lost` when
    /// somebody did (ours had expired and was taken).
    pub async fn renew(&self, held: &mut Held) -> Result<Renewal, BusError> {
        match self
            .store
            .update(
                &held.name,
                Bytes::copy_from_slice(held.holder.as_bytes()),
                held.revision,
            )
            .await
        {
            Ok(revision) => {
                held.revision = revision;
                Ok(Renewal::Kept)
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(Renewal::Lost),
            Err(e) => Err(BusError::Unavailable(while_doing(
                "cannot renew a lease",
                e,
            ))),
        }
    }

    /// Gives `held` up at once, so another replica need not wait for it to
    /// expire; a lease already taken by another is left alone.
    pub async fn release(&self, held: Held) -> Result<(), BusError> {
        match self
            .store
            .delete_expect_revision(&held.name, Some(held.revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(()),
            Err(e) => Err(BusError::Unavailable(while_doing(
                "cannot release a lease",
                e,
            ))),
        }
    }

    /// Who holds lease `name` now, if anyone.
    pub async fn holder(&self, name: &str) -> Result<Option<String>, BusError> {
        match self.store.entry(name).await {
            Ok(Some(entry)) if entry.operation == kv::Operation::Put => {
                Ok(Some(String::from_utf8_lossy(&entry.value).into_owned()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(BusError::Unavailable(while_doing("cannot read a lease", e))),
        }
    }
}

/// Runs `work` whenever this replica holds lease `name` (as `holder`), until
/// `stop` is cancelled; the gauge `plaint_lease_held{lease}` says whether it
/// does. `work` gets a token cancelled when the lease is lost or `stop`
/// comes, and must then end; it is started again at the next takeover.
/// The lease is released as soon as `work` ends, so a replica stopping
/// hands it over at once. `Err` is `work`'s own error (the lease released).
pub async fn run_while_held<E, W, F>(
    leases: &Leases,
    name: &str,
    holder: &str,
    stop: &CancellationToken,
    mut work: W,
) -> Result<(), E>
where
    W: FnMut(CancellationToken) -> F,
    F: Future<Output = Result<(), E>>,
{
    let held_gauge = metrics::gauge!("plaint_lease_held", "lease" => name.to_owned());
    held_gauge.set(0.0);
    while let Some(mut held) = take_when_free(leases, name, holder, stop).await {
        held_gauge.set(1.0);
        tracing::info!(lease = name, "lease taken: this replica does the work");
        let mine = stop.child_token();
        // On the heap: the work's future may be large, and this one would
        // carry it inline.
        let mut running = Box::pin(work(mine.clone()));
        let mut renewed = Instant::now();
        let ended = loop {
            tokio::select! {
                biased;
                result = &mut running => break Some(result),
                () = tokio::time::sleep(leases.renew_every()) => {}
            }
            match leases.renew(&mut held).await {
                Ok(Renewal::Kept) => renewed = Instant::now(),
                Ok(Renewal::Lost) => break None,
                // Until the server could have expired it, it is still ours.
                Err(e) if renewed.elapsed() < leases.ttl() => {
                    tracing::warn!(lease = name, error = %e, "cannot renew the lease; retrying");
                }
                Err(e) => {
                    tracing::warn!(lease = name, error = %e, "cannot renew the lease; giving it up");
                    break None;
                }
            }
        };
        held_gauge.set(0.0);
        let result = match ended {
            Some(result) => result,
            None => {
                tracing::warn!(lease = name, "lease lost: another replica does the work");
                mine.cancel();
                running.await
            }
        };
        if let Err(e) = leases.release(held).await {
            tracing::warn!(lease = name, error = %e, "cannot release the lease; it expires");
        }
        result?;
    }
    Ok(())
}

/// Waits until lease `name` can be taken; `None` once `stop` comes first.
async fn take_when_free(
    leases: &Leases,
    name: &str,
    holder: &str,
    stop: &CancellationToken,
) -> Option<Held> {
    let mut warned = false;
    while !stop.is_cancelled() {
        match leases.try_take(name, holder).await {
            Ok(Some(held)) => return Some(held),
            Ok(None) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(lease = name, error = %e, "cannot take the lease; retrying");
                warned = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(leases.poll()) => {}
        }
    }
    None
}
