//! Runtime detection of the Redis 8.x stream commands, with fallbacks for 6.2 and 7.x.
//!
//! | feature | since | used for | fallback |
//! |---|---|---|---|
//! | `XACKDEL` | 8.2 | ack and delete in one step (Python consumer) | `XACK` + `XDEL` in one MULTI |
//! | `XADD … ACKED` trimming | 8.2 | trim only entries every group acked (producer) | `XTRIM MINID` below the oldest pending/undelivered id |
//! | `XREADGROUP … CLAIM` | 8.4 | read idle pending and new entries at once (Python consumer) | `XAUTOCLAIM` pass |
//! | `XADD IDMP` | 8.6 | producer-side dedup of keyed tasks (producer) | consumer-side `S:done:<key>` marker |
//! | `XNACK SILENT` | 8.8 | release unstarted entries on shutdown (Python consumer; unverified) | finish the batch |
//!
//! Valkey reports its own version line and lacks all of them; it is detected by `server_name`.

use std::collections::HashMap;

/// What the connected server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features {
    /// The server's version (major, minor, patch).
    pub version: (u32, u32, u32),
    /// Whether the server is Valkey (none of the 8.x stream additions).
    pub valkey: bool,
}

impl Features {
    /// Reads the features from `INFO server` text.
    pub fn from_info(info: &str) -> Features {
        let fields: HashMap<&str, &str> = info
            .lines()
            .filter_map(|l| l.trim().split_once(':'))
            .collect();
        let mut parts = fields
            .get("redis_version")
            .copied()
            .unwrap_or("0")
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        let valkey = fields
            .get("server_name")
            .is_some_and(|n| n.eq_ignore_ascii_case("valkey"));
        Features { version, valkey }
    }

    fn at_least(&self, major: u32, minor: u32) -> bool {
        !self.valkey && (self.version.0, self.version.1) >= (major, minor)
    }

    /// `XACKDEL` (Redis 8.2+).
    pub fn xackdel(&self) -> bool {
        self.at_least(8, 2)
    }

    /// `XADD … ACKED` / `XTRIM … ACKED` trimming (Redis 8.2+).
    pub fn acked_trim(&self) -> bool {
        self.at_least(8, 2)
    }

    /// `XREADGROUP … CLAIM min-idle-time` (Redis 8.4+).
    pub fn claim_read(&self) -> bool {
        self.at_least(8, 4)
    }

    /// `XADD … IDMP` producer dedup (Redis 8.6+).
    pub fn idmp(&self) -> bool {
        self.at_least(8, 6)
    }

    /// `XNACK` (Redis 8.8+).
    pub fn xnack(&self) -> bool {
        self.at_least(8, 8)
    }

    /// `XINFO GROUPS` reports `lag` (Redis 7.0+).
    pub fn group_lag(&self) -> bool {
        (self.version.0, self.version.1) >= (7, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_gate_the_8x_commands() {
        let f = Features::from_info("# Server\r\nredis_version:7.0.15\r\n");
        assert_eq!(f.version, (7, 0, 15));
        assert!(!f.xackdel() && !f.acked_trim() && f.group_lag());
        let f = Features::from_info("redis_version:8.4.0\r\n");
        assert!(f.xackdel() && f.claim_read() && !f.idmp());
        let f = Features::from_info("redis_version:8.1.0\nserver_name:valkey\n");
        assert!(f.valkey && !f.xackdel());
    }
}
