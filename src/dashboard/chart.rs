//! Small charts drawn on the server as SVG: no script, no library, and
//! readable without colour (each bar has its numbers as a tooltip, the
//! chart a title and a summary for screen readers).

use jiff::SignedDuration;
use maud::{Markup, html};

use super::dora::Figures;

/// The chart's drawing box; the page scales it to its width.
const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 80.0;

/// A stacked bar a day: succeeded, failed, other.
pub fn deployments_per_day(environment: &str, figures: &Figures) -> Markup {
    let id = format!("chart-{}", css_id(environment));
    let days = figures.days.len().max(1);
    let tallest = figures
        .days
        .iter()
        .map(|day| day.succeeded + day.failed + day.other)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = WIDTH / days as f64;
    let bar = (slot * 0.8).max(1.0);
    let scale = |count: usize| count as f64 / tallest as f64 * (HEIGHT - 2.0);
    let failed: usize = figures.days.iter().map(|day| day.failed).sum();
    let summary = format!(
        "{} deployments over {} days, {failed} of them failed; the busiest day had {tallest}.",
        figures.deployments,
        figures.days.len()
    );
    html! {
        svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-labelledby={ (id) "-title " (id) "-desc" } preserveAspectRatio="none" {
            title id={ (id) "-title" } { "Deployments per day to " (environment) ", last " (figures.days.len()) " days" }
            desc id={ (id) "-desc" } { (summary) }
            @for (i, day) in figures.days.iter().enumerate() {
                @let x = i as f64 * slot + (slot - bar) / 2.0;
                @let ok = scale(day.succeeded);
                @let bad = scale(day.failed);
                @let other = scale(day.other);
                g {
                    title { (day.date) ": " (day.succeeded) " succeeded, " (day.failed) " failed, " (day.other) " unfinished" }
                    // A sliver for empty days, so the axis reads as days.
                    rect.bar-other x=(fixed(x)) y=(fixed(HEIGHT - 1.0)) width=(fixed(bar)) height="1" {}
                    @if day.succeeded > 0 {
                        rect.bar-ok x=(fixed(x)) y=(fixed(HEIGHT - ok)) width=(fixed(bar)) height=(fixed(ok)) {}
                    }
                    @if day.failed > 0 {
                        rect.bar-failed x=(fixed(x)) y=(fixed(HEIGHT - ok - bad)) width=(fixed(bar)) height=(fixed(bad)) {}
                    }
                    @if day.other > 0 {
                        rect.bar-other x=(fixed(x)) y=(fixed(HEIGHT - ok - bad - other)) width=(fixed(bar)) height=(fixed(other)) {}
                    }
                }
            }
        }
    }
}

/// A coordinate with two decimals: short, and never NaN (every divisor
/// above is at least 1).
fn fixed(value: f64) -> String {
    format!("{value:.2}")
}

/// `[a-z0-9-]` only, so any environment name makes a safe element id.
fn css_id(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    // Names that differ only in punctuation still get their own ids.
    format!("{id}-{:08x}", fnv(name))
}

/// FNV-1a: a short, stable fingerprint, not a security measure.
fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// "45 s", "12 min", "2 h 5 min", "3 d 4 h".
pub fn format_duration(duration: SignedDuration) -> String {
    let secs = duration.as_secs().max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => match (secs % 3600) / 60 {
            0 => format!("{} h", secs / 3600),
            mins => format!("{} h {mins} min", secs / 3600),
        },
        _ => match (secs % 86_400) / 3600 {
            0 => format!("{} d", secs / 86_400),
            hours => format!("{} d {hours} h", secs / 86_400),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::dora::Day;

    fn figures(counts: &[(usize, usize, usize)]) -> Figures {
        Figures {
            days: counts
                .iter()
                .enumerate()
                .map(|(i, &(succeeded, failed, other))| Day {
                    date: jiff::civil::date(2026, 11, 1 + i as i8),
                    succeeded,
                    failed,
                    other,
                })
                .collect(),
            deployments: counts.iter().map(|(a, b, c)| a + b + c).sum(),
            failed_changes: 0,
            change_failure_rate: None,
            restores: Vec::new(),
            median_time_to_restore: None,
        }
    }

    #[test]
    fn bars_are_as_tall_as_their_counts() {
        let svg = deployments_per_day("staging", &figures(&[(2, 0, 0), (1, 1, 0), (0, 0, 0)]))
            .into_string();
        assert_eq!(svg.matches("<g>").count(), 3);
        // The busiest day fills the height (78 of 80); one is half of it.
        assert!(
            svg.contains(r#"class="bar-ok" x="10.00" y="2.00" width="80.00" height="78.00""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"class="bar-failed" x="110.00" y="2.00" width="80.00" height="39.00""#),
            "{svg}"
        );
        assert!(
            svg.contains("2026-11-02: 1 succeeded, 1 failed, 0 unfinished"),
            "{svg}"
        );
        assert!(
            svg.contains("4 deployments over 3 days, 1 of them failed"),
            "{svg}"
        );
        assert!(svg.contains(r#"role="img""#), "{svg}");
    }

    #[test]
    fn an_empty_chart_is_still_a_chart() {
        let svg = deployments_per_day("staging", &figures(&[])).into_string();
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let quiet = deployments_per_day("staging", &figures(&[(0, 0, 0); 30])).into_string();
        assert!(!quiet.contains("NaN"), "{quiet}");
        assert_eq!(quiet.matches("class=\"bar-ok\"").count(), 0);
    }

    #[test]
    fn a_hostile_environment_name_is_escaped_and_its_id_is_safe() {
        let svg = deployments_per_day("<script>\"x\"", &figures(&[(1, 0, 0)])).into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        let id = css_id("<script>\"x\"");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{id}"
        );
        assert_ne!(css_id("a/b"), css_id("a-b"));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let cases = [
            (45, "45 s"),
            (720, "12 min"),
            (7200, "2 h"),
            (7500, "2 h 5 min"),
            (86_400 * 3 + 3600 * 4, "3 d 4 h"),
        ];
        for (secs, text) in cases {
            assert_eq!(format_duration(SignedDuration::from_secs(secs)), text);
        }
    }
}
