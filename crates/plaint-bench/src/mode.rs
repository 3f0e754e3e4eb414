//! The two ways the bench runs NATS: with an fsync after every write, as
//! production does, and with NATS's default (an fsync every two minutes).
//! The same system behaves very differently on the two, so each mode has its
//! own server, calibration, figures and targets.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;

/// How the bench's nats-server syncs its store to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `jetstream { sync_interval: always }`: every write is on disk before
    /// it is acknowledged. What production runs.
    Durable,
    /// NATS's default: the store is synced every two minutes.
    Fast,
}

/// The `--fsync` flag: which modes to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FsyncArg {
    /// Durable, then fast.
    #[default]
    Both,
    /// Only with an fsync after every write.
    Durable,
    /// Only with NATS's default fsync.
    Fast,
}

impl FsyncArg {
    /// The modes to run, in order.
    pub fn modes(self) -> &'static [Mode] {
        match self {
            Self::Both => &[Mode::Durable, Mode::Fast],
            Self::Durable => &[Mode::Durable],
            Self::Fast => &[Mode::Fast],
        }
    }
}

/// The open-loop phase's offered rate, in a mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OpenRate {
    /// A share of R_pub (durable: as before this mode existed).
    OfRPub(f64),
    /// A share of the end-to-end rate the same run measured (fast: a load
    /// the system is known to carry, so the latency is not a queue's).
    OfE2e(f64),
}

impl OpenRate {
    /// The rate to offer, before the profile's cap.
    pub(crate) fn rate(self, r_pub: f64, e2e: f64) -> f64 {
        match self {
            Self::OfRPub(share) => share * r_pub,
            Self::OfE2e(share) => share * e2e,
        }
    }

    /// How the table names it, e.g. `0.7×e2e`.
    pub(crate) fn label(self) -> String {
        match self {
            Self::OfRPub(share) => format!("{share}×R_pub"),
            Self::OfE2e(share) => format!("{share}×e2e"),
        }
    }

    /// Its key in the JSON, e.g. `visible_at_0_7_e2e`.
    pub(crate) fn json_key(self) -> String {
        let (share, base) = match self {
            Self::OfRPub(share) => (share, "r_pub"),
            Self::OfE2e(share) => (share, "e2e"),
        };
        format!(
            "visible_at_{}_{base}",
            share.to_string().replace(['.', '-'], "_")
        )
    }
}

impl Mode {
    /// Its name on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Durable => "durable",
            Self::Fast => "fast",
        }
    }

    /// What the nats-server of this mode runs with, for the table.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Durable => "nats-server with jetstream { sync_interval: always } (production)",
            Self::Fast => "nats-server with NATS's default fsync (every 2 minutes)",
        }
    }

    /// The nats-server `sync_interval` of this mode, for the JSON.
    pub(crate) fn sync_interval(self) -> &'static str {
        match self {
            Self::Durable => "always",
            Self::Fast => "default (2m)",
        }
    }

    /// The offered rate of the open-loop latency phase.
    pub(crate) fn open_rate(self) -> OpenRate {
        match self {
            Self::Durable => OpenRate::OfRPub(0.03),
            Self::Fast => OpenRate::OfE2e(0.7),
        }
    }

    /// Writes the configuration file the mode's nats-server needs into
    /// `dir`, if any: the command-line flags cannot set `sync_interval`.
    pub(crate) fn write_nats_config(self, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        match self {
            Self::Fast => Ok(None),
            Self::Durable => {
                let path = dir.join("nats-server.conf");
                std::fs::write(&path, "jetstream {\n  sync_interval: always\n}\n")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(Some(path))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_rate_keys_name_the_share() {
        assert_eq!(OpenRate::OfE2e(0.7).json_key(), "visible_at_0_7_e2e");
        assert_eq!(OpenRate::OfRPub(0.03).json_key(), "visible_at_0_03_r_pub");
        assert_eq!(OpenRate::OfE2e(0.7).label(), "0.7×e2e");
        assert!((OpenRate::OfE2e(0.7).rate(1e6, 100.0) - 70.0).abs() < 1e-9);
    }

    #[test]
    fn both_runs_durable_first() {
        assert_eq!(FsyncArg::Both.modes(), &[Mode::Durable, Mode::Fast]);
        assert_eq!(FsyncArg::default(), FsyncArg::Both);
    }
}
