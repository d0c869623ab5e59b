//! Workspace-wide checks (the `tidy` test), the cross-crate end-to-end tests (`tests/e2e`) and
//! the grid benchmarks (`benches/`). This crate has no library code of its own.
