//! The machine's floor under the grid benchmark's P5: what moving 256 MiB between two
//! processes over loopback TCP costs here, with no Raven code on the path.
//!
//! P5 sends a big tensor from the requester to ravsock, ravsock to a provider, the result back
//! to ravsock and ravsock to the requester: four crossings in sequence, and at least two of
//! them (the provider's input, the requester's result) land in memory the process has never
//! touched, which the kernel must fault in and zero page by page. This benchmark times one
//! crossing into a reused buffer and one into a fresh buffer (plain `std::net`, 1 MiB writes,
//! reads straight into the destination), and prints the fastest P5 those costs allow.
//!
//! `cargo bench -p ravtest --bench loopback` (`LOOPBACK_MIB` sets the size, 256 by default;
//! `LOOPBACK_ROUNDS` the rounds of each kind, 5 by default). The sending process is this
//! binary started again with `LOOPBACK_SEND_TO` set.

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The sending side: `rounds` connections, each sending `len` bytes from one touched buffer.
fn send(port: u16, len: usize, rounds: usize) {
    let buffer = vec![7u8; len];
    for _ in 0..rounds {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the receiver");
        for chunk in buffer.chunks(1 << 20) {
            stream.write_all(chunk).expect("send");
        }
    }
}

/// Reads one connection's bytes into `into`; seconds taken from the first byte asked for.
fn receive(listener: &TcpListener, into: &mut [u8]) -> f64 {
    let (mut stream, _) = listener.accept().expect("accept the sender");
    let start = Instant::now();
    stream.read_exact(into).expect("receive");
    start.elapsed().as_secs_f64()
}

fn median(mut seconds: Vec<f64>) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

fn main() {
    let mib = env_or("LOOPBACK_MIB", 256);
    let rounds = env_or("LOOPBACK_ROUNDS", 5).max(1);
    let len = mib << 20;
    if let Some(port) = std::env::var("LOOPBACK_SEND_TO").ok().and_then(|p| p.parse().ok()) {
        send(port, len, 2 * rounds);
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    let mut sender = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env("LOOPBACK_SEND_TO", port.to_string())
        .spawn()
        .expect("start the sending process");

    // Reused destination: touched once before the first round, as a warm process's is.
    let mut reused = vec![1u8; len];
    let hot: Vec<f64> = (0..rounds).map(|_| receive(&listener, &mut reused)).collect();
    // Fresh destination: a new zeroed allocation each round (untouched pages, as a new
    // tensor's are), dropped afterwards.
    let fresh: Vec<f64> = (0..rounds)
        .map(|_| {
            let mut buffer = vec![0u8; len];
            receive(&listener, &mut buffer)
        })
        .collect();
    sender.wait().expect("the sending process ends");

    // Touching fresh memory alone, and copying between touched buffers, for scale.
    let touch = median(
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                let mut buffer = vec![0u8; len];
                for page in buffer.chunks_mut(4096) {
                    page[0] = 1;
                }
                std::hint::black_box(&buffer);
                start.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let source = vec![3u8; len];
    let copy = median(
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                reused.copy_from_slice(&source);
                std::hint::black_box(&reused);
                start.elapsed().as_secs_f64()
            })
            .collect(),
    );

    let mb = len as f64 / 1e6;
    let (hot, fresh) = (median(hot), median(fresh));
    println!("loopback floor, {mib} MiB, median of {rounds} rounds, {} cores", num_cores());
    println!("  one crossing into a reused buffer: {hot:.3} s ({:.0} MB/s)", mb / hot);
    println!("  one crossing into fresh memory:    {fresh:.3} s ({:.0} MB/s)", mb / fresh);
    println!("  touching fresh memory alone:       {touch:.3} s ({:.0} MB/s)", mb / touch);
    println!("  memcpy between touched buffers:    {copy:.3} s ({:.0} MB/s)", mb / copy);
    // P5's four crossings, with nothing else on the path (no disk, no compute, no protocol).
    let all_reused = 4.0 * hot;
    let two_fresh = 2.0 * hot + 2.0 * fresh;
    println!("  P5 floor, four crossings into reused buffers: {all_reused:.3} s = {:.0} MB/s", mb / all_reused);
    println!(
        "  P5 floor, the provider's input and the requester's result in fresh memory: {two_fresh:.3} s = {:.0} MB/s",
        mb / two_fresh
    );
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}
