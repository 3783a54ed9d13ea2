//! What the trace exporter does while its collector keeps failing: it pauses exports with a
//! growing back-off (the spans of a pause are dropped and counted, as a failed export's are) and
//! says so in the log once when the failures start, then at most every [`WARN_EVERY`], and once
//! when an export succeeds again. Without it, a collector that is down makes one connection
//! attempt and one warning per batch: at 34,000 traced requests a second, 125 log lines a second.

use std::time::{Duration, Instant};

/// The pause after the first failed export; each failure after it doubles the pause.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause between two attempts (how late an export notices the collector is back).
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// At most one "still failing" warning this often.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(30);

/// What to tell the operator about an export that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Report {
    /// Nothing new to say.
    Quiet,
    /// The first failure after exports worked (or since start): log it with its error.
    Started,
    /// Still failing: the exports that failed and the spans dropped since the last warning.
    StillFailing { failed: u64, dropped: u64 },
}

/// A failing spell that an export ended: how long it lasted, and the exports that failed and
/// the spans dropped since the last warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recovered {
    pub(super) lasted: Duration,
    pub(super) failed: u64,
    pub(super) dropped: u64,
}

/// The failing spell, if there is one.
#[derive(Debug, Default)]
pub(super) struct Outage {
    spell: Option<Spell>,
}

#[derive(Debug)]
struct Spell {
    since: Instant,
    retry_at: Instant,
    backoff: Duration,
    warned_at: Instant,
    /// Exports failed and spans dropped (failed or paused) since the last warning.
    failed: u64,
    dropped: u64,
}

impl Outage {
    /// Whether exports are paused at `now` (a batch is then dropped without an attempt).
    pub(super) fn paused(&self, now: Instant) -> bool {
        self.spell.as_ref().is_some_and(|s| now < s.retry_at)
    }

    /// `spans` were dropped without an attempt during a pause.
    pub(super) fn skipped(&mut self, spans: usize) {
        if let Some(spell) = &mut self.spell {
            spell.dropped += spans as u64;
        }
    }

    /// An export of `spans` failed at `now`: pause, and say what the log should.
    pub(super) fn failed(&mut self, spans: usize, now: Instant) -> Report {
        let Some(spell) = &mut self.spell else {
            self.spell = Some(Spell {
                since: now,
                retry_at: now + FIRST_BACKOFF,
                backoff: FIRST_BACKOFF,
                warned_at: now,
                failed: 0,
                dropped: 0,
            });
            return Report::Started;
        };
        spell.backoff = (spell.backoff * 2).min(MAX_BACKOFF);
        spell.retry_at = now + spell.backoff;
        spell.failed += 1;
        spell.dropped += spans as u64;
        if now.duration_since(spell.warned_at) < WARN_EVERY {
            return Report::Quiet;
        }
        spell.warned_at = now;
        let report = Report::StillFailing {
            failed: spell.failed,
            dropped: spell.dropped,
        };
        spell.failed = 0;
        spell.dropped = 0;
        report
    }

    /// An export succeeded at `now`: the spell it ended, if there was one.
    pub(super) fn succeeded(&mut self, now: Instant) -> Option<Recovered> {
        self.spell.take().map(|spell| Recovered {
            lasted: now.duration_since(spell.since),
            failed: spell.failed,
            dropped: spell.dropped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_and_warn_once_then_every_thirty_seconds() {
        let t0 = Instant::now();
        let mut outage = Outage::default();
        assert!(!outage.paused(t0));
        assert_eq!(outage.failed(8, t0), Report::Started);
        assert!(outage.paused(t0 + Duration::from_millis(999)));
        assert!(!outage.paused(t0 + FIRST_BACKOFF));

        // Each failure doubles the pause, up to the cap; the log stays quiet.
        let mut now = t0;
        let mut pauses = Vec::new();
        for _ in 0..5 {
            now += FIRST_BACKOFF;
            outage.skipped(8);
            assert_eq!(outage.failed(8, now), Report::Quiet);
            let mut resume = now;
            while outage.paused(resume) {
                resume += Duration::from_millis(500);
            }
            pauses.push(resume.duration_since(now).as_secs());
        }
        assert_eq!(pauses, [2, 4, 8, 10, 10]);

        // Thirty seconds after the first warning: one summary of what failed since.
        let report = outage.failed(8, t0 + WARN_EVERY);
        assert_eq!(
            report,
            Report::StillFailing {
                failed: 6,
                dropped: 88
            }
        );
        assert_eq!(
            outage.failed(8, t0 + WARN_EVERY + Duration::from_secs(1)),
            Report::Quiet
        );
    }

    #[test]
    fn a_success_ends_the_spell_and_says_how_long_it_lasted() {
        let t0 = Instant::now();
        let mut outage = Outage::default();
        assert_eq!(outage.succeeded(t0), None);
        outage.failed(4, t0);
        outage.skipped(4);
        outage.failed(4, t0 + Duration::from_secs(2));
        let report = outage.succeeded(t0 + Duration::from_secs(5));
        assert_eq!(
            report,
            Some(Recovered {
                lasted: Duration::from_secs(5),
                failed: 1,
                dropped: 8
            })
        );
        assert!(!outage.paused(t0 + Duration::from_secs(5)));
        // The next failure starts a new spell with a fresh warning and the first pause.
        let t1 = t0 + Duration::from_secs(6);
        assert_eq!(outage.failed(4, t1), Report::Started);
        assert!(!outage.paused(t1 + FIRST_BACKOFF));
    }
}
