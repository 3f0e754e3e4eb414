//! `plaint-ctl personal-keys init`: the secret files that protect customers'
//! personal data: the master key that wraps their data keys and the secret
//! of their pseudonyms.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use plaint_vault::secret::generate_key_line;

/// The secret files of personal data.
#[derive(Debug, Subcommand)]
pub enum PersonalKeysCommand {
    /// Write master.key (PLAINT_MASTER_KEY_FILE) and pseudonym.key
    /// (PLAINT_PSEUDONYM_SECRET_FILE), readable by their owner only. Files
    /// that exist are kept: a lost master key loses every customer's data,
    /// and a new pseudonym secret breaks every cooldown and history.
    Init(InitArgs),
    /// Print a new master key line, to put first in the master key file
    /// when rotating it (then `plaint-ctl customers rewrap`).
    NewMasterKey,
}

/// Settings of `plaint-ctl personal-keys init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to write the files into (created if missing).
    #[arg(long, default_value = ".local/personal")]
    pub dir: PathBuf,
}

/// Runs a `personal-keys` command.
pub fn run(command: PersonalKeysCommand) -> anyhow::Result<()> {
    match command {
        PersonalKeysCommand::Init(args) => {
            std::fs::create_dir_all(&args.dir)
                .with_context(|| format!("cannot create {}", args.dir.display()))?;
            for name in ["master.key", "pseudonym.key"] {
                let path = args.dir.join(name);
                if path.exists() {
                    eprintln!("plaint-ctl: kept {}", path.display());
                    continue;
                }
                write_private(&path, &generate_key_line()?)?;
                eprintln!("plaint-ctl: wrote {}", path.display());
            }
            Ok(())
        }
        PersonalKeysCommand::NewMasterKey => {
            println!("{}", generate_key_line()?);
            Ok(())
        }
    }
}

fn write_private(path: &Path, line: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists already", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    writeln!(file, "{line}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
