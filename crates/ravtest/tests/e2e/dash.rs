//! The dashboard in a real browser: Debian's Chromium driven by Playwright
//! (`dash/tests/browser.mjs`, playwright-core from `dash/package-lock.json`). A requester logs
//! in, finds her graph (not bob's), watches its DAG while it waits for a provider, and sees
//! every op turn computed without a reload once one joins; she opens an op and reads the
//! provider that computed it; bob's graph answers 404; a graph of 10,000 ops is drawn as a
//! summary and stays responsive; logging out ends the session.
//! Screenshots land in `target/dash-screenshots/` (CI keeps them).
//!
//! Needs Node.js, `npm ci` in `dash/` and Chromium (`.ci/run` installs both); without them
//! the test fails and says what is missing.

use crate::stack::Stack;
use ravop::Graph;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The workspace's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// What the browser test needs, or why it cannot run.
fn browser_ready(root: &Path) -> Result<PathBuf, String> {
    let chromium = std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!("no Chromium at {} (apt-get install chromium, or set CHROMIUM)", chromium.display()));
    }
    if !root.join("dash/node_modules/playwright-core").exists() {
        return Err("playwright-core is not installed: run `npm ci` in dash/".into());
    }
    Ok(chromium)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_requester_watches_her_graph_compute_in_the_browser() {
    let root = root();
    let chromium = browser_ready(&root).unwrap_or_else(|why| panic!("the browser test cannot run: {why}"));
    let stack = Stack::start(30_000).await;

    // Her graph waits for a provider; bob's is there to be refused.
    let graph = Graph::new("watched");
    let mut x = graph.t(vec![1.0, 2.0, 3.0]);
    for i in 0..12 {
        x = if i % 3 == 0 { (&x * 1.5).abs() } else { &x + 0.5 };
    }
    x.persist("end");
    let client = stack.client().await;
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    let bob = ravop::Client::connect_trusting(&stack.url, &stack.other_requester, &stack.trust).await.unwrap();
    let theirs = Graph::new("bob's secret");
    theirs.t(vec![4.0]).persist("four");
    let other = bob.submit(&theirs).await.unwrap();
    // A graph of 10,000 ops, stored and not run: its page draws a summary.
    let big = Graph::new("ten thousand");
    let mut y = big.t(vec![0.0]);
    while big.len() < 10_000 {
        y = &y + 1.0;
    }
    let big = client.submit(&big).await.unwrap();

    let shots = root.join("target/dash-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = tokio::process::Command::new("node")
        .arg(root.join("dash/tests/browser.mjs"))
        .env("DASH_URL", &stack.url)
        .env("DASH_TOKEN", &stack.requester)
        .env("DASH_GRAPH", id.0.to_string())
        .env("DASH_OTHER_GRAPH", other.0.to_string())
        .env("DASH_BIG_GRAPH", big.0.to_string())
        .env("DASH_PROVIDER", "worker")
        .env("DASH_SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node.js is needed for the browser test)");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut provider = None;
    let mut said = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line == "READY" {
                // The page shows the graph waiting: now a provider computes it.
                provider = Some(stack.provider(1.0));
            }
            said.push(line);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(180), read).await.expect("the browser test ended in time");
    let status = browser.wait().await.unwrap();
    let said = said.join("\n");
    assert!(status.success() && said.ends_with("OK"), "the browser test failed ({status}):\n{said}");
    assert!(provider.is_some(), "the page got as far as the waiting graph");
    for shot in
        ["overview.png", "graphs.png", "graph-waiting.png", "graph-done.png", "other-owner.png", "big-graph.png"]
    {
        assert!(shots.join(shot).metadata().is_ok_and(|m| m.len() > 1_000), "{shot} was saved");
    }
    let local = ravop::LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(
        &client.fetch(id, "end").await.unwrap(),
        local.get("end").unwrap(),
        "the grid's result is the local one"
    );
}
