//! API keys and the audit trail: `plaint-ctl keys …` and `plaint-ctl audit`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use plaint_access::api_key::NewKey;
use plaint_proto::access::{
    ApiKey, CreateKeyRequest, ExpireKeyRequest, ListAuditRequest, ListKeysRequest, RevokeKeyRequest,
};
use serde_json::json;

use super::{Target, access, rpc};

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a bootstrap admin key offline and write it to a new file (mode
    /// 0600) for a service's PLAINT_ADMIN_KEY_FILE; nothing is printed of it.
    Bootstrap {
        /// The file to write; refused if it exists.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create a key; its secret is printed once, and kept nowhere.
    Create {
        /// What it is for, e.g. `billing-system`.
        #[arg(long)]
        name: String,
        /// A scope it carries (repeat for several; `*` for all), e.g.
        /// `complaints:write`.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Seconds until it expires; 0 = never.
        #[arg(long, default_value_t = 0)]
        ttl_secs: u64,
        /// Write the secret to this new file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Keys, without their secrets.
    List,
    /// Set when a key stops working: now, or at `--at-ms` to rotate it out.
    Expire {
        /// The key id.
        key_id: String,
        /// When (ms since the epoch); 0 = now.
        #[arg(long, default_value_t = 0)]
        at_ms: i64,
    },
    /// Revoke a key at once, for good.
    Revoke {
        /// The key id.
        key_id: String,
    },
}

/// Writes `text` to a new file only its owner can read.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("writing {}", path.display()))
}

fn key_line(k: &ApiKey) -> String {
    let state = if k.revoked {
        format!("revoked by {}", k.revoked_by)
    } else if k.expires_at_ms != 0 {
        format!("expires at {} ms", k.expires_at_ms)
    } else {
        "active".to_owned()
    };
    format!(
        "{}  {:<24} {:<60} {state}",
        k.key_id,
        k.name,
        k.scopes.join(",")
    )
}

fn key_json(k: &ApiKey) -> serde_json::Value {
    json!({
        "key_id": k.key_id, "name": k.name, "scopes": k.scopes,
        "created_at_ms": k.created_at_ms, "created_by": k.created_by,
        "expires_at_ms": k.expires_at_ms, "revoked": k.revoked,
        "revoked_at_ms": k.revoked_at_ms, "revoked_by": k.revoked_by,
    })
}

/// Pages of keys followed at most this many times (500 keys a page).
const MAX_PAGES: usize = 1000;

pub(super) async fn keys(t: &Target, c: KeyCommand) -> anyhow::Result<()> {
    if let KeyCommand::Bootstrap { out } = &c {
        let key = NewKey::generate()?;
        write_secret(out, &key.text)?;
        println!("wrote bootstrap key {} to {}", key.key_id, out.display());
        return Ok(());
    }
    let mut client = access(t).await?;
    match c {
        KeyCommand::Bootstrap { .. } => Ok(()),
        KeyCommand::Create {
            name,
            scopes,
            ttl_secs,
            out,
        } => {
            let r = client
                .create_key(CreateKeyRequest {
                    name,
                    scopes,
                    ttl_secs,
                })
                .await
                .map_err(|s| rpc("CreateKey", s))?
                .into_inner();
            let key = r.key.unwrap_or_default();
            match out {
                Some(path) => {
                    write_secret(&path, &r.secret)?;
                    println!(
                        "created key {} (secret written to {})",
                        key.key_id,
                        path.display()
                    );
                }
                None if t.json => println!(
                    "{}",
                    json!({"key": key_json(&key), "secret": r.secret, "sequence": r.sequence})
                ),
                None => {
                    println!("created key {}", key_line(&key));
                    println!("secret (shown once): {}", r.secret);
                }
            }
            Ok(())
        }
        KeyCommand::List => {
            let mut after = String::new();
            for _ in 0..MAX_PAGES {
                let page = client
                    .list_keys(ListKeysRequest {
                        after_key_id: after.clone(),
                        page_size: 500,
                    })
                    .await
                    .map_err(|s| rpc("ListKeys", s))?
                    .into_inner();
                for k in &page.keys {
                    if t.json {
                        println!("{}", key_json(k));
                    } else {
                        println!("{}", key_line(k));
                    }
                }
                if page.next_after_key_id.is_empty() {
                    return Ok(());
                }
                after = page.next_after_key_id;
            }
            anyhow::bail!("more than {MAX_PAGES} pages of keys; stopped")
        }
        KeyCommand::Expire { key_id, at_ms } => {
            let r = client
                .expire_key(ExpireKeyRequest {
                    key_id,
                    expires_at_ms: at_ms,
                })
                .await
                .map_err(|s| rpc("ExpireKey", s))?
                .into_inner();
            println!("{}", key_line(&r.key.unwrap_or_default()));
            Ok(())
        }
        KeyCommand::Revoke { key_id } => {
            let r = client
                .revoke_key(RevokeKeyRequest { key_id })
                .await
                .map_err(|s| rpc("RevokeKey", s))?
                .into_inner();
            println!("{}", key_line(&r.key.unwrap_or_default()));
            Ok(())
        }
    }
}

pub(super) async fn audit(t: &Target, after: u64, limit: u32) -> anyhow::Result<()> {
    let page = access(t)
        .await?
        .list_audit(ListAuditRequest {
            after_sequence: after,
            page_size: limit,
        })
        .await
        .map_err(|s| rpc("ListAudit", s))?
        .into_inner();
    for e in &page.entries {
        if t.json {
            println!(
                "{}",
                json!({"sequence": e.sequence, "at_ms": e.at_ms, "actor": e.actor,
                    "action": e.action, "target": e.target, "before": e.before, "after": e.after})
            );
        } else {
            println!(
                "{:>8}  {}  {:<24} {:<20} {:<24} {} -> {}",
                e.sequence, e.at_ms, e.actor, e.action, e.target, e.before, e.after
            );
        }
    }
    if page.next_after_sequence != 0 && !t.json {
        println!("more: --after {}", page.next_after_sequence);
    }
    Ok(())
}
