//! One assignment on a provider: its input files fetched from ravsock's ravftp server, its
//! subgraph computed on a blocking thread, its outputs sent back (those past the inline budget
//! through ravftp), or the assignment given back with the reason so ravsock reassigns it at
//! once instead of waiting for its deadline.

use crate::{ProviderEvent, Summary, compute, report};
use bytes::Bytes;
use ravexec::MemoryBudget;
use ravproto::frame::Frame;
use ravproto::messages::{FileValue, FtpCredentials};
use ravproto::provider::{
    AssignHeader, EVENT_OP_FAILED, EVENT_RESULT, InlineBudget, OpFailedReport, ResultHeader, ResultMessage, SUBGRAPH,
};
use rust_socketio::asynchronous::Client;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where this connection's bulk values go: ravsock's ravftp server.
#[derive(Debug)]
pub(crate) struct Bulk {
    pub(crate) host: String,
    pub(crate) credentials: FtpCredentials,
    /// FTPS, when ravsock is reached over https.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl Bulk {
    async fn connect(&self) -> Result<ravftp::FtpClient, ravftp::FtpError> {
        ravftp::FtpClient::connect(&self.host, &self.credentials, self.tls.clone()).await
    }

    /// Downloads (and deletes) a slice's bytes, over `session` (opened on first use and kept
    /// for the bundle's next slices).
    pub(crate) async fn fetch_slice(
        &self,
        session: &mut Option<ravftp::FtpClient>,
        file: &ravproto::jobs::SliceFile,
    ) -> Result<Vec<u8>, String> {
        let client = match session {
            Some(client) => client,
            None => session.insert(self.connect().await.map_err(|e| e.to_string())?),
        };
        let bytes = client.get(&file.name, file.len).await.map_err(|e| e.to_string())?;
        let _ = client.delete(&file.name).await;
        Ok(bytes)
    }

    /// Uploads the results of `results` over the inline limit to this connection's home
    /// ([`ravproto::files::bundle_result`]) and names them `Stored` instead; answers why not,
    /// if the uploads failed.
    pub(crate) async fn send_big_results(&self, results: &mut ravproto::jobs::BundleResults) -> Result<(), String> {
        use ravproto::jobs::{MAX_SLICE_BYTES, Outcome};
        let mut session: Option<ravftp::FtpClient> = None;
        for done in &mut results.results {
            let Outcome::Value(value) = &done.outcome else { continue };
            if value.0.len() <= MAX_SLICE_BYTES {
                continue;
            }
            let client = match &mut session {
                Some(client) => client,
                None => session.insert(self.connect().await.map_err(|e| e.to_string())?),
            };
            let name = ravproto::files::bundle_result(results.bundle, done.slice);
            client.put(&name, &value.0).await.map_err(|e| e.to_string())?;
            done.outcome = Outcome::Stored { len: value.0.len() as u64 };
        }
        if let Some(client) = session {
            client.quit().await;
        }
        Ok(())
    }

    /// Downloads (and deletes) the input files of an assignment into its frame.
    async fn fetch_inputs(&self, frame: &mut Frame<AssignHeader>) -> Result<(), String> {
        let files = std::mem::take(&mut frame.header.files);
        if files.is_empty() {
            return Ok(());
        }
        let mut ftp = self.connect().await.map_err(|e| e.to_string())?;
        for file in files {
            let value = ftp.get_value(&file.name, file.len).await.map_err(|e| e.to_string())?;
            let _ = ftp.delete(&file.name).await;
            frame.header.inputs.push(file.op);
            frame.values.push(value);
        }
        ftp.quit().await;
        Ok(())
    }

    /// Uploads the outputs that do not go inline (longer than the inline limit, or past the
    /// frame's budget) and lists them in the header instead.
    async fn send_outputs(&self, frame: &mut Frame<ResultHeader>) -> Result<(), String> {
        let mut budget = InlineBudget::new(self.credentials.inline_limit);
        let mut ftp: Option<ravftp::FtpClient> = None;
        let (mut outputs, mut values) = (Vec::new(), Vec::new());
        for (op, value) in std::mem::take(&mut frame.header.outputs).into_iter().zip(std::mem::take(&mut frame.values))
        {
            if budget.admit(value.encoded_len()) {
                outputs.push(op);
                values.push(value);
                continue;
            }
            let client = match &mut ftp {
                Some(client) => client,
                None => ftp.insert(self.connect().await.map_err(|e| e.to_string())?),
            };
            let name = ravproto::files::assignment_output(frame.header.assignment, op);
            client.put_value(&name, &value).await.map_err(|e| e.to_string())?;
            frame.header.files.push(FileValue { op, name, len: value.encoded_len() });
        }
        if let Some(client) = ftp {
            client.quit().await;
        }
        frame.header.outputs = outputs;
        frame.values = values;
        Ok(())
    }
}

/// What an assignment task needs from the connection.
pub(crate) struct Task {
    pub(crate) client: Client,
    pub(crate) summary: Arc<Mutex<Summary>>,
    pub(crate) withdrawn: Arc<Mutex<BTreeSet<u64>>>,
    pub(crate) events: Option<mpsc::UnboundedSender<ProviderEvent>>,
    pub(crate) ftp: Option<Arc<Bulk>>,
    pub(crate) sessions: Arc<compute::Sessions>,
    /// The most one op may take here.
    pub(crate) budget: MemoryBudget,
}

/// Tells the server an assignment could not be done here, so it reassigns it at once.
async fn give_back(client: &Client, header: &AssignHeader, reason: String) {
    give_back_op(client, header.assignment, header.ops.first().map_or(ravproto::OpId(0), |op| op.id), reason).await;
}

/// [`give_back`] naming the assignment and its op.
async fn give_back_op(client: &Client, assignment: u64, op_id: ravproto::OpId, reason: String) {
    tracing::warn!(assignment, %reason, "giving an assignment back");
    let report =
        OpFailedReport { assignment, op_id, operator: SUBGRAPH.into(), reason, retryable: true, over_budget: None };
    let _ = client.emit(EVENT_OP_FAILED, serde_json::to_value(&report).expect("serializes")).await;
}

/// Decodes an assignment, fetches its input files, computes it on a blocking thread and sends
/// its results (big ones through ravftp), or gives it back with the reason.
pub(crate) async fn handle_assignment(task: Task, bytes: Bytes) {
    let Task { client, summary, withdrawn, events, ftp, sessions, budget } = task;
    let decoded = ravproto::frame::unstuff(&bytes).and_then(|raw| Frame::<AssignHeader>::decode(&raw));
    let mut frame = match decoded {
        Ok(frame) => frame,
        Err(error) => {
            tracing::error!(cause = %error, "undecodable assignment");
            return;
        }
    };
    let assignment = frame.header.assignment;
    let ops = frame.header.ops.len() as u64;
    let started = std::time::Instant::now();
    // Before the input files, which are appended to the values: the checkpoint is last.
    let checkpoint = match frame.take_checkpoint() {
        Ok(checkpoint) => checkpoint,
        Err(error) => {
            give_back(&client, &frame.header, error.to_string()).await;
            return;
        }
    };
    if !frame.header.files.is_empty() {
        let fetched = match &ftp {
            Some(ftp) => ftp.fetch_inputs(&mut frame).await,
            None => Err("input files sent before ftp credentials".into()),
        };
        if let Err(reason) = fetched {
            give_back(&client, &frame.header, format!("cannot download inputs: {reason}")).await;
            return;
        }
    }
    let result = tokio::task::spawn_blocking(move || compute::run(frame, checkpoint, &sessions, budget)).await;
    if withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&assignment) {
        return;
    }
    match result {
        Ok(Ok((mut frame, checkpoint))) => {
            let first_output = frame.header.outputs.first().copied().unwrap_or(ravproto::OpId(0));
            if let Some(ftp) = &ftp
                && let Err(reason) = ftp.send_outputs(&mut frame).await
            {
                // Said at once (the server checks whether its own storage failed): silence
                // would cost this provider a missed deadline.
                give_back_op(&client, assignment, first_output, format!("cannot upload outputs: {reason}")).await;
                return;
            }
            if let Some(checkpoint) = &checkpoint {
                frame.attach_checkpoint(checkpoint);
            }
            let message = serde_json::to_value(ResultMessage::new(&frame)).expect("serializes");
            if let Err(error) = client.emit(EVENT_RESULT, message).await {
                tracing::warn!(assignment, cause = %error, "cannot send results; the server will reassign");
                return;
            }
            let mut summary = summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            summary.subgraphs += 1;
            summary.ops += ops;
            let millis = started.elapsed().as_secs_f64() * 1e3;
            tracing::info!(assignment, ops, ms = millis, total_ops = summary.ops, "subgraph computed");
            report(&events, ProviderEvent::Computed { assignment, ops, millis });
        }
        Ok(Err(report)) => {
            tracing::warn!(assignment, op = %report.op_id, reason = %report.reason, "op failed");
            let _ = client.emit(EVENT_OP_FAILED, serde_json::to_value(&report).expect("serializes")).await;
            crate::report(&events, ProviderEvent::Failed { assignment, reason: report.reason });
        }
        Err(error) => tracing::error!(assignment, cause = %error, "compute task panicked"),
    }
}
