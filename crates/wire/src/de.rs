//! Lenient reading of what BMCs and older clients send: numbers where strings belong, numeric
//! strings where numbers belong, `null` where arrays belong. The scalar rules ([`text`],
//! [`boolean`]) are the project's one definition of "a number where text belongs" and "a
//! boolean spelled as a string"; the serde deserialisers here and the crawler's reading of
//! Redfish resources (`skyport_redfish::res`) both apply them. Anything that cannot be read as
//! the intended type is an error naming what was expected (or, where a field says so, missing),
//! never a panic.

use std::str::FromStr;

use serde::de::{Deserialize, DeserializeOwned, Deserializer, Error};
use serde_json::Value;

/// A scalar as text: a string as it is, a number or a boolean as JSON writes it; `None` for
/// `null`, arrays and objects.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `true`/`false`, or a string spelling one in any case (not trimmed: callers that see padded
/// strings trim first).
pub fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A string, or a number/bool rendered as one ([`text`]); `null` and missing are `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => text(&v)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a string, got {}", kind(&v)))),
    }
}

/// Text as [`opt_string`] reads it, parsed as `T` (a count, a size). Text that does not parse is
/// missing, because BMCs put `"N/A"` where a number belongs.
pub fn opt_parsed<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Option<T>, D::Error> {
    Ok(opt_string(d)?.and_then(|s| s.trim().parse().ok()))
}

/// Whatever reads as `T`, and `T`'s default for anything else: only for fields that are carried
/// but never read, where refusing the whole document over one odd value would lose the rest.
pub fn or_default<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?).unwrap_or_default())
}

/// A list read element by element: an element that does not read as `T` is dropped and the rest
/// kept; anything but a list reads as empty. For lists of what one BMC reported, where one odd
/// entry must cost that entry only.
pub fn vec_lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// An integer, or a string holding one (Go's `json.Number`); `null`, `""` and missing are `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    opt_number(
        Value::deserialize(d)?,
        "an integer",
        serde_json::Number::as_i64,
    )
}

/// A number, or a string holding one; `null`, `""` and missing are `None`.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    opt_number(
        Value::deserialize(d)?,
        "a number",
        serde_json::Number::as_f64,
    )
}

/// A JSON number `number` can represent, or a (trimmed) string that parses as one.
fn opt_number<T: FromStr, E: Error>(
    v: Value,
    what: &str,
    number: impl Fn(&serde_json::Number) -> Option<T>,
) -> Result<Option<T>, E> {
    let fail = |got: String| E::custom(format!("expected {what}, got {got}"));
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => number(&n).map(Some).ok_or_else(|| fail(n.to_string())),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| fail(format!("{s:?}"))),
        other => Err(fail(kind(&other).to_string())),
    }
}

/// A bool, or `"true"`/`"false"` in any case ([`boolean`]); anything else is missing.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(boolean(&Value::deserialize(d)?))
}

/// An array; `null` or missing is empty.
pub fn vec_or_null<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        v @ Value::Array(_) => serde_json::from_value(v).map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "expected an array, got {}",
            kind(&other)
        ))),
    }
}

/// An array of strings (numbers accepted), a single string, or `null`.
pub fn vec_string<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let one = |v: Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    Ok(match Value::deserialize(d)? {
        Value::Null => Vec::new(),
        Value::Array(items) => items.into_iter().filter_map(one).collect(),
        Value::String(s) => vec![s],
        other => {
            return Err(D::Error::custom(format!(
                "expected an array of strings, got {}",
                kind(&other)
            )));
        }
    })
}

/// What a JSON value is, for error messages (`a string`, `an array`).
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The field names Go's `encoding/json` would match in a JSON object, for [`go_keys`]: a
/// struct's fields (each with the shape of its value), a list of one shape, or a value whose
/// keys are data (a label map, a template's variables) and are never renamed.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Struct(&'static [(&'static str, Shape)]),
    List(&'static Shape),
    Opaque,
}

/// `v` with its object keys spelt as `shape` names them, as Go's decoder reads a struct: an
/// exact name first, else the first name equal in ASCII case (`bootMAC` is `bootMac`); keys
/// that name no field are dropped, as Go ignores them.
pub fn go_keys(v: Value, shape: Shape) -> Value {
    match (shape, v) {
        (Shape::Struct(fields), Value::Object(m)) => {
            let mut out = serde_json::Map::new();
            let mut folded = Vec::new();
            for (k, v) in m {
                if let Some((name, s)) = fields.iter().find(|(n, _)| *n == k) {
                    out.insert((*name).to_string(), go_keys(v, *s));
                } else if let Some((name, s)) =
                    fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(&k))
                {
                    folded.push(((*name).to_string(), go_keys(v, *s)));
                }
            }
            for (k, v) in folded {
                out.entry(k).or_insert(v);
            }
            Value::Object(out)
        }
        (Shape::List(s), Value::Array(a)) => {
            Value::Array(a.into_iter().map(|v| go_keys(v, *s)).collect())
        }
        (_, v) => v,
    }
}

#[cfg(test)]
mod go_keys_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const IFACE: Shape = Shape::Struct(&[("mac", Shape::Opaque), ("ip", Shape::Opaque)]);
    const SPEC: Shape = Shape::Struct(&[
        ("bootMac", Shape::Opaque),
        ("interfaces", Shape::List(&IFACE)),
        ("labels", Shape::Opaque),
    ]);

    #[test]
    fn keys_fold_as_go_reads_them_and_data_keys_stay() {
        let v = json!({"BOOTMAC": "a", "interfaces": [{"MAC": "m", "Ip": "i", "x": 1}],
                       "labels": {"Env": "p"}, "other": 1});
        assert_eq!(
            go_keys(v, SPEC),
            json!({"interfaces": [{"mac": "m", "ip": "i"}], "labels": {"Env": "p"}, "bootMac": "a"})
        );
        // An exact key wins over a folded one, whatever the order.
        let v = json!({"BootMac": "folded", "bootMac": "exact"});
        assert_eq!(go_keys(v, SPEC), json!({"bootMac": "exact"}));
    }
}
