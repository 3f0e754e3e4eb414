//! `plaint-ctl`: the operator CLI (see the library for the commands).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = plaint_ctl::Cli::parse();
    match plaint_ctl::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("plaint-ctl: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
