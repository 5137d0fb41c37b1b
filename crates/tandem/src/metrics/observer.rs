//! The registry as the guard layers' [`Observer`].

use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;

use super::families::{CallLabels, KindLabels, NameLabel, TransitionLabels};
use super::Registry;
use crate::call::{ErrorKind, Transport};
use crate::guard::{BreakerState, Observer};

fn name(name: &str) -> NameLabel {
    NameLabel {
        name: name.to_owned(),
    }
}

impl Observer for Registry {
    fn call(
        &self,
        transport: Transport,
        method: &str,
        result: Result<(), ErrorKind>,
        elapsed: Duration,
    ) {
        let labels = CallLabels {
            method: self.methods().intern(method),
            status: result.err().map_or("ok", ErrorKind::as_str),
            transport: transport.as_str(),
        };
        let f = self.families();
        f.call_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        f.call_total.get_or_create(&labels).inc();
    }

    fn breaker_transition(&self, breaker: &str, from: BreakerState, to: BreakerState) {
        let f = self.families();
        f.breaker_state.get_or_create(&name(breaker)).set(to as i64);
        if from != to {
            f.breaker_transitions
                .get_or_create(&TransitionLabels {
                    name: breaker.to_owned(),
                    from: from.as_str(),
                    to: to.as_str(),
                })
                .inc();
        }
    }

    fn breaker_rejected(&self, breaker: &str) {
        self.families()
            .breaker_rejected
            .get_or_create(&name(breaker))
            .inc();
    }

    fn bulkhead_in_flight(&self, bulkhead: &str, in_flight: usize) {
        let f = self.families();
        let gauge: Gauge = f.in_flight_by_name.get(bulkhead, || {
            f.bulkhead_in_flight.get_or_create_owned(&name(bulkhead))
        });
        gauge.set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    }

    fn bulkhead_rejected(&self, bulkhead: &str) {
        self.families()
            .bulkhead_rejected
            .get_or_create(&name(bulkhead))
            .inc();
    }

    fn retried(&self, retry: &str, kind: ErrorKind) {
        self.families()
            .retries
            .get_or_create(&KindLabels {
                name: retry.to_owned(),
                kind: kind.as_str(),
            })
            .inc();
    }

    fn retry_budget_exhausted(&self, retry: &str) {
        self.families()
            .retry_budget_exhausted
            .get_or_create(&name(retry))
            .inc();
    }

    fn fallback_used(&self, fallback: &str, trigger: ErrorKind) {
        self.families()
            .fallbacks
            .get_or_create(&KindLabels {
                name: fallback.to_owned(),
                kind: trigger.as_str(),
            })
            .inc();
    }
}
