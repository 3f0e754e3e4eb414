//! `plaint-ctl certs init`: a local CA with a server and a client
//! certificate, for running the services with TLS on one machine or in
//! docker-compose.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use plaint_certs::LocalSet;

/// Certificates for local TLS.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Make a local CA (ca.pem, ca.key), a server certificate for localhost,
    /// 127.0.0.1, ::1 and every --san (server.pem, server.key) and a client
    /// certificate (client.pem, client.key). Keys are readable by their
    /// owner only.
    Init(InitArgs),
}

/// Settings of `plaint-ctl certs init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to write the files into (created if missing).
    #[arg(long, default_value = ".local/tls")]
    pub dir: PathBuf,
    /// Another name the server certificate covers (a DNS name or an IP
    /// address), such as a compose service's name; repeatable.
    #[arg(long = "san", value_name = "NAME")]
    pub sans: Vec<String>,
    /// Replace an existing set. Certificates signed by the old CA stop being
    /// trusted by whoever trusts the new one.
    #[arg(long)]
    pub force: bool,
}

/// Runs a `certs` command.
pub fn run(command: CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init(args) => {
            let files = LocalSet::new(&args.sans)?.write(&args.dir, args.force)?;
            eprintln!(
                "plaint-ctl: wrote {}, {} (server) and {} (client) with their keys",
                files.ca_cert.display(),
                files.server_cert.display(),
                files.client_cert.display()
            );
            Ok(())
        }
    }
}
