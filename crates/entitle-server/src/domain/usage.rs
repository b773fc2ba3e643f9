//! Usage over time: UTC days, the range a chart asks for, and the day series made from the
//! per-day rollup (days without a row carry the previous day's end value).

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::RuleViolation;

/// The longest range one request may ask for, in days (a leap year).
pub const MAX_DAYS: u64 = 366;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: u64 = 30;

const DAY_MILLIS: i64 = 86_400_000;

/// The UTC day `at` falls on.
pub fn day_of(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// The first millisecond of a UTC day: how the rollup tables key their rows.
pub fn day_start_millis(day: NaiveDate) -> i64 {
    day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis()
}

/// The UTC day a rollup key stands for.
pub fn day_from_millis(millis: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(millis - millis.rem_euclid(DAY_MILLIS)).map(day_of)
}

/// An inclusive range of UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DayRange {
    /// The range a request asks for: `from` and `to` as `YYYY-MM-DD` (default: the last 30 days
    /// up to `today`), `bucket` only `day`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        bucket: Option<&str>,
        today: NaiveDate,
    ) -> Result<DayRange, RuleViolation> {
        if let Some(bucket) = bucket.filter(|b| *b != "day") {
            return Err(RuleViolation::new(
                "invalid_bucket",
                format!(
                    "bucket must be `day` (got `{}`)",
                    bucket.chars().take(20).collect::<String>()
                ),
            ));
        }
        let date = |name: &str, value: &str| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map_err(|_| RuleViolation::new("invalid_date", format!("{name} must be a date as YYYY-MM-DD")))
        };
        let to = to.map(|v| date("to", v)).transpose()?;
        let from = from.map(|v| date("from", v)).transpose()?;
        let back = |end: NaiveDate| {
            end.checked_sub_days(Days::new(DEFAULT_DAYS - 1))
                .unwrap_or(NaiveDate::MIN)
        };
        let (from, to) = match (from, to) {
            (Some(from), Some(to)) => (from, to),
            (None, Some(to)) => (back(to), to),
            // From a given day on: up to today, or 30 days if that is shorter.
            (Some(from), None) => (
                from,
                from.checked_add_days(Days::new(DEFAULT_DAYS - 1))
                    .map_or(today, |end| end.min(today))
                    .max(from),
            ),
            (None, None) => (back(today), today),
        };
        if from > to {
            return Err(RuleViolation::new("invalid_range", "from must not be after to"));
        }
        let range = DayRange { from, to };
        if range.len() > MAX_DAYS {
            return Err(RuleViolation::new(
                "invalid_range",
                format!("a range covers at most {MAX_DAYS} days"),
            ));
        }
        Ok(range)
    }

    /// How many days the range covers.
    pub fn len(&self) -> u64 {
        u64::try_from((self.to - self.from).num_days() + 1).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.from > self.to
    }

    /// The part of the range between `first` and `last` (both included); empty if none.
    pub fn within(&self, first: NaiveDate, last: NaiveDate) -> DayRange {
        DayRange {
            from: self.from.max(first),
            to: self.to.min(last),
        }
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }
}

/// Seats on one day as the rollup stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatDayRow {
    pub day: NaiveDate,
    /// Seats in use before the day's first change.
    pub start: i64,
    pub min: i64,
    pub max: i64,
    /// Seats in use after the day's last change.
    pub end: i64,
    pub licensed: i64,
    pub overdraft: Option<i64>,
}

/// Seats on one day of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct SeatDay {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    /// The fewest seats in use at any moment of the day.
    pub seats_min: i64,
    /// The most seats in use at any moment of the day.
    pub seats_max: i64,
    /// Seats in use at the end of the day (or now, for today).
    pub seats_end: i64,
    /// The seat count.
    pub licensed: i64,
    /// Seats allowed beyond the seat count (flagged as overdraft); `null`: unlimited.
    pub overdraft: Option<i64>,
}

/// The seats the entitlement has now, for a range with no rollup row on any side (nothing
/// changed since the rollup began).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatsNow {
    pub seats_used: i64,
    pub licensed: i64,
    pub overdraft: Option<i64>,
}

/// One value per day of `range`: a day with a row takes it, a day without one carries the end
/// of the last row before it. `before` is the last row before the range; without one, days
/// before the first row take that row's start (nothing changed before it), and with no row at
/// all (`after` is the first row after the range) the present values hold throughout.
pub fn seat_series(
    range: DayRange,
    before: Option<&SeatDayRow>,
    rows: &[SeatDayRow],
    after: Option<&SeatDayRow>,
    now: SeatsNow,
) -> Vec<SeatDay> {
    let mut carry = match (before, rows.first().or(after)) {
        (Some(row), _) => (row.end, row.licensed, row.overdraft),
        (None, Some(first)) => (first.start, first.licensed, first.overdraft),
        (None, None) => (now.seats_used, now.licensed, now.overdraft),
    };
    let mut rows = rows.iter().peekable();
    let mut series = Vec::new();
    for day in range.days() {
        while rows.next_if(|row| row.day < day).is_some() {}
        match rows.next_if(|row| row.day == day) {
            Some(row) => {
                series.push(SeatDay {
                    day,
                    seats_min: row.min,
                    seats_max: row.max,
                    seats_end: row.end,
                    licensed: row.licensed,
                    overdraft: row.overdraft,
                });
                carry = (row.end, row.licensed, row.overdraft);
            }
            None => series.push(SeatDay {
                day,
                seats_min: carry.0,
                seats_max: carry.0,
                seats_end: carry.0,
                licensed: carry.1,
                overdraft: carry.2,
            }),
        }
    }
    series
}

/// A metered feature's use on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct UseDay {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    /// The sum of the usage recorded that day.
    pub used: i64,
}

/// One value per day of `range` from the (day, used) rows; a day without a row used nothing.
pub fn use_series(range: DayRange, rows: &[(NaiveDate, i64)]) -> Vec<UseDay> {
    range
        .days()
        .map(|day| UseDay {
            day,
            used: rows.iter().filter(|(d, _)| *d == day).map(|(_, used)| used).sum(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn day_keys_are_utc_midnights() {
        let at: DateTime<Utc> = "2024-03-05T23:59:59.999Z".parse().unwrap();
        assert_eq!(day_of(at), d("2024-03-05"));
        let key = day_start_millis(d("2024-03-05"));
        assert_eq!(key % DAY_MILLIS, 0);
        assert_eq!(day_from_millis(key), Some(d("2024-03-05")));
        assert_eq!(day_from_millis(key + DAY_MILLIS - 1), Some(d("2024-03-05")));
    }

    #[test]
    fn ranges_default_validate_and_cap() {
        let today = d("2024-03-31");
        let r = DayRange::parse(None, None, None, today).unwrap();
        assert_eq!((r.from, r.to, r.len()), (d("2024-03-02"), today, 30));
        let r = DayRange::parse(Some("2024-03-30"), None, Some("day"), today).unwrap();
        assert_eq!((r.from, r.to), (d("2024-03-30"), today));
        let r = DayRange::parse(None, Some("2024-01-30"), None, today).unwrap();
        assert_eq!((r.from, r.len()), (d("2024-01-01"), 30));
        let year = DayRange::parse(Some("2024-01-01"), Some("2024-12-31"), None, today).unwrap();
        assert_eq!(year.len(), 366);
        let code =
            |f: Option<&str>, t: Option<&str>, b: Option<&str>| DayRange::parse(f, t, b, today).unwrap_err().code;
        assert_eq!(code(Some("2024-01-01"), Some("2025-01-01"), None), "invalid_range");
        assert_eq!(code(Some("2024-02-02"), Some("2024-02-01"), None), "invalid_range");
        assert_eq!(code(Some("2024-2-30"), None, None), "invalid_date");
        assert_eq!(code(None, Some("yesterday"), None), "invalid_date");
        assert_eq!(code(None, None, Some("week")), "invalid_bucket");
    }

    #[test]
    fn within_clamps_and_can_be_empty() {
        let r = DayRange {
            from: d("2024-01-01"),
            to: d("2024-01-31"),
        };
        let c = r.within(d("2024-01-10"), d("2024-01-20"));
        assert_eq!((c.from, c.to, c.len()), (d("2024-01-10"), d("2024-01-20"), 11));
        let empty = r.within(d("2024-02-10"), d("2024-02-20"));
        assert!(empty.is_empty());
        assert_eq!(empty.days().count(), 0);
        assert_eq!(empty.len(), 0);
    }

    fn row(day: &str, start: i64, min: i64, max: i64, end: i64, licensed: i64) -> SeatDayRow {
        SeatDayRow {
            day: d(day),
            start,
            min,
            max,
            end,
            licensed,
            overdraft: Some(2),
        }
    }

    const NOW: SeatsNow = SeatsNow {
        seats_used: 9,
        licensed: 9,
        overdraft: None,
    };

    #[test]
    fn seat_days_carry_the_last_end_forward() {
        let range = DayRange {
            from: d("2024-01-01"),
            to: d("2024-01-05"),
        };
        let rows = [row("2024-01-02", 1, 1, 3, 2, 5), row("2024-01-04", 2, 0, 2, 0, 6)];
        let s = seat_series(range, Some(&row("2023-12-20", 0, 0, 1, 1, 5)), &rows, None, NOW);
        let triples: Vec<_> = s.iter().map(|d| (d.seats_min, d.seats_max, d.licensed)).collect();
        assert_eq!(triples, [(1, 1, 5), (1, 3, 5), (2, 2, 5), (0, 2, 6), (0, 0, 6)]);
        assert_eq!(s[4].seats_end, 0);
        assert_eq!(s[0].overdraft, Some(2));
    }

    #[test]
    fn seat_days_before_the_first_row_take_its_start() {
        let range = DayRange {
            from: d("2024-01-01"),
            to: d("2024-01-03"),
        };
        let s = seat_series(range, None, &[row("2024-01-03", 4, 4, 5, 5, 5)], None, NOW);
        let maxes: Vec<_> = s.iter().map(|d| d.seats_max).collect();
        assert_eq!(maxes, [4, 4, 5]);
        let s = seat_series(range, None, &[], Some(&row("2024-02-01", 7, 7, 8, 8, 5)), NOW);
        assert!(s
            .iter()
            .all(|d| d.seats_min == 7 && d.seats_max == 7 && d.licensed == 5));
        let s = seat_series(range, None, &[], None, NOW);
        assert!(s.iter().all(|d| d.seats_max == 9 && d.overdraft.is_none()));
    }

    #[test]
    fn use_days_are_zero_without_a_row() {
        let range = DayRange {
            from: d("2024-01-01"),
            to: d("2024-01-03"),
        };
        let s = use_series(range, &[(d("2024-01-02"), 7), (d("2024-01-09"), 1)]);
        let used: Vec<_> = s.iter().map(|u| u.used).collect();
        assert_eq!(used, [0, 7, 0]);
    }
}
