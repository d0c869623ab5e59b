//! ravftp throughput on loopback: a big tensor value uploaded and downloaded through the
//! server and client of this crate, in one process (what one crossing of a big tensor costs
//! in the grid's P5: `put_value` sends from the tensor's memory, `get_value` reads into the
//! new tensor's).
//!
//! `cargo bench -p ravftp --bench transfer` (`FTP_MIB` sets the size, 256 by default).

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use ravftp::server::{ServerConfig, serve};
use ravftp::{FtpClient, Users};
use ravproto::messages::FtpCredentials;
use ravproto::{TensorData, Value};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let mib: usize = std::env::var("FTP_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    let dir = tempfile::tempdir().unwrap();
    let users = Arc::new(Users::new(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(listener, users.clone(), ServerConfig::default(), std::future::pending()));
    let issued = users.issue("bench").unwrap();
    let credentials = FtpCredentials { port, user: issued.user, password: issued.password, inline_limit: 0 };
    let mut client = FtpClient::connect("127.0.0.1", &credentials, None).await.unwrap();
    let values: Vec<f64> = (0..(mib << 20) / 8).map(|i| i as f64).collect();
    let value = Value::Tensor(TensorData::from_f64_vec(vec![values.len()], values).unwrap());
    let len = value.encoded_len();
    let mb = len as f64 / 1e6;
    for round in 0..3 {
        let start = Instant::now();
        client.put_value("big.ravv", &value).await.unwrap();
        let put = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let back = client.get_value("big.ravv", len).await.unwrap();
        let get = start.elapsed().as_secs_f64();
        assert!(back == value);
        println!(
            "round {round}: put {mib} MiB {put:.3} s ({:.0} MB/s), get {get:.3} s ({:.0} MB/s)",
            mb / put,
            mb / get
        );
    }
    client.quit().await;
}
