//! Lock durations as typed: `90m`, `1h30m`, `2d12h`. A number and a unit
//! (`s`, `m`, `h`, `d`, `w`), several joined, each unit once and the
//! largest first; between one minute and thirty days.

use super::error::excerpt;

/// The shortest lock with a duration: shorter is surely a slip.
pub(crate) const MIN_SECS: u64 = 60;

/// The longest: a lock meant to outlast a month should be taken without
/// a duration, and released on purpose.
pub(crate) const MAX_SECS: u64 = 30 * 86_400;

/// The units, largest first, with their length in seconds.
const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// Why a duration was refused: where in the word (a byte offset) and
/// what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurationError {
    pub offset: usize,
    pub message: String,
}

fn unit_index(c: char) -> Option<usize> {
    let c = c.to_ascii_lowercase();
    UNITS.iter().position(|(unit, _)| *unit == c)
}

/// Whether `word` is meant as a duration: it starts with a digit and has
/// nothing but digits and unit letters (`2h`, `1h30m`, but also `90` or
/// `1h30`, which [`parse`] refuses for a missing unit). Ignores case.
pub(crate) fn looks_like(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || unit_index(c).is_some())
}

/// The seconds `word` stands for, or why it is not a duration.
pub(crate) fn parse(word: &str) -> Result<u64, DurationError> {
    let refuse = |offset: usize, message: String| Err(DurationError { offset, message });
    let mut total: u64 = 0;
    let mut too_long = false;
    let mut last_unit: Option<usize> = None;
    let mut start = 0;
    while start < word.len() {
        let rest = word.get(start..).unwrap_or_default();
        let digits_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let digits = rest.get(..digits_len).unwrap_or_default();
        let Some(unit_char) = rest.get(digits_len..).and_then(|r| r.chars().next()) else {
            return refuse(
                start + digits_len,
                format!(
                    "expected a unit after `{}`: `s`, `m`, `h`, `d` or `w` (as in `{}m`)",
                    excerpt(digits),
                    excerpt(digits)
                ),
            );
        };
        let Some(unit) = unit_index(unit_char) else {
            return refuse(
                start + digits_len,
                format!(
                    "unexpected `{}` in a duration: units are `s`, `m`, `h`, `d` and `w`",
                    unit_char.escape_debug()
                ),
            );
        };
        if digits.is_empty() {
            return refuse(
                start,
                format!("expected a number before `{unit_char}` in a duration"),
            );
        }
        if last_unit.is_some_and(|last| unit <= last) {
            return refuse(
                start,
                format!(
                    "`{}`: write each unit once, the largest first, as in `1h30m`",
                    excerpt(word)
                ),
            );
        }
        last_unit = Some(unit);
        match digits.parse::<u64>() {
            Ok(count) => {
                let (_, seconds) = UNITS[unit];
                total = total.saturating_add(count.saturating_mul(seconds));
            }
            Err(_) => too_long = true,
        }
        start += digits_len + unit_char.len_utf8();
    }
    if too_long || total > MAX_SECS {
        return refuse(
            0,
            format!(
                "a lock lasts at most 30 days (`30d`), not `{}`; \
                 leave the duration out to lock until `unlock`",
                excerpt(word)
            ),
        );
    }
    if total < MIN_SECS {
        return refuse(
            0,
            format!(
                "a lock lasts at least 1 minute (`1m`), not `{}`",
                excerpt(word)
            ),
        );
    }
    Ok(total)
}

/// `secs` in the largest units that divide it exactly, largest first:
/// 5400 is `1h30m`, 7200 is `2h`, 0 is `0s`.
pub(crate) fn format(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    let mut left = secs;
    for (unit, seconds) in UNITS {
        let count = left / seconds;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push(unit);
            left -= count * seconds;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{MAX_SECS, MIN_SECS, format, looks_like, parse};

    #[test]
    fn reads_units_alone_and_joined() {
        for (word, secs) in [
            ("1m", 60),
            ("60s", 60),
            ("90m", 5_400),
            ("1h30m", 5_400),
            ("2H", 7_200),
            ("2d12h", 216_000),
            ("1w", 604_800),
            ("4w2d", MAX_SECS),
            ("30d", MAX_SECS),
            ("720h", MAX_SECS),
            ("1h0m", 3_600),
            ("007m", 420),
        ] {
            assert_eq!(parse(word), Ok(secs), "{word}");
        }
    }

    #[test]
    fn refuses_with_a_reason_and_an_offset() {
        for (word, offset, message) in [
            ("90", 2, "expected a unit after `90`"),
            ("1h30", 4, "expected a unit after `30`"),
            ("2hm", 2, "expected a number before `m`"),
            ("30m1h", 3, "largest first"),
            ("1h1h", 2, "largest first"),
            ("30s", 0, "at least 1 minute"),
            ("0m", 0, "at least 1 minute"),
            ("31d", 0, "at most 30 days"),
            ("5w", 0, "at most 30 days"),
            ("2592001s", 0, "at most 30 days"),
            ("99999999999999999999999m", 0, "at most 30 days"),
            ("1000000000000000000w", 0, "at most 30 days"),
        ] {
            let error = parse(word).expect_err(word);
            assert_eq!(error.offset, offset, "{word}: {error:?}");
            assert!(error.message.contains(message), "{word}: {error:?}");
        }
    }

    #[test]
    fn tells_durations_from_names() {
        for word in ["2h", "90", "1h30", "2D12H", "30m1h"] {
            assert!(looks_like(word), "{word}");
        }
        for word in ["api", "h2", "2x", "2h.x", "2-h", "2hours", ""] {
            assert!(!looks_like(word), "{word}");
        }
    }

    #[test]
    fn formats_in_the_largest_exact_units() {
        for (secs, text) in [
            (60, "1m"),
            (5_400, "1h30m"),
            (7_200, "2h"),
            (86_400, "1d"),
            (90_061, "1d1h1m1s"),
            (MAX_SECS, "4w2d"),
            (0, "0s"),
        ] {
            assert_eq!(format(secs), text);
        }
        for secs in (MIN_SECS..=MAX_SECS).step_by(997) {
            assert_eq!(parse(&format(secs)), Ok(secs));
        }
    }
}
