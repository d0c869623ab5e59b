//! Placeholder library so the examples package has a target; the tutorials are the `[[example]]` targets.
