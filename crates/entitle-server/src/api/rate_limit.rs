//! Per-address limits on failed credential attempts, so activation codes and passwords cannot be
//! guessed at speed. In memory and per instance: with several instances behind a balancer an
//! attacker gets the limit once per instance, which still caps guessing far below anything useful
//! against 115-bit codes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` while the address is over its limit.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let (started, failures) = windows.get(&ip)?;
        let elapsed = started.elapsed();
        if *failures >= self.max_failures && elapsed < self.window {
            Some((self.window - elapsed).as_secs().max(1))
        } else {
            None
        }
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Forget old windows now and then so the map cannot grow without bound.
        if windows.len() > 100_000 {
            windows.retain(|_, (started, _)| now.duration_since(*started) < self.window);
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let limiter = FailureLimiter::new(3, Duration::from_millis(200));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.blocked(ip).is_none());
            limiter.record_failure(ip);
        }
        assert!(limiter.blocked(ip).is_some());
        assert!(limiter.blocked(other).is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(limiter.blocked(ip).is_none());
    }
}
