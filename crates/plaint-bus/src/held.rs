//! Deliveries this process is still working on stay its own.
//!
//! Consumers run with a short ack wait, so that what a crashed process held
//! is redelivered to another within seconds. A delivery that is merely slow
//! (queued behind others of its complaint, or waiting on a slow database)
//! must not be redelivered meanwhile: while a [`Delivery`](crate::Delivery)
//! is alive and unacked, a keeper tells the server it is in progress
//! (`+WPI`), which restarts its ack wait. A delivery held past
//! [`MAX_HOLD`] is let go: the server redelivers it, and handlers are
//! idempotent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use tokio::time::Instant;

/// Longest a delivery is kept from redelivery by progress acks.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(120);

/// Deliveries held by one flow, by a key of their own.
#[derive(Default)]
struct Entries {
    next_key: u64,
    by_key: HashMap<u64, Entry>,
}

struct Entry {
    reply: Subject,
    since: Instant,
    last_word: Instant,
}

/// The deliveries of one flow still held by this process.
pub(crate) struct Held {
    entries: Arc<Mutex<Entries>>,
}

/// One held delivery; dropping it lets go.
#[derive(Debug)]
pub(crate) struct Ticket {
    entries: Weak<Mutex<Entries>>,
    key: u64,
}

impl Held {
    /// Starts the keeper of a flow whose consumer waits `ack_wait` for acks;
    /// it ends once the flow and all its deliveries are dropped.
    pub(crate) fn keep(client: async_nats::Client, ack_wait: Duration) -> Self {
        let entries = Arc::new(Mutex::new(Entries::default()));
        // Three words per ack wait: one lost or late still leaves two.
        let period = (ack_wait / 3).max(Duration::from_millis(100));
        tokio::spawn(keeper(Arc::downgrade(&entries), client, period));
        Self { entries }
    }

    /// Holds a delivery that answers on `reply` until the ticket is dropped.
    pub(crate) fn hold(&self, reply: Subject) -> Ticket {
        let now = Instant::now();
        let key = match self.entries.lock() {
            Ok(mut e) => {
                let key = e.next_key;
                e.next_key = e.next_key.wrapping_add(1);
                e.by_key.insert(
                    key,
                    Entry {
                        reply,
                        since: now,
                        last_word: now,
                    },
                );
                key
            }
            // A keeper that panicked holding the lock: deliveries are no
            // longer kept, the ack wait alone applies.
            Err(_) => u64::MAX,
        };
        Ticket {
            entries: Arc::downgrade(&self.entries),
            key,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(entries) = self.entries.upgrade()
            && let Ok(mut e) = entries.lock()
        {
            e.by_key.remove(&self.key);
        }
    }
}

async fn keeper(entries: Weak<Mutex<Entries>>, client: async_nats::Client, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(entries) = entries.upgrade() else {
            return;
        };
        let due = due_for_a_word(&entries, Instant::now(), period);
        drop(entries);
        for reply in due {
            // A lost word means at worst a redelivery, which handlers absorb.
            if let Err(e) = client.publish(reply, Bytes::from_static(b"+WPI")).await {
                tracing::debug!(error = %e, "progress ack not sent");
            }
        }
    }
}

/// The replies of deliveries held for `period` since their last word and
/// for less than [`MAX_HOLD`] in all; those past it are forgotten.
fn due_for_a_word(entries: &Mutex<Entries>, now: Instant, period: Duration) -> Vec<Subject> {
    let Ok(mut e) = entries.lock() else {
        return Vec::new();
    };
    e.by_key
        .retain(|_, entry| now.duration_since(entry.since) < MAX_HOLD);
    e.by_key
        .values_mut()
        .filter(|entry| now.duration_since(entry.last_word) >= period)
        .map(|entry| {
            entry.last_word = now;
            entry.reply.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Arc<Mutex<Entries>> {
        Arc::new(Mutex::new(Entries::default()))
    }

    fn held(entries: &Arc<Mutex<Entries>>) -> Held {
        Held {
            entries: entries.clone(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_gets_a_word_once_per_period_while_held() {
        let e = entries();
        let period = Duration::from_secs(1);
        let ticket = held(&e).hold(Subject::from_static("$JS.ACK.a"));
        assert!(due_for_a_word(&e, Instant::now(), period).is_empty());
        tokio::time::advance(period).await;
        assert_eq!(due_for_a_word(&e, Instant::now(), period).len(), 1);
        assert!(due_for_a_word(&e, Instant::now(), period).is_empty());
        tokio::time::advance(period).await;
        assert_eq!(due_for_a_word(&e, Instant::now(), period).len(), 1);
        drop(ticket);
        tokio::time::advance(period).await;
        assert!(due_for_a_word(&e, Instant::now(), period).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_held_too_long_is_let_go() {
        let e = entries();
        let period = Duration::from_secs(1);
        let _ticket = held(&e).hold(Subject::from_static("$JS.ACK.b"));
        tokio::time::advance(MAX_HOLD).await;
        assert!(due_for_a_word(&e, Instant::now(), period).is_empty());
        assert!(e.lock().map(|e| e.by_key.is_empty()).unwrap_or(false));
    }
}
