//! Calendar-aware periods: lease, offline lease, grace, linger and plan durations.

use chrono::{DateTime, Duration, Months, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

use super::RuleViolation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntervalUnit {
    None,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl IntervalUnit {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

/// A period such as `{"unit": "month", "count": 1}`. `{"unit": "none"}` is the empty period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "IntervalRepr")]
pub struct Interval {
    pub unit: IntervalUnit,
    /// 1 or more, required unless the unit is `none`; at most 100 years in the unit.
    #[schema(minimum = 0, maximum = 52_704_000)]
    pub count: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalRepr {
    unit: IntervalUnit,
    count: Option<u32>,
}

/// The longest period we accept, so date arithmetic never overflows: 100 years in any unit.
const MAX_COUNT: [(IntervalUnit, u32); 6] = [
    (IntervalUnit::Minute, 100 * 366 * 24 * 60),
    (IntervalUnit::Hour, 100 * 366 * 24),
    (IntervalUnit::Day, 100 * 366),
    (IntervalUnit::Week, 100 * 53),
    (IntervalUnit::Month, 100 * 12),
    (IntervalUnit::Year, 100),
];

/// From a request: a real unit needs a count of at least one. `{"unit": "day"}` or a zero count
/// is refused rather than read as "no period", which would silently remove, say, a grace period.
impl TryFrom<IntervalRepr> for Interval {
    type Error = super::bounds::Rejected;
    fn try_from(repr: IntervalRepr) -> Result<Self, Self::Error> {
        match (repr.unit, repr.count) {
            (IntervalUnit::None, None | Some(0)) => Ok(Self::NONE),
            (IntervalUnit::None, Some(_)) => Err(RuleViolation::new(
                "invalid_interval",
                "the empty period {\"unit\": \"none\"} takes no count",
            )
            .into()),
            (unit, None | Some(0)) => Err(RuleViolation::new(
                "invalid_interval",
                format!(
                    "a period in {}s needs a count of 1 or more; use {{\"unit\": \"none\"}} for no period",
                    unit.as_str()
                ),
            )
            .into()),
            (unit, Some(count)) => Ok(Interval::new(unit, count)?),
        }
    }
}

impl Interval {
    pub const NONE: Interval = Interval {
        unit: IntervalUnit::None,
        count: 0,
    };

    pub fn new(unit: IntervalUnit, count: u32) -> Result<Self, RuleViolation> {
        if unit == IntervalUnit::None || count == 0 {
            return Ok(Self::NONE);
        }
        let max = MAX_COUNT
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, max)| *max)
            .unwrap_or(0);
        if count > max {
            return Err(RuleViolation::new(
                "invalid_interval",
                format!("an interval may span at most 100 years ({max} {}s)", unit.as_str()),
            ));
        }
        Ok(Self { unit, count })
    }

    pub const fn days(count: u32) -> Self {
        Self {
            unit: IntervalUnit::Day,
            count,
        }
    }

    pub const fn hours(count: u32) -> Self {
        Self {
            unit: IntervalUnit::Hour,
            count,
        }
    }

    pub const fn months(count: u32) -> Self {
        Self {
            unit: IntervalUnit::Month,
            count,
        }
    }

    pub const fn years(count: u32) -> Self {
        Self {
            unit: IntervalUnit::Year,
            count,
        }
    }

    pub fn is_none(&self) -> bool {
        self.unit == IntervalUnit::None || self.count == 0
    }

    /// `at` moved forward by this period. Months and years follow the calendar
    /// (31 January + 1 month = 28/29 February). Saturates at the end of representable time.
    pub fn after(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let count = self.count as i64;
        let moved = match self.unit {
            IntervalUnit::None => Some(at),
            IntervalUnit::Minute => at.checked_add_signed(Duration::minutes(count)),
            IntervalUnit::Hour => at.checked_add_signed(Duration::hours(count)),
            IntervalUnit::Day => at.checked_add_signed(Duration::days(count)),
            IntervalUnit::Week => at.checked_add_signed(Duration::weeks(count)),
            IntervalUnit::Month => at.checked_add_months(Months::new(self.count)),
            IntervalUnit::Year => at.checked_add_months(Months::new(self.count.saturating_mul(12))),
        };
        moved.unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Stored as `"<count> <unit>"`, e.g. `"30 day"`.
impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.count, self.unit.as_str())
    }
}

impl FromStr for Interval {
    type Err = RuleViolation;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RuleViolation::new("invalid_interval", format!("not an interval: {s:?}"));
        let (count, unit) = s.trim().split_once(' ').ok_or_else(bad)?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        let unit = match unit {
            "none" => IntervalUnit::None,
            "minute" => IntervalUnit::Minute,
            "hour" => IntervalUnit::Hour,
            "day" => IntervalUnit::Day,
            "week" => IntervalUnit::Week,
            "month" => IntervalUnit::Month,
            "year" => IntervalUnit::Year,
            _ => return Err(bad()),
        };
        Interval::new(unit, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().unwrap()
    }

    #[test]
    fn months_follow_the_calendar() {
        assert_eq!(Interval::months(1).after(at(2026, 1, 31)), at(2026, 2, 28));
        assert_eq!(Interval::years(1).after(at(2024, 2, 29)), at(2025, 2, 28));
        assert_eq!(Interval::days(30).after(at(2026, 1, 1)), at(2026, 1, 31));
        assert_eq!(Interval::NONE.after(at(2026, 1, 1)), at(2026, 1, 1));
    }

    #[test]
    fn round_trips_through_text() {
        for interval in [
            Interval::days(30),
            Interval::months(12),
            Interval::NONE,
            Interval::hours(1),
        ] {
            assert_eq!(interval.to_string().parse::<Interval>().unwrap(), interval);
        }
        assert!("3 fortnight".parse::<Interval>().is_err());
        assert!("x day".parse::<Interval>().is_err());
    }

    #[test]
    fn zero_count_is_none_and_huge_counts_are_refused() {
        assert!(Interval::new(IntervalUnit::Day, 0).unwrap().is_none());
        assert_eq!(
            Interval::new(IntervalUnit::Year, 101).unwrap_err().code,
            "invalid_interval"
        );
        let parsed: Interval = serde_json::from_str(r#"{"unit":"none"}"#).unwrap();
        assert!(parsed.is_none());
        for bad in [
            r#"{"unit":"day"}"#,
            r#"{"unit":"day","count":0}"#,
            r#"{"unit":"none","count":3}"#,
            r#"{"unit":"year","count":101}"#,
        ] {
            let error = serde_json::from_str::<Interval>(bad).unwrap_err().to_string();
            assert_eq!(
                super::super::bounds::rule_code_in(&error),
                Some("invalid_interval"),
                "{bad}"
            );
        }
        assert!(serde_json::from_str::<Interval>(r#"{"unit":"day","count":-1}"#).is_err());
    }
}
