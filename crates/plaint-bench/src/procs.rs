//! The processes a bench run starts: its own `nats-server`, and the intake and
//! router binaries with their real configuration; and what `/proc` says about
//! them.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a process may take to come up.
const STARTUP: Duration = Duration::from_secs(30);
/// How long a process may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A free TCP port on loopback (the OS's pick; released for the child to take).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A child process of the bench, killed when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) name: &'static str,
    child: Child,
    pub(crate) pid: u32,
    log: PathBuf,
}

impl Proc {
    /// Starts `program` with `args` and `env`, output to `<dir>/<name>.log`.
    pub(crate) fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {} ({name})", program.display()))?;
        let pid = child
            .id()
            .with_context(|| format!("{name} exited at once"))?;
        Ok(Self {
            name,
            child,
            pid,
            log,
        })
    }

    /// The last lines of its log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Fails when the process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); end of its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
        Ok(())
    }

    /// SIGTERM, then waits (SIGKILL after a grace period).
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // `kill` the command: the crate forbids unsafe code, so no libc::kill.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!(
                    "  {} did not stop within {STOP_GRACE:?}; killing it",
                    self.name
                );
                self.child.kill().await?;
            }
        }
        Ok(())
    }

    /// CPU time and memory, from `/proc`.
    pub(crate) fn usage(&self) -> Usage {
        Usage::of(self.pid)
    }
}

/// CPU time and memory of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Usage {
    /// User + system CPU seconds so far.
    pub(crate) cpu_seconds: f64,
    /// Resident set now, MiB.
    pub(crate) rss_mib: f64,
    /// Peak resident set, MiB.
    pub(crate) peak_rss_mib: f64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

impl Usage {
    /// Reads `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status`
    /// (VmRSS, VmHWM); zeros when the process is gone.
    pub(crate) fn of(pid: u32) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The command name may hold spaces; fields are counted after its ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        Self {
            cpu_seconds: (tick(11) + tick(12)) / clock_ticks(),
            rss_mib: kib("VmRSS:") / 1024.0,
            peak_rss_mib: kib("VmHWM:") / 1024.0,
        }
    }
}

/// Starts `nats-server -js` on a free loopback port with a store in `dir`,
/// and with the configuration file `config` if one is given (what the flags
/// cannot set, such as `sync_interval`), and waits until it greets clients.
/// Returns the process and its URL.
pub(crate) async fn start_nats(
    binary: &Path,
    dir: &Path,
    config: Option<&Path>,
) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let store = dir.join("nats-store");
    let mut args: Vec<String> = config
        .map(|c| vec!["-c".to_owned(), c.display().to_string()])
        .unwrap_or_default();
    args.extend([
        "-js".to_owned(),
        "-a".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
        "-sd".to_owned(),
        store.display().to_string(),
    ]);
    let mut proc = Proc::spawn("nats-server", binary, &args, &[], dir).with_context(
        || "set PLAINT_NATS_SERVER to a nats-server binary, or put nats-server on PATH",
    )?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + STARTUP;
    loop {
        proc.check_alive()?;
        if let Ok(Ok(mut stream)) = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 4];
            if let Ok(Ok(4)) =
                tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut buf)).await
                && &buf == b"INFO"
            {
                return Ok((proc, format!("nats://127.0.0.1:{port}")));
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "nats-server did not come up within {STARTUP:?}; end of its log:\n{}",
                proc.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plaintext gRPC channel to `127.0.0.1:<port>`.
pub(crate) async fn channel(port: u16) -> anyhow::Result<Channel> {
    connect(Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?).await
}

/// A gRPC channel to `endpoint`, with the bench's timeouts.
pub(crate) async fn connect(endpoint: Endpoint) -> anyhow::Result<Channel> {
    connect_with_timeout(endpoint, Duration::from_secs(60)).await
}

/// A gRPC channel to `endpoint` whose calls may take up to `timeout`.
pub(crate) async fn connect_with_timeout(
    endpoint: Endpoint,
    timeout: Duration,
) -> anyhow::Result<Channel> {
    let uri = endpoint.uri().clone();
    endpoint
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {uri}"))
}

/// Waits until the gRPC server at `endpoint` reports SERVING; fails early
/// when the process exits.
pub(crate) async fn wait_serving(proc: &mut Proc, endpoint: Endpoint) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP;
    loop {
        proc.check_alive()?;
        if let Ok(ch) = connect(endpoint.clone()).await {
            let mut health = HealthClient::new(ch);
            if let Ok(r) = health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                && r.into_inner().status == ServingStatus::Serving as i32
            {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "{} did not report SERVING within {STARTUP:?}; end of its log:\n{}",
                proc.name,
                proc.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_and_memory() {
        let u = Usage::of(std::process::id());
        assert!(u.rss_mib > 0.0 && u.peak_rss_mib >= u.rss_mib);
        assert!(u.cpu_seconds >= 0.0);
        assert_eq!(Usage::of(u32::MAX), Usage::default());
    }
}
