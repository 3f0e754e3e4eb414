//! Where the event log is and how its streams are provisioned: the settings
//! both services read from the same flags and environment, and the one way
//! they connect and open the log.

use std::time::Duration;

use crate::connection::NatsAccess;
use crate::data_keys::{KeyStoreError, PersonalDataSettings};
use crate::error::BusError;
use crate::log::{EventLog, StreamSettings};
use crate::names::Names;

/// The event log's settings, shared by both services.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LogSettings {
    /// NATS server URL; several (the nodes of a cluster) separated by commas.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Prefix of every subject; deployments sharing a server use different ones.
    #[arg(long, env = "PLAINT_PREFIX", default_value = "plaint")]
    pub prefix: String,
    /// Name of the event log's stream (the inbound and dead-letter streams derive from it).
    #[arg(long, env = "PLAINT_STREAM", default_value = "COMPLAINTS")]
    pub stream: String,
    /// Stream replicas: 1 for one NATS server, 3 for a cluster.
    #[arg(long, env = "PLAINT_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Deduplication window of the streams, in seconds.
    #[arg(long, env = "PLAINT_DUPLICATE_WINDOW_SECS", default_value_t = 120)]
    pub duplicate_window_secs: u64,
    /// Days a dead letter is kept (its original bytes may hold personal
    /// data); 0 keeps them forever.
    #[arg(long, env = "PLAINT_DEAD_LETTER_RETENTION_DAYS", default_value_t = 30)]
    pub dead_letter_retention_days: u64,
    /// Append what one process writes at the same time as one atomic batch
    /// (one durable write for many events instead of one each; see
    /// README, "Log layout"). False appends every event on its own.
    #[arg(long, env = "PLAINT_GROUP_COMMIT", default_value_t = false, action = clap::ArgAction::Set)]
    pub group_commit: bool,
    /// Unread messages kept for each helpdesk integration per outbound
    /// subject (receipts, updates); past it the oldest unread is discarded
    /// and counted (plaint_outbound_discarded_total).
    #[arg(long, env = "PLAINT_OUTBOUND_KEPT", default_value_t = crate::outbound::DEFAULT_KEPT_PER_SUBJECT)]
    pub outbound_kept: i64,
    /// Days an outbound message is kept, read or not.
    #[arg(long, env = "PLAINT_OUTBOUND_RETENTION_DAYS", default_value_t = 14)]
    pub outbound_retention_days: u64,
    /// Helpdesk integrations that read their outbound messages as protobuf,
    /// separated by commas; the others read JSON.
    #[arg(long, env = "PLAINT_OUTBOUND_PROTOBUF", default_value = "")]
    pub outbound_protobuf: String,
    /// Seconds a message an integration fetched and did not acknowledge
    /// waits before it is delivered again (applies to integrations' consumers
    /// made from then on).
    #[arg(long, env = "PLAINT_OUTBOUND_ACK_WAIT_SECS", default_value_t = 30)]
    pub outbound_ack_wait_secs: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub access: NatsAccess,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub personal: PersonalDataSettings,
}

impl LogSettings {
    /// The defaults, on `nats_url` under `prefix`, with a stream named after
    /// the prefix (so that tests sharing a server stay apart).
    ///
    /// Its secret files are made by [`PersonalDataSettings::for_tests`];
    /// the temporary directory must be writable.
    pub fn for_tests(nats_url: &str, prefix: &str) -> Self {
        let personal = PersonalDataSettings::for_tests(prefix).unwrap_or_else(|e| {
            panic!("cannot write test secrets under the temporary directory: {e}")
        });
        Self {
            nats_url: nats_url.to_owned(),
            prefix: prefix.to_owned(),
            stream: format!("{}_LOG", prefix.to_uppercase()),
            stream_replicas: 1,
            duplicate_window_secs: 120,
            dead_letter_retention_days: 30,
            group_commit: false,
            outbound_kept: crate::outbound::DEFAULT_KEPT_PER_SUBJECT,
            outbound_retention_days: 14,
            outbound_protobuf: String::new(),
            outbound_ack_wait_secs: 30,
            access: NatsAccess::default(),
            personal,
        }
    }

    /// How the streams are provisioned.
    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings {
            replicas: self.stream_replicas,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            dead_letter_max_age: Duration::from_secs(
                self.dead_letter_retention_days.saturating_mul(24 * 3600),
            ),
            group_commit: self.group_commit,
            ..StreamSettings::default()
        }
    }
}

impl LogSettings {
    /// How the outbound stream is provisioned and who reads protobuf.
    pub fn outbound_settings(&self) -> crate::outbound::OutboundSettings {
        crate::outbound::OutboundSettings {
            kept_per_subject: self.outbound_kept.max(1),
            max_age: Duration::from_secs(self.outbound_retention_days.saturating_mul(24 * 3600)),
            protobuf: self
                .outbound_protobuf
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
            reader_ack_wait: Duration::from_secs(self.outbound_ack_wait_secs.max(1)),
        }
    }
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The prefix or stream name cannot be part of a subject.
    #[error("{0}")]
    Names(String),
    /// NATS did not answer.
    #[error("connecting to NATS: {0}")]
    Connect(#[source] BusError),
    /// The stream could not be provisioned.
    #[error("provisioning the event log: {0}")]
    Provision(#[source] BusError),
    /// The stream holds a log in the first layout (a complaint's events on
    /// one subject), which this release cannot read correctly.
    #[error(
        "stream {stream} holds the event log in its first layout ({subject}: all of a \
         complaint's events on one subject); this release needs the second layout (one \
         subject per event kind). Point PLAINT_STREAM at a new stream, or replay the old \
         log into one (README, \"Log layout\")"
    )]
    FirstLayout {
        /// The stream's name.
        stream: String,
        /// The first layout's complaint subject it lists.
        subject: String,
    },
    /// The data keys cannot be used: a secret file is missing or wrong, or
    /// their bucket cannot be provisioned.
    #[error("customers' data keys: {0}")]
    Keys(#[source] KeyStoreError),
}

/// Connects as `client_name` and opens (provisioning when needed) the log.
pub async fn open(
    settings: &LogSettings,
    client_name: &str,
) -> Result<(crate::Client, EventLog), OpenError> {
    let names = Names::new(&settings.prefix, &settings.stream).map_err(OpenError::Names)?;
    let client = crate::connect_with(&settings.nats_url, &settings.access, client_name)
        .await
        .map_err(OpenError::Connect)?;
    let log = EventLog::open(
        client.clone(),
        names,
        &settings.stream_settings(),
        &settings.personal,
    )
    .await?;
    Ok((client, log))
}
