//! Access control as a service sets it up: the key ring read from the log
//! before the first call is served, the gate in front of the server, and the
//! task that keeps the ring up to date.

use std::sync::Arc;

use anyhow::Context;
use plaint_bus::{EventLog, RetryPolicy};
use plaint_runtime::gate::Gate;
use plaint_runtime::limits::CallLimits;
use plaint_runtime::tasks::Tasks;

use crate::follow;
use crate::gate::{AccessGate, SharedRing};
use crate::settings::AccessSettings;

/// A service's access control.
#[derive(Debug, Clone)]
pub struct Access {
    ring: SharedRing,
    gate: Arc<AccessGate>,
    limits: CallLimits,
}

impl Access {
    /// Reads the settings' bootstrap key and every key event of `log`.
    pub async fn load(settings: &AccessSettings, log: &EventLog) -> anyhow::Result<Self> {
        let bootstrap = settings.bootstrap_key()?;
        if bootstrap.is_none() {
            tracing::info!("no bootstrap admin key: only keys from the log are accepted");
        }
        let ring = SharedRing::default();
        follow::catch_up(log, &ring)
            .await
            .context("reading the API keys from the log")?;
        let gate = Arc::new(AccessGate::new(
            ring.clone(),
            bootstrap,
            settings.reflection_open,
        ));
        Ok(Self {
            ring,
            gate,
            limits: settings.limits.clone(),
        })
    }

    /// The gate to put in front of the server.
    pub fn gate(&self) -> Arc<dyn Gate> {
        self.gate.clone()
    }

    /// How much each caller, and all of them, may call.
    pub fn limits(&self) -> &CallLimits {
        &self.limits
    }

    /// The keys in force.
    pub fn ring(&self) -> &SharedRing {
        &self.ring
    }

    /// Keeps the keys up to date from `log` while the service runs.
    pub fn follow(&self, tasks: &mut Tasks, log: EventLog, retry: RetryPolicy) {
        let (ring, stop) = (self.ring.clone(), tasks.stop_token());
        tasks.spawn("key follower", follow::follow(log, ring, retry, stop));
    }
}
