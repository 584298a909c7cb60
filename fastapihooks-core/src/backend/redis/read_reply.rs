//! An `XREADGROUP` reply taken apart as it is, without a copy of it.
//!
//! The redis crate's `StreamReadReply` clones the whole reply before it parses it (to try a
//! second layout when the first does not fit) and builds a map per stream and per entry on the
//! way: every task's bytes were copied once more than read, and a lease of a batch made several
//! allocations per entry besides (BENCHMARKS.md, session 29). This reads the one layout
//! `XREADGROUP` answers — per stream, its key and its entries, each an id and its fields — and
//! moves each value where it goes.

use std::collections::HashMap;

use redis::streams::StreamId;
use redis::{FromRedisValue, ParsingError, Value};

/// The entries of an `XREADGROUP` reply, per stream: its key and its entries in order. Nothing
/// (a read that timed out) is no stream.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ReadReply(pub(super) Vec<(String, Vec<StreamId>)>);

impl FromRedisValue for ReadReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let streams = match v {
            Value::Nil => return Ok(Self::default()),
            // RESP3: a map of key to entries.
            Value::Map(streams) => streams,
            // RESP2: an array of [key, entries].
            Value::Array(streams) => streams.into_iter().map(two).collect::<Result<_, _>>()?,
            other => return Err(unexpected("a stream per key", &other)),
        };
        let streams = streams
            .into_iter()
            .map(|(key, entries)| {
                let entries = match entries {
                    Value::Nil => Vec::new(),
                    Value::Array(entries) => {
                        entries.into_iter().map(entry).collect::<Result<_, _>>()?
                    }
                    other => return Err(unexpected("the entries of a stream", &other)),
                };
                Ok((text(key)?, entries))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(streams))
    }
}

/// One entry: `[id, [field, value, …]]` (the fields nil for an entry deleted since).
fn entry(v: Value) -> Result<StreamId, ParsingError> {
    let (id, fields) = two(v)?;
    let map = match fields {
        Value::Nil => HashMap::new(),
        Value::Array(fields) if fields.len() % 2 == 0 => {
            let mut map = HashMap::with_capacity(fields.len() / 2);
            let mut fields = fields.into_iter();
            while let (Some(field), Some(value)) = (fields.next(), fields.next()) {
                map.insert(text(field)?, value);
            }
            map
        }
        Value::Map(fields) => fields
            .into_iter()
            .map(|(field, value)| Ok((text(field)?, value)))
            .collect::<Result<_, ParsingError>>()?,
        other => return Err(unexpected("an entry's fields", &other)),
    };
    Ok(StreamId {
        id: text(id)?,
        map,
        ..StreamId::default()
    })
}

/// The two elements of a two-element array.
fn two(v: Value) -> Result<(Value, Value), ParsingError> {
    match v {
        Value::Array(pair) if pair.len() == 2 => {
            let mut pair = pair.into_iter();
            match (pair.next(), pair.next()) {
                (Some(first), Some(second)) => Ok((first, second)),
                _ => Err("a pair that is not one".to_owned().into()),
            }
        }
        other => Err(unexpected("a pair", &other)),
    }
}

/// A key, an id or a field name.
fn text(v: Value) -> Result<String, ParsingError> {
    match v {
        Value::BulkString(bytes) => Ok(String::from_utf8(bytes)?),
        Value::SimpleString(text) => Ok(text),
        other => Err(unexpected("a string", &other)),
    }
}

fn unexpected(wanted: &str, got: &Value) -> ParsingError {
    format!("XREADGROUP reply: expected {wanted}, got {got:?}").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry_value(id: &str, task: &str) -> Value {
        Value::Array(vec![bulk(id), Value::Array(vec![bulk("task"), bulk(task)])])
    }

    /// Per stream, its key and its entries' ids with their `task` field.
    type Parsed = Vec<(String, Vec<(String, Option<Value>)>)>;

    fn parsed(v: Value) -> Parsed {
        ReadReply::from_redis_value(v)
            .unwrap()
            .0
            .into_iter()
            .map(|(key, ids)| {
                let ids = ids
                    .into_iter()
                    .map(|mut id| (id.id, id.map.remove("task")))
                    .collect();
                (key, ids)
            })
            .collect()
    }

    #[test]
    fn a_resp2_reply_gives_each_stream_its_entries_in_order() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("q:deliveries"),
                Value::Array(vec![entry_value("1-0", "a"), entry_value("1-1", "b")]),
            ]),
            Value::Array(vec![
                bulk("q:tasks"),
                Value::Array(vec![entry_value("2-0", "c")]),
            ]),
        ]);
        assert_eq!(
            parsed(reply),
            [
                (
                    "q:deliveries".to_owned(),
                    vec![
                        ("1-0".to_owned(), Some(bulk("a"))),
                        ("1-1".to_owned(), Some(bulk("b")))
                    ]
                ),
                (
                    "q:tasks".to_owned(),
                    vec![("2-0".to_owned(), Some(bulk("c")))]
                ),
            ]
        );
    }

    #[test]
    fn a_resp3_reply_reads_as_the_resp2_one() {
        let reply = Value::Map(vec![(
            bulk("q:tasks"),
            Value::Array(vec![entry_value("2-0", "c")]),
        )]);
        assert_eq!(
            parsed(reply),
            [(
                "q:tasks".to_owned(),
                vec![("2-0".to_owned(), Some(bulk("c")))]
            )]
        );
    }

    #[test]
    fn a_read_that_timed_out_has_no_entries() {
        assert_eq!(parsed(Value::Nil), []);
    }

    #[test]
    fn an_entry_deleted_since_has_no_fields() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("q:tasks"),
            Value::Array(vec![Value::Array(vec![bulk("3-0"), Value::Nil])]),
        ])]);
        assert_eq!(
            parsed(reply),
            [("q:tasks".to_owned(), vec![("3-0".to_owned(), None)])]
        );
    }

    #[test]
    fn a_reply_of_another_shape_is_an_error_that_says_what_was_expected() {
        let err = ReadReply::from_redis_value(Value::Int(3)).unwrap_err();
        assert!(
            err.to_string().contains("expected a stream per key"),
            "{err}"
        );
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("q:tasks"),
            Value::Array(vec![Value::Array(vec![
                bulk("3-0"),
                Value::Array(vec![bulk("task")]),
            ])]),
        ])]);
        assert!(ReadReply::from_redis_value(odd).is_err());
    }
}
