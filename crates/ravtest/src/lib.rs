//! ravtest
