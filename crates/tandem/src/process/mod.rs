//! The process transport: one-shot scripts and a supervised pool of persistent Python workers.
//!
//! [`Pool`] keeps warm `python -m tandem worker` processes and sends each call to an idle one
//! over a length-prefixed msgpack protocol on a dedicated socket ([`frame`] documents the
//! bytes; `docs/internals/process.md` the whole protocol).
//!
//! [`Script`] runs one process per call instead (`python script.py`, payload on stdin, result on
//! stdout; see [`script`]): no warm state, tens of milliseconds per call, for rare jobs.
//! `docs/guide-process.md` says when to use which.

mod capture;
pub mod frame;
mod group;
mod output;
mod pool;
mod python;
pub mod script;
mod seqpacket;
mod side_door;
mod worker;

pub use pool::{
    Pool, PoolBuilder, PoolStats, ResponseFuture, DEFAULT_MAX_PAYLOAD, DEFAULT_SPIN,
    DEFAULT_START_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use python::default_python;
pub use script::{Script, ScriptBuilder};

/// Locks `m`, going on with its data after a panic elsewhere (every lock here guards state a
/// panic cannot leave half-changed).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
