//! Freeze windows: times when a target takes no deployments, in a time
//! zone (a weekly window such as "Fri 16:00 - Mon 08:00 Europe/Berlin",
//! or dated ones such as a holiday), with jiff's time-zone database so
//! that a window keeps its wall-clock times across daylight-saving
//! changes.

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// One window of a target's `freeze` list.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeWindow {
    pub span: FreezeSpan,
    pub timezone: TimeZone,
    /// The zone's name as written (`Europe/Berlin`), for messages.
    pub timezone_name: String,
    /// Why, shown to whoever is refused (`release freeze`).
    pub reason: Option<String>,
}

/// When a window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeSpan {
    /// Every week, from one weekday and time to another (it may wrap past
    /// the week's end: Fri 16:00 - Mon 08:00).
    Weekly {
        from: (Weekday, Time),
        to: (Weekday, Time),
    },
    /// Once, from one local date and time to another (a date alone in
    /// `to` means through the end of that day).
    Dated { from: DateTime, to: DateTime },
}

impl FreezeWindow {
    /// When the window that holds `now` ends, if one does.
    pub fn ends_after(&self, now: Timestamp) -> Option<Zoned> {
        let local = now.to_zoned(self.timezone.clone());
        match self.span {
            FreezeSpan::Dated { from, to } => {
                let start = from.to_zoned(self.timezone.clone()).ok()?;
                let end = to.to_zoned(self.timezone.clone()).ok()?;
                (start.timestamp() <= now && now < end.timestamp()).then_some(end)
            }
            FreezeSpan::Weekly { from, to } => {
                // The window's latest start at or before now, then its
                // end after that start: inside if now is before the end.
                let start = last_at_or_before(&local, from)?;
                let end = first_after(&start, to)?;
                (now < end.timestamp()).then_some(end)
            }
        }
    }
}

/// The latest local time `(weekday, time)` at or before `now`.
fn last_at_or_before(now: &Zoned, (weekday, time): (Weekday, Time)) -> Option<Zoned> {
    let today = now.date();
    for back in 0..=7 {
        let date = today.checked_sub(back.days()).ok()?;
        if date.weekday() != weekday {
            continue;
        }
        let at = date
            .to_datetime(time)
            .to_zoned(now.time_zone().clone())
            .ok()?;
        if at.timestamp() <= now.timestamp() {
            return Some(at);
        }
    }
    None
}

/// The first local time `(weekday, time)` after `start`.
fn first_after(start: &Zoned, (weekday, time): (Weekday, Time)) -> Option<Zoned> {
    let first: Date = start.date();
    for ahead in 0..=7 {
        let date = first.checked_add(ahead.days()).ok()?;
        if date.weekday() != weekday {
            continue;
        }
        let at = date
            .to_datetime(time)
            .to_zoned(start.time_zone().clone())
            .ok()?;
        if at.timestamp() > start.timestamp() {
            return Some(at);
        }
    }
    None
}

impl fmt::Display for FreezeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.span {
            FreezeSpan::Weekly { from, to } => write!(
                f,
                "{} {} - {} {}",
                weekday_name(from.0),
                from.1.strftime("%H:%M"),
                weekday_name(to.0),
                to.1.strftime("%H:%M")
            )?,
            FreezeSpan::Dated { from, to } => write!(
                f,
                "{} - {}",
                from.strftime("%Y-%m-%d %H:%M"),
                to.strftime("%Y-%m-%d %H:%M")
            )?,
        }
        write!(f, " {}", self.timezone_name)
    }
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

/// A window's `from` or `to` as written in deploy.yml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// `Fri 16:00` (day names in English, three letters or whole).
    Weekly(Weekday, Time),
    /// `2026-12-24 12:00`.
    At(DateTime),
    /// `2026-12-24`.
    Day(Date),
}

impl Moment {
    /// Reads `Fri 16:00`, `friday 16:00`, `2026-12-24 12:00` or
    /// `2026-12-24`; the error says what would work.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let mut words = text.split_whitespace();
        let (first, second) = (words.next().unwrap_or(""), words.next());
        if words.next().is_some() {
            return Err(format!("`{text}` is not `Fri 16:00` or `2026-12-24 12:00`"));
        }
        let day = first.to_ascii_lowercase();
        if let Some(&(_, weekday)) = WEEKDAYS
            .iter()
            .find(|(short, _)| day.len() >= 3 && full_or_short(&day, short))
        {
            let time = second
                .ok_or_else(|| format!("`{text}` needs a time after the day (`{first} 16:00`)"))?;
            return Ok(Self::Weekly(weekday, parse_time(time)?));
        }
        let date: Date = first.parse().map_err(|_| {
            format!("`{text}` is not a day and time (`Fri 16:00`) or a date (`2026-12-24`)")
        })?;
        match second {
            None => Ok(Self::Day(date)),
            Some(time) => Ok(Self::At(date.to_datetime(parse_time(time)?))),
        }
    }
}

/// `fri` or `friday` (or any prefix of the whole name from three letters).
fn full_or_short(day: &str, short: &str) -> bool {
    let full = match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    };
    full.starts_with(day)
}

fn parse_time(text: &str) -> Result<Time, String> {
    let (hour, minute) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a time such as `16:00`"))?;
    let number = |part: &str, max: i8| {
        part.parse::<i8>()
            .ok()
            .filter(|n| (0..=max).contains(n) && part.len() == 2)
    };
    match (number(hour, 23), number(minute, 59)) {
        (Some(hour), Some(minute)) => Time::new(hour, minute, 0, 0)
            .map_err(|_| format!("`{text}` is not a time such as `16:00`")),
        _ => Err(format!(
            "`{text}` is not a time such as `16:00` (24-hour, two digits each)"
        )),
    }
}

/// A window from its two ends: both weekly, or both dated (`to` a date
/// alone means through that day).
pub fn span(from: Moment, to: Moment) -> Result<FreezeSpan, String> {
    let start_of = |moment| match moment {
        Moment::At(at) => Some(at),
        Moment::Day(day) => Some(day.to_datetime(Time::midnight())),
        Moment::Weekly(..) => None,
    };
    match (from, to) {
        (Moment::Weekly(fd, ft), Moment::Weekly(td, tt)) => {
            if (fd, ft) == (td, tt) {
                return Err("the window starts and ends at the same time".into());
            }
            Ok(FreezeSpan::Weekly {
                from: (fd, ft),
                to: (td, tt),
            })
        }
        (Moment::Weekly(..), _) | (_, Moment::Weekly(..)) => {
            Err("`from` and `to` must both be weekly (`Fri 16:00`) or both dates".into())
        }
        (from, to) => {
            let from = start_of(from).ok_or("a date is needed")?;
            let to = match to {
                Moment::Day(day) => day
                    .tomorrow()
                    .map_err(|_| "the date is out of range".to_owned())?
                    .to_datetime(Time::midnight()),
                other => start_of(other).ok_or("a date is needed")?,
            };
            if to <= from {
                return Err("`to` must be after `from`".into());
            }
            Ok(FreezeSpan::Dated { from, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from: &str, to: &str, zone: &str) -> FreezeWindow {
        FreezeWindow {
            span: span(Moment::parse(from).unwrap(), Moment::parse(to).unwrap()).unwrap(),
            timezone: TimeZone::get(zone).unwrap(),
            timezone_name: zone.into(),
            reason: None,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_weekend_window_wraps_past_the_end_of_the_week() {
        let weekend = window("Fri 16:00", "Mon 08:00", "Europe/Berlin");
        // Friday 2026-11-27, 15:59 and 16:00 in Berlin (UTC+1 in winter).
        assert_eq!(weekend.ends_after(at("2026-11-27T14:59:00Z")), None);
        let end = weekend.ends_after(at("2026-11-27T15:00:00Z")).unwrap();
        assert_eq!(end.to_string(), "2026-11-30T08:00:00+01:00[Europe/Berlin]");
        assert!(weekend.ends_after(at("2026-11-29T12:00:00Z")).is_some());
        assert_eq!(weekend.ends_after(at("2026-11-30T07:00:00Z")), None);
        assert_eq!(weekend.ends_after(at("2026-11-25T12:00:00Z")), None);
        assert_eq!(weekend.to_string(), "Fri 16:00 - Mon 08:00 Europe/Berlin");
    }

    #[test]
    fn a_window_keeps_its_wall_clock_times_across_a_daylight_saving_change() {
        // Berlin leaves summer time on Sunday 2026-10-25: the window
        // opened at 16:00 CEST (14:00 UTC) and closes at 08:00 CET (07:00 UTC).
        let weekend = window("Fri 16:00", "Mon 08:00", "Europe/Berlin");
        assert_eq!(weekend.ends_after(at("2026-10-23T13:59:00Z")), None);
        let end = weekend.ends_after(at("2026-10-23T14:00:00Z")).unwrap();
        assert_eq!(end.timestamp(), at("2026-10-26T07:00:00Z"));
        assert!(weekend.ends_after(at("2026-10-26T06:59:00Z")).is_some());
        assert_eq!(weekend.ends_after(at("2026-10-26T07:00:00Z")), None);
    }

    #[test]
    fn a_dated_window_runs_through_its_last_day() {
        let holidays = window("2026-12-24", "2026-12-26", "America/New_York");
        assert_eq!(holidays.ends_after(at("2026-12-24T04:59:00Z")), None);
        let end = holidays.ends_after(at("2026-12-24T05:00:00Z")).unwrap();
        assert_eq!(end.timestamp(), at("2026-12-27T05:00:00Z"));
        assert!(holidays.ends_after(at("2026-12-27T04:59:00Z")).is_some());
        assert_eq!(holidays.ends_after(at("2026-12-27T05:00:00Z")), None);
    }

    #[test]
    fn bad_moments_and_spans_say_what_would_work() {
        for (text, expected) in [
            ("Fri", "needs a time after the day"),
            ("Fri 4pm", "is not a time such as `16:00`"),
            ("Fri 24:00", "24-hour, two digits each"),
            ("someday 10:00", "is not a day and time"),
            ("2026-13-01", "is not a day and time"),
            ("Fri 16:00 CET", "is not `Fri 16:00`"),
        ] {
            let error = Moment::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert_eq!(
            Moment::parse("friday 16:00").unwrap(),
            Moment::parse("Fri 16:00").unwrap()
        );
        let weekly = Moment::parse("Fri 16:00").unwrap();
        let day = Moment::parse("2026-12-24").unwrap();
        assert!(span(weekly, day).unwrap_err().contains("both be weekly"));
        assert!(span(weekly, weekly).unwrap_err().contains("same time"));
        let later = Moment::parse("2026-12-20").unwrap();
        assert!(span(day, later).unwrap_err().contains("after `from`"));
    }
}
