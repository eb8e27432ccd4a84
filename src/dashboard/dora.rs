//! The delivery figures teams ask of an environment (DORA's), over a
//! window of days: deployments per day, the change failure rate, and the
//! time to restore.
//!
//! The rules, for one app's environment:
//! - Only deployments created inside the window (the `days` days that
//!   end at `now`) count; `remove` tasks (a review app taken down) are no
//!   changes and are left out.
//! - A deployment **failed** when its last status is failure or error,
//!   or when it succeeded and the next deployment **rolled it back**:
//!   put back the commit that was live before it (the commit of the
//!   success before it, a different one).
//! - `inactive` counts as succeeded: GitHub marks a successful
//!   deployment inactive once another replaces it.
//! - The **change failure rate** is failed / finished (failed or
//!   succeeded); unfinished ones (no status, pending, queued, in
//!   progress) are in neither.
//! - **Time to restore**: from a failure (its last status's time, else
//!   its creation) to the next success's; a failure nothing fixed yet is
//!   not counted. The median of those is shown.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::domain::DeploymentState;
// One deployment to the environment: what the store says it came to.
use crate::store::DeploymentOutcome as Sample;

#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// One per day of the window, oldest first, ending today.
    pub days: Vec<Day>,
    pub deployments: usize,
    pub failed_changes: usize,
    /// `None` when nothing finished.
    pub change_failure_rate: Option<f64>,
    pub restores: Vec<SignedDuration>,
    pub median_time_to_restore: Option<SignedDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    pub date: Date,
    pub succeeded: usize,
    pub failed: usize,
    pub other: usize,
}

/// How a deployment ended, as the figures count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Succeeded,
    Failed,
    Unfinished,
}

fn ending(state: Option<DeploymentState>) -> Ending {
    match state {
        Some(DeploymentState::Success | DeploymentState::Inactive) => Ending::Succeeded,
        Some(DeploymentState::Failure | DeploymentState::Error) => Ending::Failed,
        _ => Ending::Unfinished,
    }
}

pub fn figures<'a>(
    samples: impl IntoIterator<Item = &'a Sample>,
    now: Timestamp,
    days: u32,
    tz: &TimeZone,
) -> Figures {
    let since = now - SignedDuration::from_hours(24 * i64::from(days));
    let mut changes: Vec<&Sample> = samples
        .into_iter()
        .filter(|sample| sample.task != "remove")
        .filter(|sample| sample.created_at >= since && sample.created_at <= now)
        .collect();
    changes.sort_by_key(|sample| sample.created_at);
    let endings = endings(&changes);

    let today = now.to_zoned(tz.clone()).date();
    let mut per_day: Vec<Day> = (0..days)
        .rev()
        .filter_map(|back| {
            today
                .checked_sub(jiff::Span::new().days(i64::from(back)))
                .ok()
        })
        .map(|date| Day {
            date,
            succeeded: 0,
            failed: 0,
            other: 0,
        })
        .collect();
    for (sample, ending) in changes.iter().zip(&endings) {
        let date = sample.created_at.to_zoned(tz.clone()).date();
        if let Some(day) = per_day.iter_mut().find(|day| day.date == date) {
            match ending {
                Ending::Succeeded => day.succeeded += 1,
                Ending::Failed => day.failed += 1,
                Ending::Unfinished => day.other += 1,
            }
        }
    }

    let failed_changes = endings.iter().filter(|e| **e == Ending::Failed).count();
    let finished = endings.iter().filter(|e| **e != Ending::Unfinished).count();
    let restores = restores(&changes, &endings);
    Figures {
        days: per_day,
        deployments: changes.len(),
        failed_changes,
        change_failure_rate: (finished > 0).then(|| failed_changes as f64 / finished as f64),
        median_time_to_restore: median(&restores),
        restores,
    }
}

/// Each change's ending, oldest first, with rollbacks counted as
/// failures of what they rolled back.
fn endings(changes: &[&Sample]) -> Vec<Ending> {
    let mut endings: Vec<Ending> = changes.iter().map(|sample| ending(sample.state)).collect();
    // The commit live before each success, to see whether the next
    // deployment puts it back.
    let mut live_before: Option<&str> = None;
    for i in 0..changes.len() {
        if endings[i] != Ending::Succeeded {
            continue;
        }
        let rolled_back = changes.get(i + 1).is_some_and(|next| {
            live_before.is_some_and(|before| before == next.sha && before != changes[i].sha)
        });
        live_before = Some(changes[i].sha.as_str());
        if rolled_back {
            endings[i] = Ending::Failed;
        }
    }
    endings
}

/// From each failure to the next success after it.
fn restores(changes: &[&Sample], endings: &[Ending]) -> Vec<SignedDuration> {
    let ended = |sample: &Sample| sample.state_at.unwrap_or(sample.created_at);
    let mut restores = Vec::new();
    for (i, sample) in changes.iter().enumerate() {
        if endings[i] != Ending::Failed {
            continue;
        }
        let fixed = changes
            .iter()
            .zip(endings)
            .skip(i + 1)
            .find(|(_, ending)| **ending == Ending::Succeeded)
            .map(|(later, _)| ended(later));
        if let Some(fixed) = fixed {
            restores.push(fixed.duration_since(ended(sample)));
        }
    }
    restores
}

fn median(durations: &[SignedDuration]) -> Option<SignedDuration> {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AppName;
    use DeploymentState::{Error, Failure, InProgress, Inactive, Success};

    /// 2026-12-01 12:00 UTC.
    fn noon() -> Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn hours(h: i64) -> SignedDuration {
        SignedDuration::from_hours(h)
    }

    /// Created `ago` before noon, ended an hour later.
    fn sample(ago: SignedDuration, sha: &str, state: Option<DeploymentState>) -> Sample {
        let created_at = noon() - ago;
        Sample {
            app: AppName::new("api").unwrap(),
            environment: "production".into(),
            created_at,
            sha: sha.into(),
            state,
            state_at: state.map(|_| created_at + hours(1)),
            task: "deploy".into(),
        }
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    #[test]
    fn no_deployments_give_empty_days_and_no_rates() {
        let figures = figures(std::iter::empty(), noon(), 30, &utc());
        assert_eq!(figures.days.len(), 30);
        assert_eq!(figures.days[29].date, jiff::civil::date(2026, 12, 1));
        assert_eq!(figures.days[0].date, jiff::civil::date(2026, 11, 2));
        assert!(
            figures
                .days
                .iter()
                .all(|day| day.succeeded + day.failed + day.other == 0)
        );
        assert_eq!(figures.change_failure_rate, None);
        assert_eq!(figures.median_time_to_restore, None);
    }

    #[test]
    fn the_window_and_removals_bound_what_counts() {
        let old = sample(hours(24 * 31), "a", Some(Success));
        let mut removal = sample(hours(2), "b", Some(Success));
        removal.task = "remove".into();
        let inside = sample(hours(3), "c", Some(Success));
        let figures = figures(&[old, removal, inside], noon(), 30, &utc());
        assert_eq!(figures.deployments, 1);
        assert_eq!(figures.days[29].succeeded, 1);
    }

    #[test]
    fn failures_and_unfinished_ones_count_as_they_should() {
        let samples = [
            sample(hours(10), "a", Some(Success)),
            sample(hours(9), "b", Some(Failure)),
            sample(hours(8), "c", Some(Error)),
            sample(hours(7), "d", Some(Inactive)),
            sample(hours(6), "e", Some(InProgress)),
            sample(hours(5), "f", None),
        ];
        let figures = figures(&samples, noon(), 30, &utc());
        assert_eq!(figures.deployments, 6);
        assert_eq!(figures.failed_changes, 2);
        assert_eq!(figures.change_failure_rate, Some(0.5), "2 of 4 finished");
        let today = figures.days[29];
        assert_eq!((today.succeeded, today.failed, today.other), (2, 2, 2));
    }

    #[test]
    fn a_rollback_marks_what_it_rolled_back_as_failed() {
        let samples = [
            sample(hours(10), "good", Some(Success)),
            sample(hours(8), "bad", Some(Success)),
            // Puts back `good`: `bad` was a failed change.
            sample(hours(6), "good", Some(Success)),
        ];
        let figures = figures(&samples, noon(), 30, &utc());
        assert_eq!(figures.failed_changes, 1);
        assert_eq!(figures.change_failure_rate, Some(1.0 / 3.0));
        // From bad's success (7 h ago) to good's again (5 h ago).
        assert_eq!(figures.restores, [hours(2)]);
        // Deploying the same commit again is no rollback.
        let again = [
            sample(hours(10), "good", Some(Success)),
            sample(hours(8), "good", Some(Success)),
        ];
        assert_eq!(super::figures(&again, noon(), 30, &utc()).failed_changes, 0);
    }

    #[test]
    fn time_to_restore_runs_from_a_failure_to_the_next_success() {
        let samples = [
            sample(hours(20), "a", Some(Failure)),
            sample(hours(19), "a", Some(Failure)),
            sample(hours(16), "b", Some(Success)),
            sample(hours(10), "c", Some(Error)),
            sample(hours(9), "d", Some(Success)),
            // Not fixed yet: not counted.
            sample(hours(2), "e", Some(Failure)),
        ];
        let figures = figures(&samples, noon(), 30, &utc());
        assert_eq!(figures.restores, [hours(4), hours(3), hours(1)]);
        assert_eq!(figures.median_time_to_restore, Some(hours(3)));
        assert_eq!(
            median(&[hours(1), hours(4)]),
            Some(SignedDuration::from_mins(150))
        );
    }

    #[test]
    fn days_follow_the_time_zone() {
        // 23:30 UTC on 2026-11-30 is already 2026-12-01 at UTC+2.
        let late: Timestamp = "2026-11-30T23:30:00Z".parse().unwrap();
        let samples = [Sample {
            app: AppName::new("api").unwrap(),
            environment: "production".into(),
            created_at: late,
            sha: "a".into(),
            state: Some(Success),
            state_at: Some(late),
            task: "deploy".into(),
        }];
        let plus_two = TimeZone::fixed(jiff::tz::offset(2));
        let utc_days = figures(&samples, noon(), 30, &utc()).days;
        assert_eq!(utc_days[28].succeeded, 1, "the 30th in UTC");
        let local_days = figures(&samples, noon(), 30, &plus_two).days;
        assert_eq!(local_days[29].succeeded, 1, "the 1st at UTC+2");
    }
}
