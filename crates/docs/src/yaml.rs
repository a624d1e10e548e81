//! A small YAML writer for JSON values, used for `asyncapi.yaml`. Output is
//! block-style YAML 1.2: strings are plain only when no YAML reading could
//! take them for anything else, and double-quoted (JSON escapes, which YAML
//! shares) otherwise. Avoids a YAML dependency for one write-only file.

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar, 0));
            out.push('\n');
        }
    }
    out
}

/// Keys written first, in this order; the rest follow alphabetically. Fixed
/// here because `serde_json::Map` iterates in insertion or sorted order
/// depending on a feature another crate in the build may switch on.
const KEY_ORDER: &[&str] = &[
    "asyncapi",
    "id",
    "info",
    "title",
    "version",
    "defaultContentType",
    "servers",
    "channels",
    "operations",
    "components",
    "name",
    "host",
    "protocol",
    "pathname",
    "address",
    "action",
    "channel",
    "summary",
    "description",
    "contentType",
    "headers",
    "messages",
    "reply",
    "payload",
    "schemaFormat",
    "schema",
    "$ref",
    "type",
    "const",
    "enum",
    "format",
    "minimum",
    "maximum",
    "properties",
    "required",
    "allOf",
    "oneOf",
    "items",
];

fn key_rank(k: &str) -> (usize, &str) {
    (
        KEY_ORDER
            .iter()
            .position(|o| *o == k)
            .unwrap_or(KEY_ORDER.len()),
        k,
    )
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| key_rank(a.0).cmp(&key_rank(b.0)));
    for (i, (k, v)) in entries.into_iter().enumerate() {
        // The first key of a map inside a sequence item follows the "- ".
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string_text(k, true, indent));
        out.push(':');
        write_value_after_key(out, v, indent);
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => write_map(out, m, indent + 2),
            Value::Array(a) if !a.is_empty() => write_seq(out, a, indent + 2),
            scalar => {
                out.push_str(&scalar_text(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn write_value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, indent + 2);
        }
        // Sequences under a key sit at the key's indentation (common style).
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, indent);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar, indent + 2));
            out.push('\n');
        }
    }
}

fn scalar_text(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s, false, indent),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string_text(s: &str, is_key: bool, indent: usize) -> String {
    if is_plain_safe(s) {
        return s.to_string();
    }
    // Multi-line prose reads best as a literal block.
    if !is_key && s.contains('\n') && block_safe(s) {
        let pad = " ".repeat(indent);
        let body: Vec<String> = s
            .lines()
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{pad}{l}")
                }
            })
            .collect();
        let chomp = if s.ends_with('\n') { "" } else { "-" };
        return format!("|{chomp}\n{}", body.join("\n"))
            .trim_end_matches('\n')
            .to_string();
    }
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn block_safe(s: &str) -> bool {
    !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && s.lines().all(|l| !l.ends_with(' ') && !l.contains('\t'))
        && s.chars().all(|c| !c.is_control() || c == '\n')
}

/// True when `s` reads back as the same string when written without quotes.
fn is_plain_safe(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if [
        "true", "false", "null", "~", "yes", "no", "on", "off", "y", "n",
    ]
    .contains(&lower.as_str())
    {
        return false;
    }
    // Anything a YAML reader could take for a number.
    if s.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_' | ':'))
    {
        return false;
    }
    let first_ok =
        s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '$');
    first_ok
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./$+()=;,".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_nested_maps_sequences_and_quotes_ambiguous_strings() {
        let v = json!({
            "text": "line one\nline two",
            "$ref": "#/components/x",
            "info": { "version": "2", "title": "Courier" },
            "list": [ { "a": 1, "b": [true, null] }, "yes", "x: y" ],
            "empty": {},
            "asyncapi": "3.0.0",
        });
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "asyncapi: \"3.0.0\"\ninfo:\n  title: Courier\n  version: \"2\"\n$ref: \"#/components/x\"\nempty: {}\nlist:\n- a: 1\n  b:\n  - true\n  - null\n- \"yes\"\n- \"x: y\"\ntext: |-\n  line one\n  line two\n"
        );
    }
}
