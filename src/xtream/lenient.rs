//! Lenient field types for Xtream JSON: real panels send numbers as strings, booleans as 0/1,
//! "0"/"1" or true/false, and null or "" where a value is missing. Anything unusable becomes
//! `None` (or `false`) instead of failing the whole catalog.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An integer from `12`, `12.0`, `"12"` or `" 12 "`; `None` for null, "", or anything else.
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A flag from `1`/`0`, `"1"`/`"0"`, `true`/`false` or `"true"`/`"false"`; missing or odd is false.
pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(s.trim().to_ascii_lowercase().as_str(), "1" | "true"),
        _ => false,
    })
}

/// Text from a string or a number; `None` for null, "", booleans, arrays and objects.
pub fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "super::opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "super::flag")]
        b: bool,
        #[serde(default, deserialize_with = "super::opt_string")]
        s: Option<String>,
    }

    fn probe(json: &str) -> Probe {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn integers_from_numbers_and_strings() {
        assert_eq!(probe(r#"{"n":12}"#).n, Some(12));
        assert_eq!(probe(r#"{"n":"12"}"#).n, Some(12));
        assert_eq!(probe(r#"{"n":" 7 "}"#).n, Some(7));
        assert_eq!(probe(r#"{"n":3.0}"#).n, Some(3));
        assert_eq!(probe(r#"{"n":3.5}"#).n, None);
        assert_eq!(probe(r#"{"n":null}"#).n, None);
        assert_eq!(probe(r#"{"n":""}"#).n, None);
        assert_eq!(probe(r#"{"n":"abc"}"#).n, None);
        assert_eq!(probe(r#"{"n":[1]}"#).n, None);
        assert_eq!(probe(r#"{}"#).n, None);
    }

    #[test]
    fn flags_in_every_spelling() {
        for yes in [r#"1"#, r#""1""#, "true", r#""true""#, r#""TRUE""#] {
            assert!(probe(&format!(r#"{{"b":{yes}}}"#)).b, "{yes}");
        }
        for no in [
            r#"0"#,
            r#""0""#,
            "false",
            r#""false""#,
            "null",
            r#""""#,
            "[]",
        ] {
            assert!(!probe(&format!(r#"{{"b":{no}}}"#)).b, "{no}");
        }
        assert!(!probe("{}").b);
    }

    #[test]
    fn strings_from_strings_and_numbers() {
        assert_eq!(probe(r#"{"s":"bbc1.uk"}"#).s.as_deref(), Some("bbc1.uk"));
        assert_eq!(probe(r#"{"s":36}"#).s.as_deref(), Some("36"));
        assert_eq!(probe(r#"{"s":""}"#).s, None);
        assert_eq!(probe(r#"{"s":null}"#).s, None);
        assert_eq!(probe(r#"{"s":false}"#).s, None);
    }
}
