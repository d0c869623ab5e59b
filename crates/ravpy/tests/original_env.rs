//! A provider and a requester set up the original RDF's way, with a `.env` file holding
//! `RAVENVERSE_URL`, `TOKEN` and `RAVENVERSE_FTP_URL`: the real `ravpy participate` binary
//! joins with it and computes, and `ravop::Client::from_env` runs a graph with it.
//!
//! The requester reads `.env` from the working directory, so the test that moves into the
//! requester's directory is this file's only one that reads the working directory (the other
//! starts ravpy in a directory of its own), and `RAVSOCK_INSECURE` is read from the
//! environment.

use ravop::{Client, Graph, LocalExecutor};
use ravsock::auth::Role;
use ravsock::db::Db;
use std::process::{Command, Stdio};

/// Today's names would win over the file's: they must not leak in from the shell.
const TODAYS: [&str; 3] = ["RAVSOCK_URL", "RAVSOCK_TOKEN", "RAVSOCK_FTP_HOST"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dotenv_in_the_originals_names_drives_provider_and_requester() {
    for name in TODAYS {
        assert!(std::env::var_os(name).is_none(), "unset {name} to run this test: it would win over the .env file");
    }
    let dir = tempfile::tempdir().unwrap();
    let database_url = ravsock::db::scratch_database_url(dir.path()).await.unwrap();
    let db = Db::connect(&database_url).await.unwrap();
    let requester = db.create_account("ported-requester", Role::Requester).await.unwrap();
    let provider = db.create_account("ported-provider", Role::Provider).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ravsock::config::Config {
        bind: listener.local_addr().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url),
        window: 16,
        max_attempts: 3,
        quarantine_after: 3,
        quarantine_secs: 600,
        deadline_base_ms: 30_000,
        deadline_per_op_ms: 10,
        slots_per_provider: 2,
        ftp_bind: "127.0.0.1:0".parse().unwrap(),
        ftp_passive_from: 49152,
        ftp_passive_to: 65535,
        // Small, so the 64 KiB input below travels through ravftp, at the .env's FTP host.
        inline_limit: 16 << 10,
        ftp_home_quota: ravftp::DEFAULT_HOME_QUOTA,
        max_op_bytes: ravsock::validate::DEFAULT_MAX_OP_BYTES,
        result_retention_secs: ravsock::config::DEFAULT_RESULT_RETENTION_SECS,
        ftp_file_retention_secs: ravsock::config::DEFAULT_FTP_FILE_RETENTION_SECS,
        tls_cert: None,
        tls_key: None,
        accounting: ravsock::config::Accounting::Off,
        heartbeat_interval_ms: ravsock::config::DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeat_timeout_ms: ravsock::config::DEFAULT_HEARTBEAT_TIMEOUT_MS,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ravsock::run(config, listener, async move {
        let _ = stopped.await;
    }));

    // The provider: ravpy's .env.example, filled in.
    let provider_dir = dir.path().join("provider");
    std::fs::create_dir(&provider_dir).unwrap();
    let dotenv = format!("RAVENVERSE_URL={url}\nRAVENVERSE_FTP_URL=127.0.0.1\nTOKEN=\"{provider}\"\n");
    std::fs::write(provider_dir.join(".env"), dotenv).unwrap();
    let mut ravpy = Command::new(env!("CARGO_BIN_EXE_ravpy"));
    ravpy
        .args(["participate", "--max-subgraphs", "1"])
        .current_dir(&provider_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for name in TODAYS {
        ravpy.env_remove(name);
    }
    let child = ravpy.spawn().expect("ravpy starts");
    let mut provider_exit = tokio::task::spawn_blocking(move || child.wait_with_output());

    // The requester: ravop's README settings, in its own directory.
    let requester_dir = dir.path().join("requester");
    std::fs::create_dir(&requester_dir).unwrap();
    std::fs::write(
        requester_dir.join(".env"),
        format!("RAVENVERSE_URL={url}\nRAVENVERSE_FTP_HOST=127.0.0.1\nTOKEN={requester}\n"),
    )
    .unwrap();
    std::env::set_current_dir(&requester_dir).unwrap();
    let client = Client::from_env().await.expect("the original's names are read");

    let graph = Graph::new("ported");
    let big = graph.t((0..8192).map(f64::from).collect::<Vec<f64>>());
    let b = graph.t(vec![5.0, 22.0, 7.0]);
    (big.sum(Default::default()) + &b).persist("c");
    // A provider that could not read its settings exits at once: that ends the test with its
    // words rather than leaving the graph waiting. One that exits cleanly has computed its
    // subgraph, and may well leave before the requester hears that the graph is done.
    let compute = client.compute(&graph);
    tokio::pin!(compute);
    let (answer, exit) = tokio::select! {
        answer = &mut compute => (answer, provider_exit.await.unwrap().unwrap()),
        exit = &mut provider_exit => {
            let exit = exit.unwrap().unwrap();
            assert!(
                exit.status.success(),
                "ravpy left before the graph ran ({}): {}",
                exit.status,
                String::from_utf8_lossy(&exit.stderr)
            );
            (compute.await, exit)
        }
    };
    let (_, results) = answer.expect("the graph runs on the .env provider");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.array::<f64>("c").unwrap(), local.array::<f64>("c").unwrap());
    // The provider leaves after its one subgraph, cleanly.
    assert!(exit.status.success(), "ravpy exited with {}: {}", exit.status, String::from_utf8_lossy(&exit.stderr));
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// `RAVSOCK_INSECURE` in the environment is read as the boolean it says (1/true/yes/on or
/// 0/false/no/off) and anything else is refused by name. 0.0.0.0 is not a loopback name, so
/// plain HTTP to it needs the permission, yet on Linux a connection to it reaches this
/// machine's listener: the test's traffic stays on the host.
#[test]
fn ravsock_insecure_from_the_environment_allows_plain_http_to_another_host() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://0.0.0.0:{}", listener.local_addr().unwrap().port());
    let dir = tempfile::tempdir().unwrap();
    let list_graphs = |insecure: Option<&str>| {
        let mut ravpy = Command::new(env!("CARGO_BIN_EXE_ravpy"));
        ravpy
            .arg("list-graphs")
            .current_dir(dir.path())
            .env("RAVSOCK_URL", &url)
            .env("RAVSOCK_TOKEN", "not-a-real-token")
            .env_remove("RAVSOCK_INSECURE")
            .env_remove("RAVSOCK_CA_CERT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(value) = insecure {
            ravpy.env("RAVSOCK_INSECURE", value);
        }
        ravpy
    };
    for refused in [None, Some("0"), Some("false")] {
        let out = list_graphs(refused).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("refusing to send the token in clear text"),
            "{refused:?}: {stderr}"
        );
    }
    let out = list_graphs(Some("maybe")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--insecure"), "{stderr}");
    // Whichever comes first: the request at the listener, or ravpy exiting without sending it.
    for allowed in ["1", "true"] {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut child = list_graphs(Some(allowed)).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let arrived = tx.clone();
        let accepting = listener.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = arrived.send(accepting.accept().map(|_| String::new()).map_err(|e| e.to_string()));
        });
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut { stderr }, &mut text);
            let _ = tx.send(Err(format!("ravpy ended first: {text}")));
        });
        let first = rx.recv().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(first.is_ok(), "RAVSOCK_INSECURE={allowed}: {first:?}");
    }
}
