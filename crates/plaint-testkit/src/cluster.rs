//! A NATS cluster of the test's own: several `nats-server` processes on loopback, routed
//! to each other, with clustered JetStream (so streams can have replicas).

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a starting node may take to accept clients.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the nodes may take to elect a JetStream metadata leader.
const META_LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at starting the whole cluster (a cluster port picked in advance may be taken
/// by another process before the node binds it).
const START_ATTEMPTS: usize = 3;
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Lines of a node's log shown when a start fails or a test panics.
const LOG_TAIL_LINES: usize = 25;
/// What a node logs once the JetStream metadata group has a leader (2.9 and 2.1x alike).
const META_LEADER_LINES: [&str; 2] = [
    "JetStream cluster new metadata leader",
    "Self is new JetStream cluster metadata leader",
];

/// A cluster of `nats-server`s with JetStream, on loopback, belonging to one test; every
/// node is killed and reaped on drop.
///
/// Each node has a name (`n1`, `n2`, ...), a client port the server picks itself (read back
/// from its ports file), a cluster port, its own JetStream store in a temporary directory,
/// and routes to every node (itself included, which the server ignores), under a cluster
/// name unique to the guard. The binary is `PLAINT_NATS_SERVER`, else `nats-server` on
/// `PATH`, as for [`crate::NatsServer`].
///
/// [`start`](Self::start) returns once every node accepts clients and the JetStream
/// metadata group has elected a leader; creating a replicated stream may still need a
/// moment (a client should retry it for a few seconds). [`kill`](Self::kill) and
/// [`restart`](Self::restart) act on one node; a restarted node keeps its ports and store.
/// Give clients every node's URL ([`urls`](Self::urls)) so they can fail over.
#[derive(Debug)]
pub struct NatsCluster {
    binary: PathBuf,
    name: String,
    /// Holds every node's store, ports files and log; removed on drop.
    dir: TempDir,
    nodes: Vec<Node>,
    version: String,
}

#[derive(Debug)]
struct Node {
    name: String,
    client_port: u16,
    cluster_port: u16,
    child: Option<Child>,
}

impl NatsCluster {
    /// Starts a cluster of `size` nodes (at least 1; 3 for R3 streams) and waits until it
    /// is ready (see the type's documentation), at most 10 s per node and 20 s for the
    /// leader election.
    ///
    /// # Panics
    ///
    /// When the binary cannot be run, a node exits or does not answer in time, or no
    /// leader is elected; the message includes the end of the nodes' logs.
    pub fn start(size: usize) -> Self {
        assert!(size >= 1, "a cluster needs at least one node");
        let binary = std::env::var_os("PLAINT_NATS_SERVER")
            .filter(|path| !path.is_empty())
            .map_or_else(|| PathBuf::from("nats-server"), PathBuf::from);
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("plaint-nats-cluster-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
            let name = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
            let nodes = free_ports(size)
                .into_iter()
                .enumerate()
                .map(|(i, cluster_port)| Node {
                    name: format!("n{}", i + 1),
                    client_port: 0,
                    cluster_port,
                    child: None,
                })
                .collect();
            let mut cluster = Self {
                binary: binary.clone(),
                name,
                dir,
                nodes,
                version: String::new(),
            };
            match cluster.start_all() {
                Ok(()) => return cluster,
                // Dropping the guard kills whatever did start.
                Err(failure) => last_failure = failure,
            }
        }
        panic!("cannot start a NATS cluster of {size}: {last_failure}");
    }

    /// How many nodes the cluster has.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// The cluster's name (unique per guard).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client URL of node `i` (0-based), e.g. `nats://127.0.0.1:41234`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// Every node's client URL, comma-separated, as `NATS_URL` takes them.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server name of node `i` (`n1`, `n2`, ...), as JetStream reports peers.
    pub fn node_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The version the nodes report to clients, e.g. `2.9.10`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether node `i` is running (not killed).
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The process id of node `i`, or `None` after [`kill`](Self::kill).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Node `i`'s log file (stdout and stderr of every run, appended).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("nats-server.log")
    }

    /// Kills node `i` with SIGKILL, as a crash would, and reaps it. Does nothing if it is
    /// not running.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills node `i` if it is running, then starts it again with the same ports and
    /// store, and waits (at most 10 s) until it accepts clients.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start), e.g. when another process took one of its ports.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        if let Err(failure) = self.spawn(i) {
            panic!("cannot restart node {}: {failure}", self.nodes[i].name);
        }
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.nodes[i].name)
    }

    fn start_all(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
        }
        self.wait_for_meta_leader()
    }

    /// Starts node `i` and waits until it accepts clients.
    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let dir = self.node_dir(i);
        let ports_dir = dir.join("ports");
        fs::create_dir_all(&ports_dir)
            .map_err(|e| format!("cannot create {}: {e}", ports_dir.display()))?;
        let log_path = self.log_path(i);
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let stderr = stdout
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let routes = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect::<Vec<_>>()
            .join(",");
        let node = &self.nodes[i];
        let port_arg = match node.client_port {
            0 => "-1".to_owned(),
            port => port.to_string(),
        };
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-n", &node.name, "-js"])
            .arg("-sd")
            .arg(dir.join("store"))
            .args(["--cluster_name", &self.name])
            .arg("--cluster")
            .arg(format!("nats://127.0.0.1:{}", node.cluster_port))
            .args(["--routes", &routes])
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run {} (set PLAINT_NATS_SERVER or put nats-server on PATH): {e}",
                    self.binary.display()
                )
            })?;
        let pid = child.id();
        // Stored before waiting, so that Drop kills the process if the wait fails.
        self.nodes[i].child = Some(child);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        if self.nodes[i].client_port == 0 {
            self.nodes[i].client_port = self.wait_for_ports_file(i, &ports_dir, pid, deadline)?;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.nodes[i].client_port));
        loop {
            self.check_running(i)?;
            if let Some(version) = read_info_version(addr) {
                self.version = version;
                return Ok(());
            }
            self.check_deadline(i, deadline, "accept clients")?;
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Reads the client port from the node's ports file.
    fn wait_for_ports_file(
        &mut self,
        i: usize,
        ports_dir: &Path,
        pid: u32,
        deadline: Instant,
    ) -> Result<u16, String> {
        let suffix = format!("_{pid}.ports");
        loop {
            self.check_running(i)?;
            let port = fs::read_dir(ports_dir)
                .into_iter()
                .flatten()
                .flatten()
                .find(|entry| entry.file_name().to_string_lossy().ends_with(&suffix))
                .and_then(|entry| fs::read_to_string(entry.path()).ok())
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|ports| {
                    let url = ports["nats"][0].as_str()?.to_owned();
                    url.rsplit_once(':')?.1.parse::<u16>().ok()
                });
            if let Some(port) = port {
                return Ok(port);
            }
            self.check_deadline(i, deadline, "write its ports file")?;
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits until some node's log says the JetStream metadata group has a leader.
    fn wait_for_meta_leader(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + META_LEADER_TIMEOUT;
        loop {
            let elected = (0..self.nodes.len()).any(|i| {
                let log = fs::read(self.log_path(i)).unwrap_or_default();
                let log = String::from_utf8_lossy(&log);
                META_LEADER_LINES.iter().any(|line| log.contains(line))
            });
            if elected {
                return Ok(());
            }
            for i in 0..self.nodes.len() {
                self.check_running(i)?;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no JetStream metadata leader within {META_LEADER_TIMEOUT:?}; {}",
                    self.log_tails()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn check_running(&mut self, i: usize) -> Result<(), String> {
        let status = match self.nodes[i].child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => status,
            _ => return Ok(()),
        };
        self.nodes[i].child = None;
        Err(format!(
            "node {} exited during start-up ({status}); end of its log:\n{}",
            self.nodes[i].name,
            self.log_tail(i)
        ))
    }

    fn check_deadline(&self, i: usize, deadline: Instant, what: &str) -> Result<(), String> {
        if Instant::now() >= deadline {
            return Err(format!(
                "node {} did not {what} within {STARTUP_TIMEOUT:?}; end of its log:\n{}",
                self.nodes[i].name,
                self.log_tail(i)
            ));
        }
        Ok(())
    }

    fn log_tail(&self, i: usize) -> String {
        let log = fs::read(self.log_path(i)).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    fn log_tails(&self) -> String {
        (0..self.nodes.len())
            .map(|i| format!("--- {} ---\n{}", self.nodes[i].name, self.log_tail(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "NATS cluster {} (end of the nodes' logs):\n{}",
                self.name,
                self.log_tails()
            );
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// `n` distinct loopback ports that were free a moment ago: bound together, then released.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
        })
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .unwrap_or_else(|e| panic!("no local address: {e}"))
                .port()
        })
        .collect()
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
