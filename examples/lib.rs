//! The tutorials are this package's `[[example]]` targets (see `Cargo.toml`); this empty
//! library only gives the package a target of its own.
