//! ravsock over TLS with a throwaway CA (rcgen): a graph with values big enough for ravftp
//! runs end to end (HTTPS, WSS for the provider and the requester's events, FTPS both ways);
//! clients that do not trust the CA, plain FTP to the FTPS server and plain HTTP to another
//! machine are refused with clear errors; and a peer that never finishes its handshake does
//! not hold up anyone else's.

use crate::stack::{INLINE_LIMIT, Stack};
use ravclient::{Http, Repeat, Trust};
use ravftp::server::FtpsFiles;
use ravop::ops::ReduceParams;
use ravop::{Graph, LocalExecutor, TensorValue};
use ravproto::messages::FtpCredentials;
use ravproto::routes;
use std::time::Duration;

/// A CA and a certificate for 127.0.0.1 it signed, as files.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    pub(crate) files: FtpsFiles,
    _dir: tempfile::TempDir,
}

pub(crate) fn throwaway_pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(rcgen::DnType::CommonName, "raven test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    server.distinguished_name.push(rcgen::DnType::CommonName, "ravsock");
    let cert = server.signed_by(&key, &issuer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = FtpsFiles { cert: dir.path().join("ravsock.pem"), key: dir.path().join("ravsock.key") };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    Pki { ca_pem: ca_cert.pem(), files, _dir: dir }
}

fn same(a: &TensorValue, b: &TensorValue) -> bool {
    match (a, b) {
        (TensorValue::Tensor(x), TensorValue::Tensor(y)) => {
            x.shape() == y.shape() && x.to_f64_array().iter().zip(y.to_f64_array().iter()).all(|(p, q)| p == q)
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_grid_runs_over_tls_and_refuses_what_it_does_not_trust() {
    let pki = throwaway_pki();
    let stack = Stack::start_tls(30_000, &pki.ca_pem, pki.files.clone()).await;
    assert!(stack.url.starts_with("https://127.0.0.1:"), "{}", stack.url);

    // A peer that connects and never says a word holds no one up.
    let silent = tokio::net::TcpStream::connect(stack.url.trim_start_matches("https://")).await.unwrap();

    let mut provider = stack.provider(1.0);
    provider.joined().await;
    let client = stack.client().await;
    // 20,000 doubles (160 kB) are above the stack's inline limit: up and down through FTPS.
    let big: Vec<f64> = (0..20_000).map(|i| f64::from(i) * 0.5).collect();
    assert!(big.len() as u64 * 8 > INLINE_LIMIT);
    let graph = Graph::new("over tls");
    let x = graph.t(big);
    (&x * 2.0 + 1.0).persist("doubled");
    x.sum(ReduceParams::all()).persist("sum");
    let local = LocalExecutor::default().run(&graph).unwrap();
    let id = client.run(&graph, |_| {}).await.expect("the graph runs over TLS");
    for name in ["doubled", "sum"] {
        let remote = client.fetch(id, name).await.expect("fetch over https or ftps");
        assert!(same(&remote, local.get(name).unwrap()), "`{name}` differs");
    }
    // The requester's event stream is a socket.io connection too (wss).
    client.subscribe(id).await.expect("events over wss");
    drop(silent);

    // Clients that do not trust the CA are told so at once, and not sent again for minutes.
    let refused = tokio::time::timeout(Duration::from_secs(30), ravop::Client::connect(&stack.url, &stack.requester))
        .await
        .expect("a certificate refusal is not retried");
    match refused {
        Err(ravop::Error::Trust(message)) => {
            assert!(message.contains("does not trust") && message.contains("--ca-cert"), "{message}")
        }
        other => panic!("expected a trust error, got {other:?}"),
    }
    let mut stranger = stack.provider_trusting(Trust::system());
    let stopped = tokio::time::timeout(Duration::from_secs(30), &mut stranger.task).await.expect("the provider stops");
    match stopped.unwrap() {
        Err(ravpy::Error::Trust(message)) => assert!(message.contains("--ca-cert"), "{message}"),
        other => panic!("expected a trust error, got {other:?}"),
    }

    // ravftp requires FTPS: the same credentials log in over TLS only.
    let http = Http::new(&stack.url, &stack.requester, &stack.trust).unwrap();
    let credentials: FtpCredentials = http.post_as(Repeat::Safe, routes::FTP_CREDENTIALS, &()).await.unwrap();
    assert!(ravftp::FtpClient::connect("127.0.0.1", &credentials, None).await.is_err(), "plain FTP is refused");
    let mut ftps = ravftp::FtpClient::connect("127.0.0.1", &credentials, http.ftps()).await.expect("FTPS logs in");
    ftps.put("hello.bin", b"over ftps").await.unwrap();
    assert_eq!(ftps.get("hello.bin", 9).await.unwrap(), b"over ftps");
    ftps.quit().await;

    // Plain HTTP to another machine is refused before anything is sent (no packet leaves
    // loopback); --insecure allows it (not tried here: nothing may leave 127.0.0.0/8).
    match ravop::Client::connect("http://192.0.2.10:9999", &stack.requester).await {
        Err(ravop::Error::Trust(message)) => assert!(message.contains("--insecure"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(Trust::system().insecure(true).check("http://192.0.2.10:9999").is_ok());
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_half_a_tls_configuration_does_not_start() {
    let pki = throwaway_pki();
    let dir = tempfile::tempdir().unwrap();
    let database_url = ravsock::db::scratch_database_url(dir.path()).await.unwrap();
    let mut config = crate::stack::config(dir.path(), &database_url, 30_000);
    config.tls_cert = Some(pki.files.cert.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = ravsock::run(config.clone(), listener, async {}).await.unwrap_err();
    assert!(error.to_string().contains("--tls-cert and --tls-key go together"), "{error}");
    // A key that is not the certificate's: refused before the server opens anything.
    config.tls_key = Some(pki.files.cert.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = ravsock::run(config, listener, async {}).await.unwrap_err();
    assert!(error.to_string().contains("TLS key"), "{error}");
}
