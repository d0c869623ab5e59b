//! Workspace-wide checks (the `tidy` test) and, as the distributed path lands, the cross-crate
//! end-to-end tests. This crate has no library code of its own.
