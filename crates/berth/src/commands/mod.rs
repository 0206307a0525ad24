//! One module per group of commands; each function takes the parsed flags and a connection.

pub mod container;
pub mod image;
pub mod login;
pub mod network;
pub mod ps;
pub mod run;
pub mod stream;
pub mod system;
pub mod volume;
pub mod xray;

use std::collections::HashMap;

use crate::error::{CliError, Result};

/// `--filter key=value` flags as the API's filter map.
pub fn parse_filters(flags: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for f in flags {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::Invalid(format!("bad format of filter (expected name=value): {f}"))
        })?;
        map.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(map)
}

/// `key=value` flags (`--label`, `--opt`) as a map; a label may have no value.
pub fn key_values(flags: &[String], what: &str) -> Result<HashMap<String, String>> {
    flags
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None if what == "label" => Ok((kv.to_string(), String::new())),
            None => Err(CliError::Invalid(format!(
                "invalid argument \"{kv}\" for \"--{what}\" flag: expected key=value"
            ))),
        })
        .collect()
}
