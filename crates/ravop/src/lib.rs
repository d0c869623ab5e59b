//! ravop
