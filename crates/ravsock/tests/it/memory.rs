//! The `ravsock` binary under amplification probes: requests built to make a server buffer or
//! expand what it reads, sent several at once over raw TCP as a hostile client would (the
//! body keeps coming while the server answers). Each gets its 4xx, and the server's peak
//! resident memory (`VmHWM`) stays under a bound: before the limits, ten 50 MB graph names
//! took it to 567 MB, eight refused 256 MiB key uploads to 1.36 GB, one 53 MB op chunk to
//! 411 MB.

use crate::kill::{Fixture, Server, connect, fixture, ravsock};
use ravsock::auth::Role;
use ravsock::db::Db;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The bound on ravsock's peak RSS over all the probes: it idles under 50 MiB, and the op
/// chunks are read and parsed one at a time within the 64 MiB body budget, each taking its
/// JSON and up to four times that once parsed (measured: 352 MiB).
const PEAK_BOUND: u64 = 512 << 20;

/// Sends `head` and then `length` bytes of `body` (repeated) while reading the answer; the
/// answer's status code. The server may answer and close before the body is all sent.
async fn probe(port: u16, head: String, body: Arc<Vec<u8>>, length: u64) -> u16 {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connects");
    let (read, mut write) = stream.into_split();
    let request = head.lines().next().unwrap_or_default().to_string();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let mut sent = 0u64;
        while sent < length {
            let n = (length - sent).min(body.len() as u64) as usize;
            write.write_all(&body[..n]).await?;
            sent += n as u64;
        }
        // Kept open: a write half dropped here would half-close the connection, and hyper
        // drops a request whose client half-closed before the answer.
        Ok::<_, std::io::Error>(write)
    });
    let mut line = String::new();
    let read = BufReader::new(read).read_line(&mut line).await;
    writer.abort();
    let written = writer.await.map(|w| w.map(drop));
    let status = line.split_whitespace().nth(1).and_then(|code| code.parse().ok());
    status.unwrap_or_else(|| panic!("no answer to {request}: read {read:?} {line:?}, wrote {written:?}"))
}

fn head(method: &str, path: &str, token: &str, length: u64) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

/// Peak resident memory of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("a number of kB") << 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[allow(clippy::print_stderr, reason = "the measured peak, for whoever reads the test's output")]
async fn amplification_probes_are_refused_within_a_memory_bound() {
    let Fixture { dir, database_url, requester: alice, port, .. } = fixture().await;
    let db = Db::connect(&database_url).await.unwrap();
    let bob = db.create_account("bob", Role::Requester).await.unwrap();
    db.close().await;
    let child = ravsock(dir.path(), &database_url, port, "warn").stdout(Stdio::null()).spawn().expect("ravsock starts");
    let server = Server(child);
    let pid = server.0.id();
    let url = format!("http://127.0.0.1:{port}");
    let client = connect(&url, &alice).await;
    let graph = client.submit(&ravop::Graph::new("alice's")).await.unwrap();
    let at_rest = peak_rss(pid);

    // Ten 50 MB graph names: refused at the route's 64 KiB.
    let name = Arc::new(b"n".repeat(1 << 20));
    let len = 50_000_000;
    let names = (0..10).map(|_| probe(port, head("POST", "/v1/graphs", &alice, len), name.clone(), len));
    for status in futures_util::future::join_all(names).await {
        assert_eq!(status, 413);
    }

    // Eight 256 MiB evaluation-key uploads to another's graph: refused before the body.
    let zeros = Arc::new(vec![0u8; 1 << 20]);
    let keys = ravproto::routes::federated_keys(graph);
    let len = ravsock::api::MAX_KEYS_BYTES as u64;
    let uploads = (0..8).map(|_| probe(port, head("PUT", &keys, &bob, len), zeros.clone(), len));
    for status in futures_util::future::join_all(uploads).await {
        assert_eq!(status, 404);
    }

    // Four op chunks just under the 64 MiB body limit, each one value of 31 million zeros: a
    // JSON number of two bytes is eight once parsed. Within the body budget, one at a time.
    let count = 31_000_000usize;
    let mut chunk = format!(
        r#"{{"ops":[{{"local_id":0,"operation":{{"operator":"lin","params":{{"dtype":"f64","shape":[{count}]}}}},"value":{{"tensor":{{"dtype":"f64","shape":[{count}],"data":["#
    )
    .into_bytes();
    chunk.extend(b"0,".repeat(count - 1));
    chunk.extend(b"0]}}}]}");
    let len = chunk.len() as u64;
    assert!(len < ravsock::api::MAX_BODY_BYTES as u64);
    let chunk = Arc::new(chunk);
    let ops = ravproto::routes::graph_ops(graph);
    let chunks = (0..4).map(|_| probe(port, head("POST", &ops, &alice, len), chunk.clone(), len));
    for status in futures_util::future::join_all(chunks).await {
        assert_eq!(status, 400, "an inline value over the inline limit");
    }

    let peak = peak_rss(pid);
    eprintln!("ravsock peak RSS: {} MiB at rest, {} MiB after the probes", at_rest >> 20, peak >> 20);
    assert!(peak < PEAK_BOUND, "peak RSS {} MiB is over the bound of {} MiB", peak >> 20, PEAK_BOUND >> 20);
    // And it still serves.
    client.submit(&ravop::Graph::new("after")).await.expect("serves after the probes");
}
