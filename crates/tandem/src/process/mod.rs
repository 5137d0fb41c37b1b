//! The process transport: one-shot scripts and a supervised pool of persistent Python workers.

mod python;

pub use python::default_python;
