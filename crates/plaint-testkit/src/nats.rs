//! A `nats-server` process per test, and the URL of the shared one.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The NATS URL [`shared_nats_url`] falls back to when `PLAINT_TEST_NATS_URL` is unset.
pub const DEFAULT_TEST_NATS_URL: &str = "nats://127.0.0.1:4222";

/// How long a starting server may take before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Lines of the server log shown when a start fails or a test panics.
const LOG_TAIL_LINES: usize = 40;

/// The URL of the long-running NATS (with JetStream) that tests share, isolating themselves
/// by name with [`crate::unique_prefix`]: `PLAINT_TEST_NATS_URL`, else [`DEFAULT_TEST_NATS_URL`].
pub fn shared_nats_url() -> String {
    std::env::var("PLAINT_TEST_NATS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_NATS_URL.to_owned())
}

/// A `nats-server` with JetStream that belongs to one test, killed and reaped on drop.
///
/// It listens on `127.0.0.1` on a port the server picks itself (`-p -1`, read back from its
/// ports file, so two tests never race for a port) and stores JetStream data in a temporary
/// directory. The binary is `PLAINT_NATS_SERVER`, else `nats-server` on `PATH`; this is how
/// `scripts/test.sh` runs the same tests against several server versions.
///
/// For crash tests, [`kill`](Self::kill) sends SIGKILL and [`restart`](Self::restart) starts
/// the server again on the same port with the same store.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    /// Holds the JetStream store, the ports files and the log; removed on drop.
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    version: String,
    config: Option<PathBuf>,
    /// The server's extra environment (values for `$VAR`s in its configuration).
    env: Vec<(String, String)>,
}

impl NatsServer {
    /// Starts a server and waits (at most 10 s) until it accepts clients.
    ///
    /// # Panics
    ///
    /// When the binary cannot be run, exits early or does not answer in time; the message
    /// includes the end of the server log.
    pub fn start() -> Self {
        Self::start_with_config(None)
    }

    /// As [`start`](Self::start), with `config` (nats-server configuration
    /// text, e.g. `max_payload: 4MB`) given to the server on every start.
    pub fn start_with_config(config: Option<&str>) -> Self {
        let dir = temp_dir();
        let config = config.map(|text| {
            let path = dir.path().join("nats-server.conf");
            fs::write(&path, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            path
        });
        Self::launch(dir, config, Vec::new())
    }

    /// As [`start`](Self::start), with the configuration file at `path`, read
    /// in place (so that its `include`s resolve), and `env` in the server's
    /// environment (the values of `$VAR`s the file refers to).
    pub fn start_with_config_file(path: &Path, env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::launch(temp_dir(), Some(path.to_owned()), env)
    }

    fn launch(dir: TempDir, config: Option<PathBuf>, env: Vec<(String, String)>) -> Self {
        let binary = std::env::var_os("PLAINT_NATS_SERVER")
            .filter(|path| !path.is_empty())
            .map_or_else(|| PathBuf::from("nats-server"), PathBuf::from);
        let mut server = Self {
            binary,
            dir,
            port: 0,
            child: None,
            version: String::new(),
            config,
            env,
        };
        server.spawn(None);
        server
    }

    /// The client URL, e.g. `nats://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port; it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, or `None` after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The version the running server reports to clients, e.g. `2.9.10`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The JetStream store directory (`-sd`), kept across restarts.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The server's log file (stdout and stderr of every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it. Does nothing if it is
    /// not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The process may have exited by itself already; either way it is gone after wait.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it is running, then starts it again on the same port with the same
    /// store, and waits until it accepts clients.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), e.g. when another process took the port in between.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(Some(self.port));
    }

    fn spawn(&mut self, port: Option<u16>) {
        let log_path = self.log_path();
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display()));
        let stderr = stdout
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log_path.display()));
        let ports_dir = self.dir.path().join("ports");
        fs::create_dir_all(&ports_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", ports_dir.display()));
        let port_arg = port.map_or_else(|| "-1".to_owned(), |port| port.to_string());

        let mut command = Command::new(&self.binary);
        // The flags after the file win over it.
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(self.store_dir())
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} (set PLAINT_NATS_SERVER or put nats-server on PATH): {e}",
                    self.binary.display()
                )
            });
        let pid = child.id();
        // Stored before waiting, so that Drop kills the process if the wait panics.
        self.child = Some(child);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        self.port = match port {
            Some(port) => port,
            None => self.wait_for_ports_file(&ports_dir, pid, deadline),
        };
        self.version = self.wait_for_info(deadline);
    }

    /// Reads the port from `<ports_dir>/<executable>_<pid>.ports`, which the server writes
    /// once its listeners are up: `{"nats":["nats://127.0.0.1:41234"]}`.
    fn wait_for_ports_file(&mut self, ports_dir: &Path, pid: u32, deadline: Instant) -> u16 {
        let suffix = format!("_{pid}.ports");
        loop {
            self.fail_if_exited();
            let port = fs::read_dir(ports_dir)
                .into_iter()
                .flatten()
                .flatten()
                .find(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))
                .and_then(|entry| fs::read_to_string(entry.path()).ok())
                // A half-written file does not parse; the next round reads it whole.
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|ports| {
                    let url = ports["nats"][0].as_str()?.to_owned();
                    url.rsplit_once(':')?.1.parse::<u16>().ok()
                });
            if let Some(port) = port {
                return port;
            }
            self.fail_if_past(deadline, "write its ports file");
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Connects until the server greets with its `INFO` line, and returns the version in it.
    fn wait_for_info(&mut self, deadline: Instant) -> String {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            self.fail_if_exited();
            if let Some(version) = read_info_version(addr) {
                return version;
            }
            self.fail_if_past(deadline, "accept clients");
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn fail_if_exited(&mut self) {
        let status = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => status,
            _ => return,
        };
        self.child = None;
        panic!(
            "{} exited during start-up ({status}); end of its log:\n{}",
            self.binary.display(),
            self.log_tail()
        );
    }

    fn fail_if_past(&self, deadline: Instant, what: &str) {
        if Instant::now() >= deadline {
            panic!(
                "{} did not {what} within {STARTUP_TIMEOUT:?}; end of its log:\n{}",
                self.binary.display(),
                self.log_tail()
            );
        }
    }

    fn log_tail(&self) -> String {
        let log = fs::read(self.log_path()).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!(
                "nats-server on port {} (end of its log):\n{}",
                self.port,
                self.log_tail()
            );
        }
        self.kill();
    }
}

fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("plaint-nats-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory for nats-server: {e}"))
}

/// The `version` field of the `INFO` line a NATS server sends first on a new connection.
fn read_info_version(addr: SocketAddr) -> Option<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    let info: serde_json::Value = serde_json::from_str(line.strip_prefix("INFO ")?).ok()?;
    Some(info["version"].as_str()?.to_owned())
}
