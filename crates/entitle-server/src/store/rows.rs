//! Reading typed values out of `Any` rows, with errors that name the column.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::str::FromStr;

use super::{StoreError, StoreResult};

pub(crate) trait RowExt {
    fn text(&self, column: &str) -> StoreResult<String>;
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>>;
    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>>;
    /// A text column parsed by `parse` (a domain constructor).
    fn parsed<T, E>(&self, column: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> StoreResult<T>;
    /// A text column parsed with `FromStr`.
    fn parse_column<T: FromStr>(&self, column: &str) -> StoreResult<T> {
        self.parsed(column, |s| s.parse::<T>())
    }
}

fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {detail}"))
}

fn to_time(column: &str, millis: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| corrupt(column, "timestamp out of range"))
}

impl RowExt for AnyRow {
    fn text(&self, column: &str) -> StoreResult<String> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn int(&self, column: &str) -> StoreResult<i64> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.try_get(column).map_err(|e| corrupt(column, e))
    }

    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>> {
        to_time(column, self.int(column)?)
    }

    fn opt_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.opt_int(column)?.map(|m| to_time(column, m)).transpose()
    }

    fn parsed<T, E>(&self, column: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> StoreResult<T> {
        let text = self.text(column)?;
        parse(&text).map_err(|_| corrupt(column, format!("unexpected value {text:?}")))
    }
}

/// For the enums of the domain, whose `parse` answers `Option`.
pub(crate) fn some<T>(value: Option<T>) -> Result<T, ()> {
    value.ok_or(())
}
