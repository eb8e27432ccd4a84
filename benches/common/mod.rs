//! How the benchmarks print their figures.

use std::time::Duration;

/// The `p`th percentile of `values` (nearest rank).
pub fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted
        .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

pub fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// One line of the table: the figure, its value, its target.
pub fn row(figure: &str, value: String, target: &str) {
    println!("{figure:<58} {value:>12}   {target}");
}
