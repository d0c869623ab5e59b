//! The names of bulk-data files: every value file in a ravftp home or in ravsock's blob store
//! is named here, and [`valid_file_name`] is the rule every name must keep.
//!
//! A name says who wrote the file and for what, so two transfers never share one: uploading a
//! value again (a retry) replaces the file under the same name instead of leaving a second.

use crate::ids::{GraphId, OpId};

/// The ending of every value file: one value in [`crate::Value::encode_binary`]'s form.
pub const EXTENSION: &str = "ravv";

/// The ending of a file of raw bytes (a job's big slice): what they mean is the job's.
pub const RAW_EXTENSION: &str = "bin";

/// Whether `name` may name a file in a ravftp home: 1 to 128 characters of `[A-Za-z0-9._-]`,
/// not starting with a dot. No separators, so no path can leave the home directory.
pub fn valid_file_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A big `lin` value a requester uploads before naming it in op `local` (its own id) of `graph`.
pub fn requester_value(graph: GraphId, local: u64) -> String {
    format!("lin-{}-{local}.{EXTENSION}", graph.0)
}

/// An input of `assignment` that ravsock places in the provider's home.
pub fn assignment_input(assignment: u64, op: OpId) -> String {
    format!("in-{assignment}-{}.{EXTENSION}", op.0)
}

/// An output of `assignment` that the provider uploads to its home.
pub fn assignment_output(assignment: u64, op: OpId) -> String {
    format!("out-{assignment}-{}.{EXTENSION}", op.0)
}

/// A persisted result (the value of `op`) that ravsock places in the requester's home.
pub fn result(graph: GraphId, op: OpId) -> String {
    format!("result-{}-{}.{EXTENSION}", graph.0, op.0)
}

/// The stored value of `op` in ravsock's blob store.
pub fn blob(op: OpId) -> String {
    format!("{}.{EXTENSION}", op.0)
}

/// A big slice a requester uploads before naming it by its SHA-256 (64 hex digits) in a job
/// request.
pub fn slice_upload(sha256: &str) -> String {
    format!("slice-{sha256}.{RAW_EXTENSION}")
}

/// The input of `slice` in `bundle` that ravsock places in the provider's home.
pub fn bundle_slice(bundle: u64, slice: u64) -> String {
    format!("jin-{bundle}-{slice}.{RAW_EXTENSION}")
}

/// The result of `slice` in `bundle`, over the inline limit, that the provider uploads to its
/// home.
pub fn bundle_result(bundle: u64, slice: u64) -> String {
    format!("jout-{bundle}-{slice}.{RAW_EXTENSION}")
}

/// The stored result of `slice` of job `job` (its number: `files` sits below `jobs`) that
/// ravsock places in the requester's home.
pub fn job_result(job: u64, slice: u64) -> String {
    format!("jres-{job}-{slice}.{RAW_EXTENSION}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_valid_and_says_what_it_holds() {
        let names = [
            requester_value(GraphId(2), 0),
            assignment_input(7, OpId(11)),
            assignment_output(7, OpId(11)),
            result(GraphId(2), OpId(31)),
            blob(OpId(31)),
            slice_upload(&"ab".repeat(32)),
            bundle_slice(9, 1_000_000),
            bundle_result(9, 3),
            job_result(4, 3),
        ];
        let digest = format!("slice-{}.bin", "ab".repeat(32));
        assert_eq!(
            names,
            [
                "lin-2-0.ravv",
                "in-7-11.ravv",
                "out-7-11.ravv",
                "result-2-31.ravv",
                "31.ravv",
                &digest,
                "jin-9-1000000.bin",
                "jout-9-3.bin",
                "jres-4-3.bin"
            ]
        );
        assert!(names.iter().all(|name| valid_file_name(name)));
    }
}
