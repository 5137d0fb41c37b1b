//! The process transport: one-shot scripts and a supervised pool of persistent Python workers.

mod capture;
mod group;
mod python;
pub mod script;

pub use python::default_python;
pub use script::{Script, ScriptBuilder};
