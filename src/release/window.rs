//! Release windows: whether a release may add exposure now, and when it next may. Pure.
//!
//! A window is local wall-clock time in its zone, so it moves with daylight saving. A time
//! that a clock change skips (02:30 on the spring-forward night) resolves the way jiff's
//! "compatible" rule does: to the same distance after the gap, as most calendars do.

use jiff::civil::{self, Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::api::{ReleaseWindow, Weekday};

/// How far ahead to look for the next opening: a week covers every weekly window, and a
/// day more covers one that opens on the last day and runs past midnight.
const SEARCH_DAYS: i64 = 8;

/// Whether a release may add exposure now.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowState {
    Open,
    Closed { opens_at: Timestamp },
}

/// A window with its times and zone read, so a bad spec fails before any clock is asked.
struct ParsedWindow {
    days: Vec<civil::Weekday>,
    start: Time,
    end: Time,
    zone: TimeZone,
}

/// Open when there are no windows or `now` is inside one (start inclusive, end exclusive);
/// otherwise Closed with the earliest instant any window opens after `now`.
pub fn window_state(windows: &[ReleaseWindow], now: Timestamp) -> Result<WindowState, String> {
    let parsed = windows.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    if parsed.is_empty() {
        return Ok(WindowState::Open);
    }
    let mut next_opening: Option<Timestamp> = None;
    for window in &parsed {
        // Start a day back: yesterday's overnight window may still be open.
        let today = now.to_zoned(window.zone.clone()).date();
        let openings = (-1..=SEARCH_DAYS)
            .filter_map(|offset| today.checked_add(offset.days()).ok())
            .filter_map(|day| window.span_opening_on(day));
        for (opens, closes) in openings {
            if opens <= now && now < closes {
                return Ok(WindowState::Open);
            }
            if opens > now {
                next_opening = Some(next_opening.map_or(opens, |at| at.min(opens)));
                break;
            }
        }
    }
    // Every window opens at least weekly, so the search finds one; MAX only if time ran out.
    Ok(WindowState::Closed {
        opens_at: next_opening.unwrap_or(Timestamp::MAX),
    })
}

impl ParsedWindow {
    /// The instants the window opens and closes when it opens on `day`; None when it does
    /// not open that day.
    fn span_opening_on(&self, day: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.days.is_empty() && !self.days.contains(&day.weekday()) {
            return None;
        }
        // At or before the start: the window closes on the next day (equal: 24 hours).
        let close_day = if self.end <= self.start {
            day.tomorrow().ok()?
        } else {
            day
        };
        let opens = self.instant(day, self.start)?;
        let closes = self.instant(close_day, self.end)?;
        Some((opens, closes))
    }

    fn instant(&self, day: Date, time: Time) -> Option<Timestamp> {
        let local = day.to_datetime(time);
        self.zone.to_ambiguous_timestamp(local).compatible().ok()
    }
}

fn parse(window: &ReleaseWindow) -> Result<ParsedWindow, String> {
    let zone = match &window.time_zone {
        None => TimeZone::UTC,
        Some(name) => TimeZone::get(name)
            .map_err(|_| format!("unknown time zone {name:?} in rollout.windows"))?,
    };
    Ok(ParsedWindow {
        days: window.days.iter().copied().map(civil_weekday).collect(),
        start: parse_time("start", &window.start)?,
        end: parse_time("end", &window.end)?,
        zone,
    })
}

/// `HH:MM` on a 24-hour clock.
fn parse_time(field: &str, text: &str) -> Result<Time, String> {
    Time::strptime("%H:%M", text).map_err(|_| {
        format!("cannot read {field} time {text:?} in rollout.windows: expected HH:MM")
    })
}

fn civil_weekday(day: Weekday) -> civil::Weekday {
    // `Weekday` lists Mon..Sun in order, as its derived `Ord` already relies on.
    civil::Weekday::from_monday_zero_offset(day as i8).expect("seven weekdays")
}

/// The windows for people, e.g. `Mon-Fri 09:00-17:00 Europe/Berlin; Sat 10:00-12:00 UTC`.
pub fn describe(windows: &[ReleaseWindow]) -> String {
    if windows.is_empty() {
        return "any time".to_string();
    }
    let describe_one = |window: &ReleaseWindow| {
        let zone = window.time_zone.as_deref().unwrap_or("UTC");
        let hours = if window.start == window.end {
            format!("24h from {}", window.start)
        } else {
            format!("{}-{}", window.start, window.end)
        };
        format!("{} {hours} {zone}", describe_days(&window.days))
    };
    windows
        .iter()
        .map(describe_one)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs of three or more days as `Mon-Fri`, shorter ones listed: `Sat,Sun`.
fn describe_days(days: &[Weekday]) -> String {
    if days.is_empty() {
        return "every day".to_string();
    }
    let mut sorted = days.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut runs: Vec<(Weekday, Weekday)> = Vec::new();
    for day in sorted {
        match runs.last_mut() {
            Some((_, last)) if *last as u8 + 1 == day as u8 => *last = day,
            _ => runs.push((day, day)),
        }
    }
    let name = |&(first, last): &(Weekday, Weekday)| match last as u8 - first as u8 {
        0 => format!("{first:?}"),
        1 => format!("{first:?},{last:?}"),
        _ => format!("{first:?}-{last:?}"),
    };
    runs.iter().map(name).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weekday::*;

    fn window(days: &[Weekday], start: &str, end: &str, zone: Option<&str>) -> ReleaseWindow {
        ReleaseWindow {
            days: days.to_vec(),
            start: start.into(),
            end: end.into(),
            time_zone: zone.map(Into::into),
        }
    }

    /// `"open"`, or the instant the windows next open.
    fn state(windows: &[ReleaseWindow], now: &str) -> String {
        match window_state(windows, now.parse().unwrap()).unwrap() {
            WindowState::Open => "open".to_string(),
            WindowState::Closed { opens_at } => opens_at.to_string(),
        }
    }

    // 2026-03-23 is a Monday; Europe/Berlin moves to summer time on Sunday 2026-03-29.
    const WEEKDAYS: &[Weekday] = &[Mon, Tue, Wed, Thu, Fri];

    #[test]
    fn no_windows_is_always_open() {
        assert_eq!(state(&[], "2026-03-28T03:00:00Z"), "open");
    }

    #[test]
    fn open_from_start_inclusive_to_end_exclusive() {
        let office = [window(WEEKDAYS, "09:00", "17:00", None)];
        assert_eq!(
            state(&office, "2026-03-23T08:00:00Z"),
            "2026-03-23T09:00:00Z"
        );
        assert_eq!(state(&office, "2026-03-23T09:00:00Z"), "open");
        assert_eq!(state(&office, "2026-03-23T16:59:59Z"), "open");
        assert_eq!(
            state(&office, "2026-03-23T17:00:00Z"),
            "2026-03-24T09:00:00Z"
        );
    }

    #[test]
    fn days_filter_skips_to_the_next_listed_day() {
        let office = [window(WEEKDAYS, "09:00", "17:00", None)];
        assert_eq!(
            state(&office, "2026-03-28T12:00:00Z"),
            "2026-03-30T09:00:00Z"
        );
        let wednesdays = [window(&[Wed], "09:00", "17:00", None)];
        assert_eq!(
            state(&wednesdays, "2026-03-23T10:00:00Z"),
            "2026-03-25T09:00:00Z"
        );
    }

    #[test]
    fn overnight_window_stays_open_past_midnight() {
        let friday_night = [window(&[Fri], "22:00", "02:00", None)];
        assert_eq!(state(&friday_night, "2026-03-28T01:00:00Z"), "open");
        assert_eq!(
            state(&friday_night, "2026-03-28T02:00:00Z"),
            "2026-04-03T22:00:00Z"
        );
    }

    #[test]
    fn start_equal_to_end_is_a_whole_day() {
        let saturday = [window(&[Sat], "10:00", "10:00", None)];
        assert_eq!(state(&saturday, "2026-03-29T09:59:00Z"), "open");
        assert_eq!(
            state(&saturday, "2026-03-29T10:00:00Z"),
            "2026-04-04T10:00:00Z"
        );
    }

    #[test]
    fn earliest_opening_of_several_windows() {
        let windows = [
            window(&[Thu], "09:00", "10:00", None),
            window(&[Tue], "13:00", "14:00", None),
        ];
        assert_eq!(
            state(&windows, "2026-03-23T12:00:00Z"),
            "2026-03-24T13:00:00Z"
        );
    }

    #[test]
    fn named_zone_follows_daylight_saving() {
        let berlin = [window(WEEKDAYS, "09:00", "17:00", Some("Europe/Berlin"))];
        // Friday in winter time (UTC+1), then Monday in summer time (UTC+2).
        assert_eq!(
            state(&berlin, "2026-03-27T07:59:00Z"),
            "2026-03-27T08:00:00Z"
        );
        assert_eq!(state(&berlin, "2026-03-27T08:00:00Z"), "open");
        assert_eq!(
            state(&berlin, "2026-03-28T12:00:00Z"),
            "2026-03-30T07:00:00Z"
        );
        assert_eq!(state(&berlin, "2026-03-30T07:00:00Z"), "open");
    }

    #[test]
    fn time_skipped_by_the_clock_change_opens_after_the_gap() {
        // 02:30 does not exist in Berlin on 2026-03-29: compatible reads it as 03:30 CEST.
        let night = [window(&[Sun], "02:30", "04:00", Some("Europe/Berlin"))];
        assert_eq!(
            state(&night, "2026-03-29T01:00:00Z"),
            "2026-03-29T01:30:00Z"
        );
        assert_eq!(state(&night, "2026-03-29T01:45:00Z"), "open");
    }

    #[test]
    fn bad_zone_or_time_is_an_error_people_can_read() {
        let now = "2026-03-23T09:00:00Z".parse().unwrap();
        let mars = [window(&[], "09:00", "17:00", Some("Mars/Base"))];
        let error = window_state(&mars, now).unwrap_err();
        assert_eq!(error, "unknown time zone \"Mars/Base\" in rollout.windows");
        let error = window_state(&[window(&[], "9am", "17:00", None)], now).unwrap_err();
        assert!(error.contains("start time \"9am\""), "{error}");
        assert!(window_state(&[window(&[], "09:00", "24:00", None)], now).is_err());
    }

    #[test]
    fn describes_days_hours_and_zone() {
        let windows = [
            window(
                &[Fri, Mon, Tue, Wed, Thu],
                "09:00",
                "17:00",
                Some("Europe/Berlin"),
            ),
            window(&[Sat], "10:00", "12:00", None),
            window(&[Sat, Sun], "22:00", "02:00", None),
            window(&[], "06:00", "06:00", None),
        ];
        let expected = "Mon-Fri 09:00-17:00 Europe/Berlin; Sat 10:00-12:00 UTC; \
                        Sat,Sun 22:00-02:00 UTC; every day 24h from 06:00 UTC";
        assert_eq!(describe(&windows), expected);
        assert_eq!(describe(&[]), "any time");
    }
}
