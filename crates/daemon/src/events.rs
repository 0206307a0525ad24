//! The events bus: every container and image action, kept in a bounded history and broadcast
//! to `/events` subscribers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use api_server::{ApiError, EventsBackend, JsonStream};
use api_types::models::{EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum};
use api_types::query::EventsQuery;
use api_types::Filters;
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::Daemon;

/// How many past events `--since` can reach.
const HISTORY: usize = 1024;

/// The bus.
pub struct Bus {
    tx: broadcast::Sender<EventMessage>,
    history: Mutex<VecDeque<EventMessage>>,
}

impl Bus {
    pub fn new() -> Self {
        Bus {
            tx: broadcast::channel(256).0,
            history: Mutex::new(VecDeque::new()),
        }
    }

    /// Records and broadcasts an event.
    pub fn publish(
        &self,
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attributes: HashMap<String, String>,
    ) {
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let event = EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(now.timestamp()),
            time_nano: Some(nanos),
        };
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        let _ = self.tx.send(event);
    }
}

/// A docker timestamp (`1700000000`, `1700000000.123`, or RFC 3339) in nanoseconds.
fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let f = format!("{frac:0<9}");
        nanos = f.get(..9)?.parse().ok()?;
    }
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

fn matches(filters: &Filters, e: &EventMessage) -> bool {
    let typ = e.typ.map(|t| t.to_string()).unwrap_or_default();
    let action = e.action.clone().unwrap_or_default();
    let actor = e.actor.clone().unwrap_or_default();
    let id = actor.id.unwrap_or_default();
    let attrs = actor.attributes.unwrap_or_default();
    let check = |name: &str, ok: &dyn Fn(&str) -> bool| {
        let mut values = filters.get(name).peekable();
        values.peek().is_none() || values.any(ok)
    };
    check("type", &|v| v == typ)
        && check("event", &|v| {
            action == v || action.starts_with(&format!("{v}:"))
        })
        && check("container", &|v| {
            typ == "container" && (id.starts_with(v) || attrs.get("name").is_some_and(|n| n == v))
        })
        && check("image", &|v| {
            attrs.get("image").is_some_and(|i| i == v) || (typ == "image" && id == v)
        })
        && filters.labels_match("label", |k| attrs.get(k).map(String::as_str))
        && check("scope", &|v| e.scope.is_some_and(|s| s.to_string() == v))
        && [
            "network", "volume", "daemon", "plugin", "node", "service", "secret", "config",
        ]
        .iter()
        .all(|name| {
            // dockerd's fuzzy match: the actor's ID or name, whole or by prefix.
            let name_attr = attrs.get("name").map(String::as_str).unwrap_or("");
            check(name, &|v| {
                (!id.is_empty() && id.starts_with(v))
                    || (!name_attr.is_empty() && name_attr.starts_with(v))
            })
        })
}

impl EventsBackend for Daemon {
    async fn subscribe(&self, query: EventsQuery) -> Result<JsonStream<EventMessage>, ApiError> {
        let bad = |s: &str| ApiError::InvalidParameter(format!("invalid timestamp {s:?}"));
        let since = match &query.since {
            Some(s) => Some(parse_time(s).ok_or_else(|| bad(s))?),
            None => None,
        };
        let until = match &query.until {
            Some(s) => Some(parse_time(s).ok_or_else(|| bad(s))?),
            None => None,
        };
        let bus = &self.inner.events;
        let rx = bus.tx.subscribe();
        let past: Vec<EventMessage> = match since {
            Some(since) => bus
                .history
                .lock()
                .map(|h| {
                    h.iter()
                        .filter(|e| e.time_nano.unwrap_or(0) >= since)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let filters = query.filters.clone();
        let f2 = filters.clone();
        let before = move |e: &EventMessage| until.is_none_or(|u| e.time_nano.unwrap_or(0) <= u);
        let past = futures_util::stream::iter(
            past.into_iter()
                .filter(move |e| matches(&filters, e) && before(e))
                .map(Ok),
        );
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        if until.is_some_and(|u| u <= now) {
            return Ok(past.boxed());
        }
        let live = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .take_while(move |e| {
            std::future::ready(until.is_none_or(|u| e.time_nano.unwrap_or(0) <= u))
        })
        .filter(move |e| std::future::ready(matches(&f2, e)))
        .map(Ok);
        let live: JsonStream<EventMessage> = match until {
            Some(u) => {
                let deadline = std::time::Duration::from_nanos((u - now).max(0) as u64);
                let stop = tokio::time::sleep(deadline);
                live.take_until(stop).boxed()
            }
            None => live.boxed(),
        };
        Ok(past.chain(live).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(typ: EventMessageTypeEnum, id: &str, name: &str) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some("create".into()),
            actor: Some(EventActor {
                id: Some(id.into()),
                attributes: Some([("name".to_string(), name.to_string())].into()),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            ..Default::default()
        }
    }

    #[test]
    fn network_volume_daemon_and_scope_filters_apply() {
        let net = event(EventMessageTypeEnum::NETWORK, "abc123", "backend");
        let vol = event(EventMessageTypeEnum::VOLUME, "data", "data");
        let mut f = Filters::new();
        f.add("network", "backend");
        assert!(matches(&f, &net));
        assert!(!matches(&f, &vol));
        let mut f = Filters::new();
        f.add("network", "abc");
        assert!(matches(&f, &net));
        let mut f = Filters::new();
        f.add("volume", "data");
        assert!(matches(&f, &vol) && !matches(&f, &net));
        let mut f = Filters::new();
        f.add("daemon", "nosuch");
        assert!(!matches(&f, &net));
        let mut f = Filters::new();
        f.add("scope", "swarm");
        assert!(!matches(&f, &net));
        let mut f = Filters::new();
        f.add("scope", "local");
        assert!(matches(&f, &net));
        let mut f = Filters::new();
        f.add("service", "x");
        assert!(!matches(&f, &net), "berthd has no services");
    }
}
