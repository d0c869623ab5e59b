//! Server and client together on loopback: transfers are byte-exact, logins are checked,
//! sessions cannot leave their home.

use crate::server::{ServerConfig, serve};
use crate::{FtpClient, FtpError, Users};
use ravproto::messages::FtpCredentials;
use std::sync::Arc;

struct Running {
    users: Arc<Users>,
    port: u16,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Running {
    start_with(ServerConfig::default()).await
}

async fn start_with(config: ServerConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let users = Arc::new(Users::new(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, users.clone(), config, async {
        let _ = stopped.await;
    }));
    Running { users, port, _dir: dir, _stop: stop }
}

fn credentials(running: &Running, user: &str) -> FtpCredentials {
    let issued = running.users.issue(user).unwrap();
    FtpCredentials { port: running.port, user: issued.user, password: issued.password, inline_limit: 0 }
}

#[tokio::test]
async fn transfers_are_byte_exact_in_both_directions() {
    let running = start().await;
    let creds = credentials(&running, "alice");
    let mut client = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap();
    // Every byte value, LF and CR included (ASCII mode would rewrite them).
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    client.put("t.ravv", &bytes).await.unwrap();
    assert_eq!(std::fs::read(running.users.home("alice").unwrap().join("t.ravv")).unwrap(), bytes);
    assert_eq!(client.get("t.ravv", bytes.len() as u64).await.unwrap(), bytes);
    let wrong_len = client.get("t.ravv", 5).await.unwrap_err();
    assert!(matches!(wrong_len, FtpError::Length { got: 3_000_000, .. }), "{wrong_len}");
    client.delete("t.ravv").await.unwrap();
    assert!(!running.users.home("alice").unwrap().join("t.ravv").exists());
    client.quit().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_refused() {
    let running = start().await;
    let mut creds = credentials(&running, "bob");
    creds.password = "not-the-password".into();
    let error = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap_err();
    assert!(matches!(error, FtpError::Ftp { action: "login", .. }), "{error}");
    creds.user = "nobody".into();
    assert!(FtpClient::connect("127.0.0.1", &creds, None).await.is_err());
    // A revoked user cannot log in any more, and its home is gone.
    let creds = credentials(&running, "carol");
    let home = running.users.home("carol").unwrap();
    running.users.revoke("carol");
    assert!(!home.exists());
    assert!(FtpClient::connect("127.0.0.1", &creds, None).await.is_err());
}

#[tokio::test]
async fn paths_outside_the_home_are_refused() {
    let running = start().await;
    let alice = credentials(&running, "alice");
    let _bob = credentials(&running, "bob");
    std::fs::write(running.users.home("bob").unwrap().join("secret.ravv"), b"bob's").unwrap();
    std::fs::write(running.users.root().join("root-file"), b"server's").unwrap();
    let mut client = FtpClient::connect("127.0.0.1", &alice, None).await.unwrap();
    for path in
        ["../bob/secret.ravv", "/bob/secret.ravv", "../root-file", "/../root-file", "/etc/passwd", "../../etc/passwd"]
    {
        let got = client.get_path(path).await;
        assert!(got.is_err(), "{path} was served: {:?}", got.map(|b| String::from_utf8_lossy(&b).into_owned()));
    }
    // The client refuses names with separators before asking.
    assert!(matches!(client.put("../x", b"x").await, Err(FtpError::BadName(_))));
    client.quit().await;
}

#[test]
fn user_names_are_checked_and_passwords_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let users = Users::new(dir.path()).unwrap();
    for bad in ["", "../x", "a/b", "a b", &"x".repeat(65)] {
        assert!(users.issue(bad).is_err(), "{bad:?} accepted");
    }
    let issued = users.issue("p-1").unwrap();
    assert!(users.verify("p-1", &issued.password));
    assert!(!users.verify("p-1", "guess"));
    // Re-issuing replaces the password.
    let again = users.issue("p-1").unwrap();
    assert!(!users.verify("p-1", &issued.password));
    assert!(users.verify("p-1", &again.password));
    assert!(!format!("{again:?}").contains(&again.password), "Debug must not show the password");
}

#[test]
fn the_ftp_host_is_the_ravsock_host() {
    use crate::client::host_of_url;
    assert_eq!(host_of_url("http://127.0.0.1:9999"), "127.0.0.1");
    assert_eq!(host_of_url("http://raven.example:80/base"), "raven.example");
    assert_eq!(host_of_url("https://user@[::1]:9999"), "::1");
    assert_eq!(host_of_url("localhost"), "localhost");
}

#[tokio::test]
async fn an_upload_replaces_the_file_and_never_writes_into_a_linked_one() {
    let running = start().await;
    let creds = credentials(&running, "dora");
    let home = running.users.home("dora").unwrap();
    // What ravsock does when it lends a stored value: a hard link into the home.
    let stored = home.parent().unwrap().join("stored.ravv");
    std::fs::write(&stored, b"the stored value").unwrap();
    std::fs::hard_link(&stored, home.join("lent.ravv")).unwrap();
    let mut client = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap();
    client.put("lent.ravv", b"overwritten").await.unwrap();
    assert_eq!(client.get("lent.ravv", 11).await.unwrap(), b"overwritten");
    assert_eq!(std::fs::read(&stored).unwrap(), b"the stored value");
    client.quit().await;
}

#[tokio::test]
async fn values_travel_whole_and_malformed_files_are_refused() {
    use ravproto::{TensorData, Value};
    let running = start().await;
    let creds = credentials(&running, "erin");
    let home = running.users.home("erin").unwrap();
    let mut client = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap();
    let tensor = Value::Tensor(TensorData::from_f64(vec![3, 2], &[1.0, f64::NAN, -0.0, 4.5, 1e-300, 6.0]).unwrap());
    let list =
        Value::List(vec![tensor.clone(), Value::Tensor(TensorData::from_bool(vec![2], &[true, false]).unwrap())]);
    for value in [&tensor, &list] {
        client.put_value("v.ravv", value).await.unwrap();
        assert_eq!(std::fs::read(home.join("v.ravv")).unwrap(), value.encode_binary());
        assert_eq!(&client.get_value("v.ravv", value.encoded_len()).await.unwrap(), value);
    }
    // Every refusal comes before a buffer of the announced size is allocated, or after the
    // bytes are counted; each one on a fresh session (a refused transfer is abandoned).
    let encoded = tensor.encode_binary();
    let mut bad_bool = Value::Tensor(TensorData::from_bool(vec![2], &[true, false]).unwrap()).encode_binary();
    *bad_bool.last_mut().unwrap() = 7;
    let cases: Vec<(&str, Vec<u8>, u64, &str)> = vec![
        ("announced longer", encoded.clone(), encoded.len() as u64 + 8, "another length"),
        ("truncated data", encoded[..encoded.len() - 1].to_vec(), encoded.len() as u64, "expected"),
        ("trailing bytes", [encoded.as_slice(), b"xx"].concat(), encoded.len() as u64, "got 77"),
        ("truncated header", encoded[..14].to_vec(), encoded.len() as u64, "expected"),
        ("not a value", b"hello".to_vec(), 5, "starts with T or L"),
        ("bad bool", bad_bool.clone(), bad_bool.len() as u64, "bool"),
    ];
    for (case, bytes, announced, says) in cases {
        std::fs::write(home.join("bad.ravv"), &bytes).unwrap();
        let mut client = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap();
        let error = client.get_value("bad.ravv", announced).await.expect_err(case).to_string();
        assert!(error.contains(says), "{case}: {error}");
    }
    client.quit().await;
}

#[tokio::test]
async fn only_failures_of_the_server_or_the_network_are_transient() {
    let running = start().await;
    let mut creds = credentials(&running, "dora");
    // A server that is not there (yet): worth trying again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused =
        FtpClient::connect("127.0.0.1", &FtpCredentials { port: closed, ..creds.clone() }, None).await.unwrap_err();
    assert!(refused.is_transient(), "{refused}");
    // A file that ends early is a transfer cut off; one that is too long is not.
    let mut client = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap();
    client.put("short.ravv", &[1, 2, 3]).await.unwrap();
    let short = client.get("short.ravv", 10).await.unwrap_err();
    assert!(short.is_transient(), "{short}");
    let long = client.get("short.ravv", 2).await.unwrap_err();
    assert!(!long.is_transient(), "{long}");
    // The server's refusals stand.
    let missing = client.get("missing.ravv", 3).await.unwrap_err();
    assert!(!missing.is_transient(), "{missing}");
    let bad_name = client.get("../x.ravv", 3).await.unwrap_err();
    assert!(!bad_name.is_transient(), "{bad_name}");
    client.quit().await;
    creds.password = "wrong".into();
    let login = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap_err();
    assert!(!login.is_transient(), "{login}");
}

#[tokio::test]
async fn a_home_holds_at_most_its_quota_and_an_upload_past_it_leaves_nothing() {
    let running = start_with(ServerConfig { home_quota: 3 << 20, ..ServerConfig::default() }).await;
    let creds = credentials(&running, "alice");
    let home = running.users.home("alice").unwrap();
    let mut client = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap();
    let two_mib = vec![7u8; 2 << 20];
    client.put("a.ravv", &two_mib).await.unwrap();
    // Replacing a file frees what it held first.
    client.put("a.ravv", &two_mib).await.unwrap();
    // 2 + 2 MiB: past the 3 MiB quota. Refused with 552, and no partial file is left.
    let refused = client.put("b.ravv", &two_mib).await.unwrap_err();
    assert!(refused.to_string().contains("552"), "{refused}");
    assert!(!home.join("b.ravv").exists(), "the partial upload was removed");
    // The session goes on; what fits still goes in.
    let mut client = FtpClient::connect("127.0.0.1", &creds, None).await.unwrap();
    client.put("c.ravv", &[1u8; 1 << 20]).await.unwrap();
    client.delete("a.ravv").await.unwrap();
    client.put("b.ravv", &two_mib).await.unwrap();
    client.quit().await;
}
