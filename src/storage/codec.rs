//! Conversions between domain values and their stored form: JSON text for nested values, hyphenated
//! text for ids and task types, INTEGER milliseconds for timestamps.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{DatabaseErrorKind, StorageError};
use super::schema::{millis_to_timestamp, timestamp_to_millis};

/// `value` as JSON text.
pub(crate) fn to_json<T: Serialize + ?Sized>(
    what: &'static str,
    value: &T,
) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|source| StorageError::serialization(what, source))
}

/// An optional value as JSON text, `None` staying NULL.
pub(crate) fn to_optional_json<T: Serialize>(
    what: &'static str,
    value: Option<&T>,
) -> Result<Option<String>, StorageError> {
    value.map(|value| to_json(what, value)).transpose()
}

/// JSON text read back.
pub(crate) fn from_json<T: DeserializeOwned>(
    what: &'static str,
    json: &str,
) -> Result<T, StorageError> {
    serde_json::from_str(json).map_err(|source| StorageError::serialization(what, source))
}

/// Optional JSON text (a NULL column) read back.
pub(crate) fn from_optional_json<T: DeserializeOwned>(
    what: &'static str,
    json: Option<String>,
) -> Result<Option<T>, StorageError> {
    json.map(|json| from_json(what, &json)).transpose()
}

/// A value stored as plain text (an id, a task type) read back through its serde form, so that a bad
/// value is a [`StorageError::Serialization`] like any other.
pub(crate) fn from_text<T: DeserializeOwned>(
    what: &'static str,
    text: String,
) -> Result<T, StorageError> {
    serde_json::from_value(serde_json::Value::String(text))
        .map_err(|source| StorageError::serialization(what, source))
}

/// Checks that `value` can be stored and read back: scores must be finite. JSON, the stored form of
/// most of them, has no NaN or infinity (serde_json writes them as `null`, which cannot be read back
/// into a number), and SQLite stores a NaN `REAL` as `NULL`.
pub(crate) fn finite(field: &'static str, value: f32) -> Result<(), StorageError> {
    if value.is_finite() {
        return Ok(());
    }
    Err(StorageError::InvalidValue {
        field,
        problem: format!(
            "{value} is not a finite number: scores must be finite to be stored (JSON, their stored \
             form, has no NaN or infinity)"
        ),
    })
}

/// The deepest nesting of arrays and objects a free-form JSON value (a step's `parameters`) may have.
/// serde_json reads no deeper than 128 levels, counted from the stored document (the steps array and
/// the step object are two of them): a value stored deeper could never be read back.
pub(crate) const MAX_JSON_DEPTH: usize = 100;

/// Checks that a free-form JSON value nests no deeper than [`MAX_JSON_DEPTH`], without recursion (a
/// value that deep would overflow the stack of a recursive walk, serde_json's writer included).
pub(crate) fn shallow(field: &'static str, value: &serde_json::Value) -> Result<(), StorageError> {
    let mut pending = vec![(value, 1)];
    while let Some((value, depth)) = pending.pop() {
        if (value.is_array() || value.is_object()) && depth > MAX_JSON_DEPTH {
            return Err(StorageError::InvalidValue {
                field,
                problem: format!(
                    "arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep, and \
                     could not be read back: flatten the value, or store it as a JSON string"
                ),
            });
        }
        match value {
            serde_json::Value::Array(items) => pending.extend(items.iter().map(|v| (v, depth + 1))),
            serde_json::Value::Object(fields) => {
                pending.extend(fields.values().map(|v| (v, depth + 1)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks that a query threshold is a number: NaN is neither above nor below anything, and SQLite
/// would bind it as `NULL`, which the queries read as "no filter".
pub(crate) fn not_nan(field: &'static str, value: Option<f32>) -> Result<(), StorageError> {
    match value {
        Some(value) if value.is_nan() => Err(StorageError::InvalidValue {
            field,
            problem: String::from(
                "NaN is not a threshold: give a number (an infinity is fine), or no filter",
            ),
        }),
        _ => Ok(()),
    }
}

/// A text column read back through `CAST(column AS BLOB)`. libsql reads a `TEXT` value only up to its
/// first NUL character, so text that contains one would come back cut short; its bytes come back
/// whole.
pub(crate) fn text(what: &'static str, bytes: Vec<u8>) -> Result<String, StorageError> {
    String::from_utf8(bytes).map_err(|error| {
        StorageError::database(
            DatabaseErrorKind::Other,
            format!("the stored {what} is not valid UTF-8: {error}"),
        )
    })
}

/// A timestamp as stored.
pub(crate) fn millis(time: &DateTime<Utc>) -> i64 {
    timestamp_to_millis(time)
}

/// A stored timestamp read back.
pub(crate) fn timestamp(what: &'static str, millis: i64) -> Result<DateTime<Utc>, StorageError> {
    millis_to_timestamp(millis).ok_or_else(|| {
        StorageError::database(
            DatabaseErrorKind::Other,
            format!("the stored {what} ({millis} ms) is outside the range of a timestamp"),
        )
    })
}

/// A `LIMIT` parameter: SQLite reads a negative limit as "no limit".
pub(crate) fn limit(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX))
}
