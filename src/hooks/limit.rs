//! The limit on failed deploy hook calls: after too many bad tokens from
//! one source address in a fixed window, every call from it is refused
//! (429, with `Retry-After`) until the window ends, even one with a good
//! token. A token cannot be guessed (256 random bits); the limit keeps a
//! misbehaving client or a scanner from costing a store read per try.
//!
//! Hand-written, not `governor`: that crate is not in hoist's dependency
//! tree and would bring several crates for one counter per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked before windows that ended are dropped; past it
/// with every window still open, the oldest one goes, so memory stays
/// bounded whatever the number of addresses.
const MAX_TRACKED: usize = 10_000;

/// Failures counted per source address, in fixed windows.
#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    sources: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl FailureLimiter {
    /// At most `max_failures` in a `window`, counted from the first.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `source` has failed too often: refused until the
    /// window ends, `wait` from `now`.
    pub fn blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        let sources = self.sources();
        let window = sources.get(&bucket(source))?;
        let left = self
            .window
            .checked_sub(now.duration_since(window.started))?;
        (window.failures >= self.max_failures && !left.is_zero()).then_some(left)
    }

    /// Counts a failed call from `source` at `now`.
    pub fn failed(&self, source: IpAddr, now: Instant) {
        let mut sources = self.sources();
        let key = bucket(source);
        if !sources.contains_key(&key) && sources.len() >= MAX_TRACKED {
            sources.retain(|_, window| now.duration_since(window.started) < self.window);
            if sources.len() >= MAX_TRACKED
                && let Some(oldest) = sources
                    .iter()
                    .min_by_key(|(_, window)| window.started)
                    .map(|(source, _)| *source)
            {
                sources.remove(&oldest);
            }
        }
        let window = sources.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(window.started) >= self.window {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }

    /// Addresses with an entry (for the bound's test).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.sources().len()
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Window>> {
        // A panic while holding it leaves only counters behind: still usable.
        self.sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whom a count is kept for: an IPv4 address, or an IPv6 /64 (one host
/// is usually given a whole /64, and could otherwise move across it).
fn bucket(source: IpAddr) -> IpAddr {
    match source.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = v6.to_bits() & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from_bits(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, WINDOW);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let source = ip("192.0.2.7");
        for second in 0..3 {
            assert_eq!(limiter.blocked(source, at(second)), None);
            limiter.failed(source, at(second));
        }
        assert_eq!(
            limiter.blocked(source, at(2)),
            Some(Duration::from_secs(58))
        );
        assert_eq!(
            limiter.blocked(source, at(59)),
            Some(Duration::from_secs(1))
        );
        // Another address is not.
        assert_eq!(limiter.blocked(ip("192.0.2.8"), at(10)), None);
        // The window ended: a fresh count.
        assert_eq!(limiter.blocked(source, at(60)), None);
        limiter.failed(source, at(60));
        assert_eq!(limiter.blocked(source, at(61)), None);
    }

    #[test]
    fn failures_spread_over_windows_never_block() {
        let limiter = FailureLimiter::new(3, WINDOW);
        let start = Instant::now();
        let source = ip("192.0.2.7");
        for second in [0, 30, 61, 90, 122] {
            let now = start + Duration::from_secs(second);
            assert_eq!(limiter.blocked(source, now), None);
            limiter.failed(source, now);
        }
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limiter = FailureLimiter::new(2, WINDOW);
        let now = Instant::now();
        limiter.failed(ip("2001:db8:1:2::1"), now);
        limiter.failed(ip("2001:db8:1:2:ffff::9"), now);
        assert!(limiter.blocked(ip("2001:db8:1:2::77"), now).is_some());
        assert!(limiter.blocked(ip("2001:db8:1:3::1"), now).is_none());
        limiter.failed(ip("::ffff:192.0.2.1"), now);
        limiter.failed(ip("192.0.2.1"), now);
        assert!(limiter.blocked(ip("192.0.2.1"), now).is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = FailureLimiter::new(10, WINDOW);
        let start = Instant::now();
        let address = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from_bits(0x0a00_0000 + n));
        for n in 0..u32::try_from(MAX_TRACKED).expect("small") {
            limiter.failed(address(n), start);
        }
        assert_eq!(limiter.tracked(), MAX_TRACKED);
        // Still open: the oldest goes for the newcomer.
        limiter.failed(address(1_000_000), start + Duration::from_secs(1));
        assert_eq!(limiter.tracked(), MAX_TRACKED);
        // All ended: they go at once.
        limiter.failed(address(2_000_000), start + Duration::from_secs(120));
        assert_eq!(limiter.tracked(), 1);
    }
}
