//! `--format` handling shared by the listing commands: docker's `table`, `json` and Go templates,
//! with header rows named as docker names its columns.

use std::io::Write;

use serde_json::{Map, Value};

use crate::error::{CliError, Result};
use crate::table;
use crate::template::Template;

/// Renders `rows` with `format` (or `default` when none is given) and prints them.
pub fn print_rows(
    format: Option<&str>,
    default: &str,
    headers: &[(&str, &str)],
    rows: &[Value],
) -> Result<()> {
    let text = render_rows(format, default, headers, rows)?;
    write_stdout(&text)
}

/// Renders rows as [`print_rows`] prints them.
pub fn render_rows(
    format: Option<&str>,
    default: &str,
    headers: &[(&str, &str)],
    rows: &[Value],
) -> Result<String> {
    let format = match format {
        None | Some("") | Some("table") => default,
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let template = Template::parse(format)?;
    let mut text = String::new();
    if template.table {
        let mut header = Map::new();
        for (field, name) in headers {
            header.insert((*field).to_string(), Value::String((*name).to_string()));
        }
        text.push_str(&template.render(&Value::Object(header))?);
        text.push('\n');
    }
    for row in rows {
        text.push_str(&template.render(row)?);
        text.push('\n');
    }
    Ok(if template.table {
        table::align(&text)
    } else {
        text
    })
}

/// What `inspect` prints for the objects' JSON as the daemon sent them: docker's indented
/// array, or each object through the user's `--format` template.
pub fn inspect_text(raws: &[Vec<u8>], format: Option<&str>) -> Result<String> {
    let mut text = String::new();
    match format {
        Some(f) => {
            for raw in raws {
                let v: Value = serde_json::from_slice(raw).map_err(|e| {
                    CliError::Transport(format!("the daemon's inspect answer is not JSON: {e}"))
                })?;
                text.push_str(&render_one(f, &v)?);
            }
        }
        None => {
            text.push('[');
            for (i, raw) in raws.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str("\n    ");
                text.push_str(&indent_json(raw, "    "));
            }
            text.push_str(if raws.is_empty() { "]\n" } else { "\n]\n" });
        }
    }
    Ok(text)
}

/// Renders one object with a user template (inspect, info, version `--format`).
pub fn render_one(format: &str, value: &Value) -> Result<String> {
    let format = if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    let mut text = Template::parse(format)?.render(value)?;
    text.push('\n');
    Ok(text)
}

/// Writes to stdout; a closed pipe ends the command quietly, as docker does.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::io("write to stdout")(e)),
    }
}

/// A serializable model as a JSON value (the shape Go's templates see).
pub fn to_value<T: serde::Serialize>(model: &T) -> Value {
    serde_json::to_value(model).unwrap_or(Value::Null)
}

/// Re-indents compact JSON text as Go's `json.Indent` with four spaces after `prefix`, keeping
/// the daemon's field order and number spelling (docker prints inspect's raw JSON this way).
pub fn indent_json(compact: &[u8], prefix: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let text = String::from_utf8_lossy(compact);
    let mut chars = text.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                // Empty objects and arrays stay `{}` and `[]`.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_is_indented_as_go_does() {
        let t = super::indent_json(br#"{"a":[1,2],"b":{},"c":"x, {y}"}"#, "");
        assert_eq!(t, "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"b\": {},\n    \"c\": \"x, {y}\"\n}");
    }
}
