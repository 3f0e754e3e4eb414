//! `GET /metrics` over a plain connection: the endpoint speaks HTTP/1.1 and
//! the tests need nothing more.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The whole answer of the metrics endpoint at `addr`, status line included.
pub(crate) async fn scrape(addr: SocketAddr) -> String {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut body = String::new();
        stream.read_to_string(&mut body).await.expect("response");
        body
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .expect("the metrics endpoint answers within 10 s")
}
