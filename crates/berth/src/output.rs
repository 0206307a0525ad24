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
