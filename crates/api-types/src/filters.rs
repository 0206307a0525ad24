//! The `filters` query parameter as dockerd encodes it.
//!
//! The value is JSON: a map from a filter name to the accepted values. Current clients send
//! `{"status": {"running": true}}`; clients from before API 1.22 sent `{"status": ["running"]}`.
//! dockerd accepts both and so does [`Filters::from_json`]; [`Filters::to_json`] writes the
//! current form.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// Filter names mapped to the set of values given for each (values of one name are OR-ed,
/// different names AND-ed by the services that apply them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    entries: BTreeMap<String, BTreeSet<String>>,
}

/// A `filters` value that is neither of dockerd's two encodings, or a filter name a service does
/// not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FiltersError {
    /// The JSON does not parse as a map of name to a list or a map of values.
    #[error("invalid filter {value:?}: {reason}")]
    Malformed {
        /// The text received.
        value: String,
        /// The JSON parser's complaint.
        reason: String,
    },
    /// A filter name the endpoint does not accept (dockerd: "invalid filter 'foo'").
    #[error("invalid filter '{0}'")]
    UnknownName(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Values {
    // The map form carries `true` for every value; dockerd ignores the booleans' values.
    Map(BTreeMap<String, bool>),
    List(Vec<String>),
}

impl Filters {
    /// No filters: everything matches.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a `filters` query value; an empty string means no filters, as in dockerd.
    pub fn from_json(value: &str) -> Result<Self, FiltersError> {
        if value.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: BTreeMap<String, Values> =
            serde_json::from_str(value).map_err(|e| FiltersError::Malformed {
                value: value.to_string(),
                reason: e.to_string(),
            })?;
        let entries = raw
            .into_iter()
            .map(|(name, values)| {
                let set = match values {
                    Values::Map(map) => map.into_keys().collect(),
                    Values::List(list) => list.into_iter().collect(),
                };
                (name, set)
            })
            .collect();
        Ok(Self { entries })
    }

    /// The current JSON encoding, `{"name": {"value": true}}`.
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .entries
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|v| (v.as_str(), true)).collect()))
            .collect();
        // A map of strings to maps of strings to bools always serializes.
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_string())
    }

    /// Adds `value` under `name`.
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries
            .entry(name.into())
            .or_default()
            .insert(value.into());
    }

    /// The values given for `name`, empty when the filter is absent.
    pub fn get(&self, name: &str) -> impl Iterator<Item = &str> {
        self.entries
            .get(name)
            .into_iter()
            .flat_map(|set| set.iter().map(String::as_str))
    }

    /// Whether an object's labels pass every `name` filter (`label`): each value is `KEY` (the
    /// label is set) or `KEY=VALUE`, and all of them must hold, as dockerd's `MatchKVList` has
    /// it — `--filter label=a --filter label=b` narrows, it does not widen. `label` looks a key
    /// up in the object's labels.
    pub fn labels_match<'a>(&self, name: &str, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.get(name).all(|v| label_holds(v, &label))
    }

    /// Whether any `name` filter holds for an object's labels (a prune's `label!` spares an
    /// object that has any of the labels it names).
    pub fn any_label_matches<'a>(
        &self,
        name: &str,
        label: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        self.get(name).any(|v| label_holds(v, &label))
    }

    /// Whether a filter named `name` was given.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// Whether no filter was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The filter names given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Fails on the first filter name not in `accepted`, as dockerd's `Validate` does.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FiltersError> {
        match self.names().find(|name| !accepted.contains(name)) {
            Some(name) => Err(FiltersError::UnknownName(name.to_string())),
            None => Ok(()),
        }
    }
}

/// Whether a label filter value (`KEY` or `KEY=VALUE`) holds for an object's labels.
fn label_holds<'a>(v: &str, label: &impl Fn(&str) -> Option<&'a str>) -> bool {
    match v.split_once('=') {
        Some((k, want)) => label(k) == Some(want),
        None => label(v).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_parse_alike() {
        let current =
            Filters::from_json(r#"{"status":{"running":true,"exited":true}}"#).expect("map form");
        let legacy = Filters::from_json(r#"{"status":["running","exited"]}"#).expect("list form");
        assert_eq!(current, legacy);
        assert_eq!(
            current.get("status").collect::<Vec<_>>(),
            ["exited", "running"]
        );
        assert_eq!(
            current.to_json(),
            r#"{"status":{"exited":true,"running":true}}"#
        );
    }

    #[test]
    fn empty_and_malformed() {
        assert!(Filters::from_json("").expect("empty").is_empty());
        assert!(matches!(
            Filters::from_json("{\"a\": 3}"),
            Err(FiltersError::Malformed { .. })
        ));
        let f = Filters::from_json(r#"{"nosuch":{"x":true}}"#).expect("parse");
        assert_eq!(
            f.validate(&["status"]).expect_err("unknown").to_string(),
            "invalid filter 'nosuch'"
        );
    }

    #[test]
    fn label_filters_narrow_and_label_not_spares() {
        let labels: BTreeMap<&str, &str> = [("project", "p"), ("service", "web")].into();
        let label = |k: &str| labels.get(k).copied();
        let f = Filters::from_json(r#"{"label":["project=p","service=client"]}"#).expect("parse");
        assert!(
            !f.labels_match("label", label),
            "every label filter must hold"
        );
        let f = Filters::from_json(r#"{"label":["project=p","service"]}"#).expect("parse");
        assert!(f.labels_match("label", label));
        assert!(
            Filters::new().labels_match("label", label),
            "no filter, no constraint"
        );
        let f = Filters::from_json(r#"{"label!":["keep","service=web"]}"#).expect("parse");
        assert!(f.any_label_matches("label!", label));
        assert!(!Filters::new().any_label_matches("label!", label));
    }
}
