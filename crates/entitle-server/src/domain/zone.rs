//! The time zone a storefront's local dates are in (Zuora sends `2026-03-31` and
//! `2015-03-08T02:00:00` in the tenant's zone). A small table of zones with their daylight-saving
//! rule instead of the whole tz database (`chrono-tz`): storefront zones are billing-account
//! settings, a handful of common ones, and the rules below are the ones in force since 2007 (US)
//! and 1996 (EU); any other zone can be given as a fixed offset.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};

/// Which daylight-saving rule a zone follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    None,
    /// Second Sunday of March 02:00 to first Sunday of November 02:00, local time.
    UnitedStates,
    /// Last Sunday of March to last Sunday of October, 01:00 UTC.
    EuropeanUnion,
}

const ZONES: &[(&str, i32, Rule)] = &[
    ("UTC", 0, Rule::None),
    ("Etc/UTC", 0, Rule::None),
    ("America/Los_Angeles", -8 * 60, Rule::UnitedStates),
    ("America/Denver", -7 * 60, Rule::UnitedStates),
    ("America/Phoenix", -7 * 60, Rule::None),
    ("America/Chicago", -6 * 60, Rule::UnitedStates),
    ("America/New_York", -5 * 60, Rule::UnitedStates),
    ("America/Anchorage", -9 * 60, Rule::UnitedStates),
    ("Pacific/Honolulu", -10 * 60, Rule::None),
    ("Europe/London", 0, Rule::EuropeanUnion),
    ("Europe/Dublin", 0, Rule::EuropeanUnion),
    ("Europe/Lisbon", 0, Rule::EuropeanUnion),
    ("Europe/Amsterdam", 60, Rule::EuropeanUnion),
    ("Europe/Berlin", 60, Rule::EuropeanUnion),
    ("Europe/Brussels", 60, Rule::EuropeanUnion),
    ("Europe/Madrid", 60, Rule::EuropeanUnion),
    ("Europe/Paris", 60, Rule::EuropeanUnion),
    ("Europe/Rome", 60, Rule::EuropeanUnion),
    ("Europe/Stockholm", 60, Rule::EuropeanUnion),
    ("Europe/Vienna", 60, Rule::EuropeanUnion),
    ("Europe/Warsaw", 60, Rule::EuropeanUnion),
    ("Europe/Zurich", 60, Rule::EuropeanUnion),
    ("Europe/Athens", 120, Rule::EuropeanUnion),
    ("Europe/Helsinki", 120, Rule::EuropeanUnion),
    ("Asia/Dubai", 4 * 60, Rule::None),
    ("Asia/Kolkata", 5 * 60 + 30, Rule::None),
    ("Asia/Singapore", 8 * 60, Rule::None),
    ("Asia/Shanghai", 8 * 60, Rule::None),
    ("Asia/Hong_Kong", 8 * 60, Rule::None),
    ("Asia/Tokyo", 9 * 60, Rule::None),
    ("Asia/Seoul", 9 * 60, Rule::None),
];

/// A zone from the table, or a fixed offset (`+05:30`, `-08:00`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    /// Standard offset from UTC, in minutes.
    offset: i32,
    rule: Rule,
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            offset: 0,
            rule: Rule::None,
        }
    }

    pub fn parse(text: &str) -> Option<Zone> {
        if let Some(&(name, offset, rule)) = ZONES.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(text)) {
            return Some(Zone {
                name: name.to_owned(),
                offset,
                rule,
            });
        }
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            _ => return None,
        };
        let (hours, minutes) = rest.split_once(':')?;
        if hours.len() != 2 || minutes.len() != 2 {
            return None;
        }
        let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
        if hours > 14 || minutes > 59 {
            return None;
        }
        Some(Zone {
            name: text.to_owned(),
            offset: sign * (hours * 60 + minutes),
            rule: Rule::None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the zones known by name (the others are given as offsets).
    pub fn known() -> impl Iterator<Item = &'static str> {
        ZONES.iter().map(|(name, _, _)| *name)
    }

    /// The instant a wall-clock time in this zone stands for. A time in the hour skipped when
    /// clocks go forward is read with the standard offset (02:30 becomes 03:30 daylight time), a
    /// time in the hour repeated when they go back is the first (daylight) one: the provider
    /// wrote a real event's time, so it is never refused.
    pub fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let standard = Duration::minutes(i64::from(self.offset));
        let daylight = match self.daylight(local.date().year()) {
            Some((start, end)) => local >= start + Duration::hours(1) && local < end,
            None => false,
        };
        let offset = if daylight {
            standard + Duration::hours(1)
        } else {
            standard
        };
        (local - offset).and_utc()
    }

    /// The start of a local day.
    pub fn start_of(&self, day: NaiveDate) -> DateTime<Utc> {
        self.instant(day.and_time(NaiveTime::MIN))
    }

    /// The local wall-clock times (standard time at the start, daylight time at the end) at
    /// which daylight saving starts and ends in `year`.
    fn daylight(&self, year: i32) -> Option<(NaiveDateTime, NaiveDateTime)> {
        let at = |day: NaiveDate, hour: u32| day.and_hms_opt(hour, 0, 0);
        match self.rule {
            Rule::None => None,
            Rule::UnitedStates => Some((
                at(NaiveDate::from_weekday_of_month_opt(year, 3, Weekday::Sun, 2)?, 2)?,
                at(NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Sun, 1)?, 2)?,
            )),
            Rule::EuropeanUnion => {
                let standard = Duration::minutes(i64::from(self.offset));
                Some((
                    at(last_sunday(year, 3)?, 1)? + standard,
                    at(last_sunday(year, 10)?, 1)? + standard + Duration::hours(1),
                ))
            }
        }
    }
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let last = NaiveDate::from_ymd_opt(year, month + 1, 1)?.pred_opt()?;
    let back = last.weekday().num_days_from_sunday();
    last.checked_sub_signed(Duration::days(i64::from(back)))
}

/// A provider's date or date-time: RFC 3339 as given, a date-time without offset or a date in
/// `zone` (a date stands for the start of that day).
pub fn read_time(text: &str, zone: &Zone) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
            return Some(zone.instant(local));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|day| zone.start_of(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn local_times_become_instants_across_daylight_saving() {
        let la = Zone::parse("America/Los_Angeles").unwrap();
        // Winter and summer.
        assert_eq!(read_time("2026-01-15T10:00:00", &la), Some(utc("2026-01-15T18:00:00Z")));
        assert_eq!(read_time("2026-07-15T10:00:00", &la), Some(utc("2026-07-15T17:00:00Z")));
        // Zuora's documented example falls in the skipped hour (8 March 2015, 02:00 did not
        // happen in Los Angeles): read as 03:00 daylight time, not refused.
        assert_eq!(read_time("2015-03-08T02:00:00", &la), Some(utc("2015-03-08T10:00:00Z")));
        assert_eq!(read_time("2015-03-08T01:59:59", &la), Some(utc("2015-03-08T09:59:59Z")));
        assert_eq!(read_time("2015-03-08T03:00:00", &la), Some(utc("2015-03-08T10:00:00Z")));
        // The repeated hour in November is the first one.
        assert_eq!(read_time("2026-11-01T01:30:00", &la), Some(utc("2026-11-01T08:30:00Z")));
        assert_eq!(read_time("2026-11-01T02:00:00", &la), Some(utc("2026-11-01T10:00:00Z")));
        // A date is the start of that day there, not midnight UTC.
        assert_eq!(read_time("2026-03-31", &la), Some(utc("2026-03-31T07:00:00Z")));
        assert_eq!(read_time("2026-12-31", &la), Some(utc("2026-12-31T08:00:00Z")));
        // An offset in the text wins.
        assert_eq!(
            read_time("2026-01-15T10:00:00+01:00", &la),
            Some(utc("2026-01-15T09:00:00Z"))
        );
        assert_eq!(read_time("15/01/2026", &la), None);
    }

    #[test]
    fn european_zones_switch_at_one_utc_and_offsets_are_fixed() {
        let berlin = Zone::parse("europe/berlin").unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin");
        // 29 March 2026: 02:00 local (01:00 UTC) jumps to 03:00.
        assert_eq!(
            read_time("2026-03-29T01:59:00", &berlin),
            Some(utc("2026-03-29T00:59:00Z"))
        );
        assert_eq!(
            read_time("2026-03-29T03:00:00", &berlin),
            Some(utc("2026-03-29T01:00:00Z"))
        );
        // 25 October 2026: 03:00 daylight goes back to 02:00.
        assert_eq!(
            read_time("2026-10-25T02:30:00", &berlin),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            read_time("2026-10-25T03:00:00", &berlin),
            Some(utc("2026-10-25T02:00:00Z"))
        );
        let london = Zone::parse("Europe/London").unwrap();
        assert_eq!(read_time("2026-07-01", &london), Some(utc("2026-06-30T23:00:00Z")));
        let india = Zone::parse("+05:30").unwrap();
        assert_eq!(
            read_time("2026-07-01T05:30:00", &india),
            Some(utc("2026-07-01T00:00:00Z"))
        );
        assert_eq!(read_time("2026-07-01", &Zone::utc()), Some(utc("2026-07-01T00:00:00Z")));
        for bad in ["Mars/Olympus", "+5:30", "+15:00", "-08:60", "", "08:00"] {
            assert_eq!(Zone::parse(bad), None, "{bad}");
        }
        assert!(Zone::known().any(|z| z == "America/Los_Angeles"));
    }
}
