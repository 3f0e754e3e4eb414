//! A PostgreSQL server per test: `initdb` into a temporary directory, its own port, crashed
//! and restarted at will, stopped and removed on drop.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long `initdb`, a start or a stop may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Seconds `pg_ctl -w` waits for the server to accept connections.
const PG_CTL_WAIT_SECS: &str = "30";
/// Ports tried when the one picked was taken in between.
const PORT_ATTEMPTS: usize = 5;
/// Lines of the server log shown when a start fails or a test panics.
const LOG_TAIL_LINES: usize = 40;
/// The OS user that runs the server when the tests run as root (initdb refuses root).
const SERVICE_USER: &str = "postgres";

/// A PostgreSQL server that belongs to one test.
///
/// The cluster is made with `initdb -U postgres --auth=trust` in a temporary directory; the
/// server listens on `127.0.0.1` on a free port (kept across [`restart`](Self::restart)) and
/// on a Unix socket in the same directory, so it never touches the machine's own cluster. The
/// binaries are taken from `PLAINT_PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`
/// (Debian's layout), else `initdb` and `pg_ctl` on `PATH`.
///
/// `initdb` refuses to run as root; when the tests run as root, every PostgreSQL command runs
/// as the `postgres` OS user (`runuser -u postgres --`, which Debian's PostgreSQL package
/// creates) and the temporary directory is handed to that user.
///
/// Fault injection: [`crash`](Self::crash) is `pg_ctl -m immediate stop` (no shutdown
/// checkpoint: the next start runs crash recovery from the WAL), and
/// [`restart`](Self::restart) starts it again. Only this server's data directory and pid are
/// ever addressed. Drop stops the server (immediate mode) and removes the directory; the
/// end of the server log is printed when the test is panicking.
#[derive(Debug)]
pub struct PgServer {
    bin_dir: PathBuf,
    run_as: Option<&'static str>,
    dir: TempDir,
    port: u16,
    running: bool,
    starts: u32,
}

impl PgServer {
    /// Creates a cluster and starts it; waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When the binaries cannot be found or run, or the server does not come up in time; the
    /// message includes the end of the server log.
    pub fn start() -> Self {
        let bin_dir = find_bin_dir();
        let run_as = running_as_root().then_some(SERVICE_USER);
        let dir = tempfile::Builder::new()
            .prefix("plaint-pg-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory for PostgreSQL: {e}"));
        let mut server = Self {
            bin_dir,
            run_as,
            dir,
            port: 0,
            running: false,
            starts: 0,
        };
        if let Some(user) = run_as {
            // The directory is root's (mode 0700); the server's user must own it.
            server.run_checked(
                Command::new("chown")
                    .arg(format!("{user}:"))
                    .arg(server.dir.path()),
                "chown the temporary directory",
            );
        }
        let mut initdb = server.pg_command("initdb");
        initdb
            .arg("-D")
            .arg(server.data_dir())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            // No fsync of the new cluster: a test's cluster never outlives the machine.
            .arg("--no-sync");
        server.run_checked(&mut initdb, "initdb");

        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            match server.try_start() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!(
            "PostgreSQL did not start after {PORT_ATTEMPTS} attempts: {last_error}\nend of its log:\n{}",
            server.log_tail()
        );
    }

    /// The URL of the `postgres` database as the `postgres` user (trust authentication).
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The TCP port; it stays the same across [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        if !self.running {
            return None;
        }
        let text = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Whether the server is running (as far as this guard knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// How many times the server was started (1 after [`start`](Self::start)).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The data directory (`-D`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server log (every run, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// Crashes the server: `pg_ctl -m immediate stop`, which stops every server process at
    /// once without a shutdown checkpoint, as a crash would; the next start recovers from the
    /// WAL. Does nothing when it is not running.
    ///
    /// # Panics
    ///
    /// When `pg_ctl` fails.
    pub fn crash(&mut self) {
        self.stop_with("immediate");
    }

    /// Stops the server cleanly (`pg_ctl -m fast stop`). Does nothing when it is not running.
    ///
    /// # Panics
    ///
    /// When `pg_ctl` fails.
    pub fn stop(&mut self) {
        self.stop_with("fast");
    }

    /// Crashes the server if it runs, then starts it again on the same port with the same
    /// data, and waits until it accepts connections (after crash recovery).
    ///
    /// # Panics
    ///
    /// When it does not come back, e.g. because another process took the port in between.
    pub fn restart(&mut self) {
        self.crash();
        if let Err(e) = self.try_start() {
            panic!(
                "PostgreSQL did not restart on port {}: {e}\nend of its log:\n{}",
                self.port,
                self.log_tail()
            );
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-o", &options, "-w", "-t", PG_CTL_WAIT_SECS, "start"]);
        let out = run(&mut cmd, COMMAND_TIMEOUT)?;
        if !out.status.success() {
            // A server that half started must not linger.
            let _ = self.stop_command("immediate");
            return Err(describe("pg_ctl start", &out));
        }
        self.running = true;
        self.starts += 1;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            if Instant::now() >= deadline {
                return Err(format!("port {} does not accept connections", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn stop_with(&mut self, mode: &str) {
        if !self.running {
            return;
        }
        match self.stop_command(mode) {
            Ok(out) if out.status.success() => self.running = false,
            Ok(out) => panic!(
                "{}\nend of its log:\n{}",
                describe("pg_ctl stop", &out),
                self.log_tail()
            ),
            Err(e) => panic!("pg_ctl stop: {e}"),
        }
    }

    fn stop_command(&self, mode: &str) -> Result<Output, String> {
        let mut cmd = self.pg_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", PG_CTL_WAIT_SECS, "stop"]);
        run(&mut cmd, COMMAND_TIMEOUT)
    }

    /// A PostgreSQL binary, run as the service user when the tests run as root.
    fn pg_command(&self, program: &str) -> Command {
        let binary = self.bin_dir.join(program);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        // The test's working directory may be out of the service user's reach.
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn run_checked(&self, cmd: &mut Command, what: &str) {
        match run(cmd, COMMAND_TIMEOUT) {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("{}", describe(what, &out)),
            Err(e) => panic!("{what}: {e}"),
        }
    }

    fn log_tail(&self) -> String {
        let log = fs::read(self.log_path()).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "PostgreSQL on port {} (end of its log):\n{}",
                self.port,
                self.log_tail()
            );
        }
        if self.running {
            match self.stop_command("immediate") {
                Ok(out) if out.status.success() => self.running = false,
                Ok(out) => eprintln!("plaint-testkit: {}", describe("pg_ctl stop", &out)),
                Err(e) => eprintln!("plaint-testkit: pg_ctl stop: {e}"),
            }
        }
        // The TempDir removes the directory after this.
    }
}

/// Runs `cmd` to completion, killing it after `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(format!("{cmd:?} failed: {e}")),
        Err(_) => {
            // Our own child, addressed by its pid.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            Err(format!("{cmd:?} did not finish within {timeout:?}"))
        }
    }
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A port nobody listens on right now (the server may still lose a race for it; the start
/// is then retried on another).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// Whether this process runs as root: `/proc/self` belongs to the effective user.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Where `initdb` and `pg_ctl` are.
fn find_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLAINT_PG_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| has_tools(dir))
        .unwrap_or_else(|| {
            panic!(
                "cannot find initdb and pg_ctl: set PLAINT_PG_BIN_DIR, install PostgreSQL \
                 (/usr/lib/postgresql/*/bin) or put them on PATH"
            )
        })
}

fn has_tools(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}
