//! ravexec
