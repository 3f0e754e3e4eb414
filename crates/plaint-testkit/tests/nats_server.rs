//! The per-test nats-server: start, version, crash and restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use plaint_testkit::NatsServer;

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// The server tests start is the pinned release `PLAINT_NATS_SERVER` names.
#[test]
fn starts_and_reports_version() {
    let server = NatsServer::start();

    assert!(accepts(server.port()));
    assert!(
        server.version().starts_with("2."),
        "unexpected version {:?}",
        server.version()
    );
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));

    // The server that answers is the binary we asked for.
    let binary = std::env::var("PLAINT_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let output = Command::new(&binary).arg("--version").output().unwrap();
    let banner = String::from_utf8_lossy(&output.stdout);
    assert!(
        banner.contains(&format!("v{}", server.version())),
        "{binary} --version says {banner:?}, the server says {}",
        server.version()
    );
    eprintln!("{binary}: nats-server {}", server.version());
}

#[test]
fn a_killed_server_refuses_connections_and_a_restarted_one_accepts_on_the_same_port() {
    let mut server = NatsServer::start();
    let port = server.port();
    let first_pid = server.pid().unwrap();
    assert!(accepts(port));

    server.kill();
    assert_eq!(server.pid(), None);
    assert!(!accepts(port));

    server.restart();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid().unwrap(), first_pid);
    assert!(accepts(port));
    assert!(server.store_dir().join("jetstream").is_dir());
}

#[test]
fn two_servers_get_different_ports() {
    let a = NatsServer::start();
    let b = NatsServer::start();
    assert_ne!(a.port(), b.port());
}

#[test]
fn dropping_a_server_kills_it() {
    let server = NatsServer::start();
    let port = server.port();
    drop(server);
    assert!(!accepts(port));
}
