//! The breaker's state machine over a rolling window (hystrix's `circuit.go` semantics).

use std::time::{Duration, Instant};

use super::config::BreakerConfig;
use crate::guard::classify::Outcome;
use crate::guard::window::RollingWindow;

/// Where a circuit breaker stands. The numbers are the `tandem_breaker_state` gauge's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass; outcomes are counted.
    Closed = 0,
    /// Calls are rejected with `Error::BreakerOpen` until the sleep window ends.
    Open = 1,
    /// One trial call is running; every other call is rejected.
    HalfOpen = 2,
}

impl BreakerState {
    /// The lowercase name used as a metric label (`closed`, `open`, `half_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// A state change, reported after the lock is released.
pub(crate) type Transition = (BreakerState, BreakerState);

/// What the breaker said to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Run it. `trial` marks the single half-open call; `generation` ties the outcome to the
    /// closed period it started in, so late answers from an older period are not counted.
    Allowed { trial: bool, generation: u64 },
    /// Reject it; the breaker may let a trial through after `retry_in`.
    Rejected { retry_in: Duration },
}

#[derive(Debug)]
pub(crate) struct Machine {
    state: BreakerState,
    window: RollingWindow,
    /// When the circuit opened, or when the current trial started.
    opened_at: Instant,
    generation: u64,
}

impl Machine {
    pub(crate) fn new(now: Instant, config: &BreakerConfig) -> Self {
        Machine {
            state: BreakerState::Closed,
            window: RollingWindow::new(now, config.bucket_width(), config.buckets),
            opened_at: now,
            generation: 0,
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    fn move_to(&mut self, to: BreakerState) -> Option<Transition> {
        let from = std::mem::replace(&mut self.state, to);
        if to != BreakerState::HalfOpen {
            // A new closed or open period: outcomes of calls admitted before it are stale.
            self.generation += 1;
        }
        (from != to).then_some((from, to))
    }

    /// Decides whether a call may run at `now`.
    pub(crate) fn admit(&mut self, config: &BreakerConfig) -> (Admission, Option<Transition>) {
        if self.state == BreakerState::Closed {
            // The hot path needs no clock.
            return (
                Admission::Allowed {
                    trial: false,
                    generation: self.generation,
                },
                None,
            );
        }
        let now = config.clock.now();
        match self.state {
            BreakerState::Closed => (
                Admission::Allowed {
                    trial: false,
                    generation: self.generation,
                },
                None,
            ),
            BreakerState::Open => {
                let reopen = self.opened_at + config.sleep_window;
                if now >= reopen {
                    // Exactly one caller gets here per sleep window: it becomes the trial.
                    self.opened_at = now;
                    let t = self.move_to(BreakerState::HalfOpen);
                    let generation = self.generation;
                    (
                        Admission::Allowed {
                            trial: true,
                            generation,
                        },
                        t,
                    )
                } else {
                    (
                        Admission::Rejected {
                            retry_in: reopen - now,
                        },
                        None,
                    )
                }
            }
            BreakerState::HalfOpen => (
                Admission::Rejected {
                    retry_in: (self.opened_at + config.sleep_window).saturating_duration_since(now),
                },
                None,
            ),
        }
    }

    /// Records the outcome of an allowed call.
    pub(crate) fn record(
        &mut self,
        now: Instant,
        config: &BreakerConfig,
        trial: bool,
        generation: u64,
        outcome: Outcome,
    ) -> Option<Transition> {
        if trial {
            if self.state != BreakerState::HalfOpen || generation != self.generation {
                return None;
            }
            return match outcome {
                Outcome::Success => {
                    self.window.reset();
                    self.move_to(BreakerState::Closed)
                }
                Outcome::Failure => {
                    self.opened_at = now;
                    self.move_to(BreakerState::Open)
                }
                // The trial said nothing: the next one may start a sleep window after this one.
                Outcome::Ignored => self.move_to(BreakerState::Open),
            };
        }
        if outcome == Outcome::Ignored
            || self.state != BreakerState::Closed
            || generation != self.generation
        {
            return None;
        }
        self.window.record(now, outcome == Outcome::Failure);
        let counts = self.window.sum(now);
        if counts.requests < config.request_volume_threshold {
            return None;
        }
        // hystrix: int(errors / requests * 100 + 0.5), unhealthy when >= the threshold.
        let percent = (counts.errors * 100 + counts.requests / 2) / counts.requests;
        if percent >= u64::from(config.error_percent_threshold) {
            self.opened_at = now;
            self.move_to(BreakerState::Open)
        } else {
            None
        }
    }

    /// A trial whose future was dropped before it finished: back to open, next trial one
    /// sleep window after this one started.
    pub(crate) fn abandon(&mut self, trial: bool, generation: u64) -> Option<Transition> {
        if trial && self.state == BreakerState::HalfOpen && generation == self.generation {
            self.move_to(BreakerState::Open)
        } else {
            None
        }
    }
}
