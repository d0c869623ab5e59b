//! Jobs end to end: ravsock and in-process providers map a WebAssembly work function
//! (`examples/work/square.wat`) over slices. Results equal `local_exec`'s, every slice's
//! events arrive once (pushed over `/requester` and read by long polls), an open job takes slices from a second client, a compute group keeps
//! other providers out, hostile modules fail their slices with typed reasons while the
//! providers go on, a provider that leaves holding slices has them reassigned, the provider
//! that finishes the job is told it ended (and lets its work function go), a job survives a
//! restart of ravsock, big slices and results travel through ravftp whole (and a missing or
//! altered upload is refused).

use crate::stack::{Stack, silent_on};
use futures_util::FutureExt;
use ravop::jobs::{
    ComputeGroup, JobEvent, JobEvents, JobHandle, Limits, Outcome, SliceFailure, SliceOutcome, WorkFunction, slice,
};
use ravproto::jobs::{EVENT_SLICES, JobState};
use ravproto::provider::RejectionCode;
use std::collections::BTreeMap;

fn work(entry: &str) -> WorkFunction {
    let module = wat::parse_str(include_str!("../../../../examples/work/square.wat")).expect("the module parses");
    WorkFunction::wasm(module, entry)
}

/// Inputs -5, -4, ..., n - 6: the first five fail (negative), the rest are squared.
fn inputs(n: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| slice::f64(i as f64 - 5.0)).collect()
}

/// Reads a job's events to its end: per slice, how many result/error events and console
/// lines came, and the final state.
async fn drain(handle: &JobHandle) -> (BTreeMap<u64, (u32, u32)>, JobState) {
    drain_events(handle.events()).await
}

async fn drain_events(mut events: JobEvents) -> (BTreeMap<u64, (u32, u32)>, JobState) {
    let mut per_slice: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    let mut state = None;
    while let Some(event) = events.next().await.expect("events") {
        match event {
            JobEvent::Result { slice, .. } | JobEvent::Error { slice, .. } => {
                per_slice.entry(slice).or_default().0 += 1
            }
            JobEvent::Console { slice, .. } => per_slice.entry(slice).or_default().1 += 1,
            JobEvent::Complete { state: end, .. } => state = Some(end),
            _ => {}
        }
    }
    (per_slice, state.expect("a complete event ends the events"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_on_two_providers_equals_local_exec_with_each_slice_heard_once() {
    let stack = Stack::start(30_000).await;
    let mut a = stack.provider(1.0);
    let mut b = stack.provider(1.0);
    a.joined().await;
    b.joined().await;
    let client = stack.client().await;
    let n = 2_000;
    let handle = client.compute_for(inputs(n), work("square")).exec().await.expect("accepted");
    // Pushed over /requester while the job runs, and read again afterwards by long polls.
    let (per_slice, state) = drain_events(handle.subscribe().await.expect("subscribed")).await;
    assert_eq!(state, JobState::Complete);
    assert_eq!(per_slice.len() as u64, n, "every slice is heard of");
    assert!(per_slice.values().all(|&(outcomes, lines)| outcomes == 1 && lines == 1), "each slice once");
    assert_eq!(drain(&handle).await, (per_slice, state), "the long poll reads the same events");
    let grid = handle.wait().await.expect("results");
    let local = client.compute_for(inputs(n), work("square")).local_exec().results;
    assert_eq!(grid, local);
    assert_eq!(slice::to_f64(grid[7].as_ref().unwrap()).unwrap(), 4.0);
    assert!(matches!(&grid[0], Err(SliceFailure::Failed { why }) if why.contains("negative")));
    let status = handle.status().await.expect("status");
    assert_eq!((status.counts.total, status.counts.computed, status.counts.failed), (n, n - 5, 5));
    // Every slice ran once. (Which provider ran how many is not asserted: a join reported is
    // not yet a join the server handled, and one provider may finish 2,000 trivial slices
    // before the other is known; the scheduler's unit tests check the split.)
    let (sa, sb) = (a.stop().await.expect("a"), b.stop().await.expect("b"));
    assert_eq!(sa.slices + sb.slices, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_work_functions_fail_their_slices_with_typed_reasons_and_providers_go_on() {
    let stack = Stack::start(30_000).await;
    let mut provider = stack.provider(1.0);
    provider.joined().await;
    let client = stack.client().await;
    let small = Limits { fuel: 2_000_000, ..Limits::default() };
    let spin = client.compute_for(inputs(8), work("spin")).limits(small).exec().await.unwrap().wait().await.unwrap();
    assert!(spin.iter().all(|r| matches!(r, Err(SliceFailure::OutOfFuel { .. }))), "{spin:?}");
    let trap = client.compute_for(inputs(3), work("trap")).exec().await.unwrap().wait().await.unwrap();
    assert!(trap.iter().all(|r| matches!(r, Err(SliceFailure::Trap { .. }))), "{trap:?}");
    let not_wasm = WorkFunction::wasm(b"\0asm\x01\0\0\0garbage".to_vec(), "square");
    let broken = client.compute_for(inputs(3), not_wasm).exec().await.unwrap().wait().await.unwrap();
    assert!(broken.iter().all(|r| matches!(r, Err(SliceFailure::NotWasm { .. }))), "{broken:?}");
    let missing = client.compute_for(inputs(2), work("nope")).exec().await.unwrap().wait().await.unwrap();
    assert!(missing.iter().all(|r| matches!(r, Err(SliceFailure::MissingExport { .. }))), "{missing:?}");
    // A module that is not even WebAssembly is refused by the server before it is stored.
    let shell = WorkFunction::wasm(b"#!/bin/sh\nrm -rf /".to_vec(), "work");
    let refused = client.compute_for(inputs(1), shell).exec().await.expect_err("refused");
    assert!(refused.to_string().contains("not a WebAssembly module"), "{refused}");
    // The provider still serves.
    let good = client.compute_for(inputs(10), work("square")).exec().await.unwrap().wait().await.unwrap();
    assert_eq!(slice::to_f64(good[9].as_ref().unwrap()).unwrap(), 16.0);
    assert!(provider.task.now_or_never().is_none(), "the provider is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_job_of_a_group_takes_slices_from_a_second_client_and_outsiders_get_none() {
    let stack = Stack::start(30_000).await;
    let client = stack.client().await;
    let lab = ComputeGroup::new("lab", "s3cret-lab");
    let handle = client
        .compute_for(inputs(20), work("square"))
        .compute_groups([lab.clone()])
        .auto_close(false)
        .exec()
        .await
        .expect("accepted");
    // Started after the job, which created the group.
    let mut member = stack.provider_in_groups(vec![lab.clone()]);
    let mut outsider = stack.provider(5.0);
    member.joined().await;
    outsider.joined().await;
    let impostor = stack.provider_in_groups(vec![ComputeGroup::new("lab", "guess")]);
    match impostor.task.await.expect("task") {
        Err(ravpy::Error::Rejected { code: RejectionCode::Group, .. }) => {}
        other => panic!("a wrong secret must be rejected: {other:?}"),
    }
    let second = stack.client().await;
    let added = second.job(handle.id()).add_slices(inputs(30).split_off(20)).await.expect("added");
    assert_eq!((added.first, added.count), (20, 10));
    // Not complete while open: the results arrive, the job waits for more.
    let mut events = handle.events();
    let mut outcomes = 0;
    while outcomes < 30 {
        if let JobEvent::Result { .. } | JobEvent::Error { .. } = events.next().await.unwrap().unwrap() {
            outcomes += 1;
        }
    }
    let page = second.job(handle.id()).results(20..25).await.expect("range");
    assert_eq!(page.iter().map(|r| r.slice).collect::<Vec<_>>(), vec![20, 21, 22, 23, 24]);
    assert_eq!(handle.status().await.unwrap().state, JobState::Open);
    second.job(handle.id()).close().await.expect("closed");
    let results = handle.wait().await.expect("complete");
    assert_eq!(results.len(), 30);
    // Closed jobs take no slices.
    assert!(second.job(handle.id()).add_slices(inputs(1)).await.is_err());
    let (m, o) = (member.stop().await.unwrap(), outsider.stop().await.unwrap());
    assert_eq!((m.slices, o.slices), (30, 0), "only the group's provider computes the group's job");
    // Another requester cannot see it.
    let stranger = ravop::Client::connect_trusting(&stack.url, &stack.other_requester, &stack.trust).await.unwrap();
    assert!(stranger.job(handle.id()).status().await.is_err());
    // Nor follow its events: the push is refused with the same typed error.
    let mut pushed = stranger.job(handle.id()).subscribe().await.expect("the connection opens");
    match pushed.next().await {
        Err(ravop::Error::Server { code: ravproto::messages::ErrorCode::NotFound, .. }) => {}
        other => panic!("another requester's job must not be followed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slices_of_a_provider_that_leaves_are_reassigned_and_a_job_survives_a_restart() {
    let mut stack = Stack::start(30_000).await;
    let client = stack.client().await;
    let (silent, mut got) = silent_on(&stack, &stack.provider_token, EVENT_SLICES).await;
    let handle = client.compute_for(inputs(40), work("square")).exec().await.expect("accepted");
    got.recv().await.expect("the silent provider got a bundle");
    // It leaves holding its bundles: they go to the next provider.
    silent.disconnect().await.unwrap();
    let mut good = stack.provider(1.0);
    good.joined().await;
    let results = handle.wait().await.expect("complete");
    let local: Vec<SliceOutcome> = client.compute_for(inputs(40), work("square")).local_exec().results;
    assert_eq!(results, local);
    // The job ended: the provider that ran it is told so, and lets its work function go.
    let told = async {
        while let Some(event) = good.events.recv().await {
            if event == (ravpy::ProviderEvent::JobEnded { job: handle.id().0 }) {
                return;
            }
        }
        panic!("the provider stopped before it was told the job ended");
    };
    // A bound on a hang, not a wait for something to happen: the message is on its way.
    tokio::time::timeout(std::time::Duration::from_secs(60), told).await.expect("told that the job ended");
    good.stop().await.unwrap();

    // A job left half done by a server that stops is finished after its restart.
    let (silent, mut got) = silent_on(&stack, &stack.provider_token, EVENT_SLICES).await;
    let id = client.compute_for(inputs(25), work("square")).exec().await.expect("accepted").id();
    got.recv().await.expect("a bundle went out");
    drop(silent);
    stack.restart(30_000).await;
    let client = stack.client().await;
    let mut provider = stack.provider(1.0);
    provider.joined().await;
    let (per_slice, state) = drain(&client.job(id)).await;
    assert_eq!(state, JobState::Complete);
    assert_eq!(per_slice.len(), 25);
    assert!(per_slice.values().all(|&(outcomes, _)| outcomes == 1));
    provider.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slices_nobody_answers_fail_as_abandoned_and_the_job_completes() {
    let stack = Stack::start(30_000).await;
    let db = ravsock::db::Db::connect(&stack.database_url).await.unwrap();
    let client = stack.client().await;
    let handle = client.compute_for(inputs(3), work("square")).exec().await.expect("accepted");
    // Five providers, each of its own account (three abandons in a row quarantine one), each
    // taking both bundles of the job and leaving with them: two bundles abandoned at once.
    for round in 0..ravsock::scheduler::jobs::MAX_SLICE_HANDOUTS {
        let token = db.create_account(&format!("leaver-{round}"), ravsock::auth::Role::Provider).await.unwrap();
        let (leaver, mut got) = silent_on(&stack, &token, EVENT_SLICES).await;
        got.recv().await.expect("a bundle");
        got.recv().await.expect("the second bundle");
        leaver.disconnect().await.unwrap();
    }
    let results = handle.wait().await.expect("the job completes");
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| matches!(r, Err(SliceFailure::Abandoned { handouts: 5 }))), "{results:?}");
}

/// A slice of `len` bytes whose pattern depends on `seed`, and the sum of its bytes.
fn big_slice(len: usize, seed: u64) -> (Vec<u8>, i64) {
    let bytes: Vec<u8> = (0..len as u64).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect();
    let sum = bytes.iter().map(|&b| i64::from(b)).sum();
    (bytes, sum)
}

fn total(outcome: &SliceOutcome) -> i64 {
    i64::from_le_bytes(outcome.as_ref().expect("a result")[..8].try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn big_slices_travel_through_ravftp_whole_and_leave_nothing_behind() {
    let stack = Stack::start(30_000).await;
    let mut a = stack.provider(1.0);
    let mut b = stack.provider(1.0);
    a.joined().await;
    b.joined().await;
    let client = stack.client().await;
    // Small and big slices mixed, one big slice twice (one upload), one just past the inline
    // limit and one of 3 MiB.
    let sizes = [10, 3 << 20, 200, ravproto::jobs::MAX_SLICE_BYTES + 1, 1 << 20, 7];
    let mut slices: Vec<(Vec<u8>, i64)> = sizes.iter().enumerate().map(|(i, &len)| big_slice(len, i as u64)).collect();
    slices.push(slices[1].clone());
    let inputs: Vec<Vec<u8>> = slices.iter().map(|(bytes, _)| bytes.clone()).collect();
    let handle = client.compute_for(inputs.clone(), work("sum")).exec().await.expect("accepted");
    let grid = handle.wait().await.expect("results");
    assert_eq!(grid, client.compute_for(inputs, work("sum")).local_exec().results);
    let sums: Vec<i64> = grid.iter().map(total).collect();
    assert_eq!(sums, slices.iter().map(|(_, sum)| *sum).collect::<Vec<_>>(), "every byte arrived");
    // The job's big slices left the blob store with it, and its uploads the requester's home.
    let data = stack.data_dir();
    let kept = walk(&data.join(format!("blobs/jobs/{}", handle.id().0)));
    assert!(kept.iter().all(|name| !name.starts_with("in-")), "the job's big slices are removed: {kept:?}");
    let leftovers: Vec<_> = walk(&data.join("ftp")).into_iter().filter(|name| name.ends_with(".bin")).collect();
    assert!(leftovers.is_empty(), "no upload or lent slice is left in a home: {leftovers:?}");

    // An open job takes a big slice from a second client, read back by range.
    let open = client.compute_for(vec![slice::f64(1.0)], work("sum")).auto_close(false).exec().await.unwrap();
    let second = stack.client().await;
    let (bytes, sum) = big_slice(2 << 20, 9);
    let added = second.job(open.id()).add_slices([vec![5; 3], bytes]).await.expect("added");
    assert_eq!((added.first, added.count), (1, 2));
    second.job(open.id()).close().await.expect("closed");
    let results = open.wait().await.expect("results");
    assert_eq!((total(&results[1]), total(&results[2])), (15, sum));
    let (sa, sb) = (a.stop().await.expect("a"), b.stop().await.expect("b"));
    assert_eq!(sa.slices + sb.slices, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_big_slice_not_uploaded_or_not_matching_its_digest_is_refused_with_a_reason() {
    use ravproto::jobs::{BigSlice, Blob, JobSpec, JobWork};
    let stack = Stack::start(30_000).await;
    let module = wat::parse_str(include_str!("../../../../examples/work/square.wat")).unwrap();
    let spec = |sha256: String| JobSpec {
        work: JobWork {
            module: Blob(module.clone()),
            entry: "sum".into(),
            args: Blob::default(),
            files: vec![],
            limits: Limits::default(),
        },
        requirements: Default::default(),
        groups: vec![],
        slice_payment_offer: 0,
        public: None,
        auto_close: true,
        slices: vec![vec![1], vec![]],
        big: vec![BigSlice { at: 1, len: 100_000, sha256 }],
    };
    let jobs = format!("{}/v1/jobs", stack.url);
    let post = |spec: JobSpec| {
        let request = crate::stack::http().post(&jobs).bearer_auth(&stack.requester).json(&spec);
        async move {
            let answer = request.send().await.unwrap();
            (answer.status().as_u16(), answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Never uploaded.
    let (status, body) = post(spec("ab".repeat(32))).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("no file slice-abab"), "{body}");
    // Uploaded under a name whose digest is not its bytes': the server reads them and refuses.
    let credentials = crate::distributed::reqwest_credentials(&stack, &stack.requester).await;
    let mut ftp = ravftp::FtpClient::connect("127.0.0.1", &credentials, None).await.expect("requester logs in");
    let named = "cd".repeat(32);
    ftp.put(&ravproto::files::slice_upload(&named), &[3; 100_000]).await.unwrap();
    ftp.quit().await;
    let (status, body) = post(spec(named)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("another digest"), "{body}");
    // Nothing was stored, and no staging directory is left.
    let listed = crate::stack::http().get(&jobs).bearer_auth(&stack.requester).send().await.unwrap();
    assert_eq!(listed.json::<serde_json::Value>().await.unwrap()["jobs"], serde_json::json!([]));
    let staging = std::fs::read_dir(stack.data_dir().join("blobs/jobs")).map_or(0, |dir| dir.count());
    assert_eq!(staging, 0, "staging directories are removed");
}

/// The names of the files under `dir`, at any depth.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            true => names.extend(walk(&entry.path())),
            false => names.push(entry.file_name().to_string_lossy().into_owned()),
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn big_results_come_back_through_ravftp_by_events_and_by_range() {
    let stack = Stack::start(30_000).await;
    let mut provider = stack.provider(1.0);
    provider.joined().await;
    let client = stack.client().await;
    // 200 results of 512 KiB: the first bundle's (100 of them, 50 MiB) would pass the server's
    // 64 MiB message limit as base64. Each goes through ravftp instead, and the answers come
    // in parts of at most 16 MiB.
    let n = 200;
    let size = 512 << 10;
    let mut inputs = vec![(size as i64).to_le_bytes().to_vec(); n];
    inputs[7] = 8i64.to_le_bytes().to_vec();
    let handle = client.compute_for(inputs, work("zeros")).exec().await.expect("accepted");
    let zeros = |bytes: &Vec<u8>, len: usize| bytes.len() == len && bytes.iter().all(|&b| b == 0);
    // By events (`wait`), each stored result fetched as it is read.
    let results = handle.wait().await.expect("results");
    assert_eq!(results.len(), n);
    for (i, result) in results.iter().enumerate() {
        let len = if i == 7 { 8 } else { size };
        assert!(result.as_ref().is_ok_and(|bytes| zeros(bytes, len)), "slice {i}");
    }
    // By range, from a second client.
    let second = stack.client().await;
    let page = second.job(handle.id()).results(5..10).await.expect("a range");
    assert_eq!(page.iter().map(|r| r.slice).collect::<Vec<_>>(), vec![5, 6, 7, 8, 9]);
    assert!(
        page.iter()
            .all(|r| matches!(&r.outcome, Outcome::Value(v) if zeros(&v.0, if r.slice == 7 { 8 } else { size })))
    );
    let status = handle.status().await.expect("status");
    assert_eq!((status.counts.computed, status.counts.failed), (n as u64, 0));
    assert_eq!(provider.stop().await.expect("provider").slices, n as u64, "each slice ran once");
    // The results stay in the blob store; nothing is left in a home.
    let kept = walk(&stack.data_dir().join(format!("blobs/jobs/{}", handle.id().0)));
    assert_eq!(kept.len(), n - 1, "every big result is kept, the small one in the database");
    let leftovers: Vec<_> = walk(&stack.data_dir().join("ftp")).into_iter().filter(|f| f.ends_with(".bin")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
