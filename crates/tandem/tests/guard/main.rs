//! The guard layers' own logic, over a scripted in-process stub (the guard is what is under
//! test here, not a transport). Time is a `ManualClock` or tokio's paused clock: no test
//! sleeps for real.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod breaker;
mod bulkhead;
mod fallback;
mod policy;
mod retry;
mod stub;
mod timeout;
mod trace;
