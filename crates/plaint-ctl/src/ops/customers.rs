//! `plaint-ctl customers`: erase a customer's personal data, export it, and
//! re-wrap the data keys after a master key rotation.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use plaint_proto::router::{
    Consistency, EraseCustomerRequest, ExportCustomerDataRequest, RewrapDataKeysRequest,
};
use serde_json::json;

use super::{Target, admin, rpc};

/// A customer's personal data.
#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Erase a customer's personal data (crypto-shredding): their complaints
    /// keep routes and figures, every personal field reads "[erased]".
    Erase {
        /// The customer's id in the source systems.
        customer_id: String,
    },
    /// Everything held about a customer, as JSON.
    Export {
        /// The customer's id in the source systems.
        customer_id: String,
        /// Write it to this file (readable by its owner only) instead of
        /// standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Wait until the read models have applied this log sequence.
        #[arg(long, default_value_t = 0)]
        min_sequence: u64,
    },
    /// Wrap every data key with the current master key (the first line of
    /// the master key file), after a rotation.
    Rewrap,
}

/// Runs a `customers` command.
pub(super) async fn customers(t: &Target, c: CustomerCommand) -> anyhow::Result<()> {
    let mut client = admin(t).await?;
    match c {
        CustomerCommand::Erase { customer_id } => {
            let r = client
                .erase_customer(EraseCustomerRequest { customer_id })
                .await
                .map_err(|s| rpc("EraseCustomer", s))?
                .into_inner();
            if t.json {
                println!(
                    "{}",
                    json!({"sequence": r.sequence, "already_erased": r.already_erased,
                           "customer_ref": r.customer_ref})
                );
            } else if r.already_erased {
                println!(
                    "customer {} was erased before; erasure recorded again at sequence {}",
                    r.customer_ref, r.sequence
                );
            } else {
                println!(
                    "customer {} erased at sequence {}",
                    r.customer_ref, r.sequence
                );
            }
        }
        CustomerCommand::Export {
            customer_id,
            out,
            min_sequence,
        } => {
            let r = client
                .export_customer_data(ExportCustomerDataRequest {
                    customer_id,
                    consistency: Some(Consistency {
                        min_sequence,
                        timeout_ms: 0,
                    }),
                })
                .await
                .map_err(|s| rpc("ExportCustomerData", s))?
                .into_inner();
            match out {
                Some(path) => {
                    write_private(&path, &r.json)?;
                    eprintln!(
                        "plaint-ctl: {} complaint(s) written to {}{}",
                        r.complaints,
                        path.display(),
                        if r.truncated { " (truncated)" } else { "" }
                    );
                }
                None => {
                    // A reader that stops early (`| head`) is not an error.
                    use std::io::Write;
                    let _ = writeln!(std::io::stdout().lock(), "{}", r.json);
                }
            }
        }
        CustomerCommand::Rewrap => {
            let r = client
                .rewrap_data_keys(RewrapDataKeysRequest {})
                .await
                .map_err(|s| rpc("RewrapDataKeys", s))?
                .into_inner();
            if t.json {
                println!(
                    "{}",
                    json!({"rewrapped": r.rewrapped, "already_current": r.already_current,
                           "master_key_id": r.master_key_id})
                );
            } else {
                println!(
                    "{} data key(s) re-wrapped, {} already wrapped by master key {}",
                    r.rewrapped, r.already_current, r.master_key_id
                );
            }
        }
    }
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
