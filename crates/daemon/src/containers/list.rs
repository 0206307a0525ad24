//! `GET /containers/json`: the filters, and the summary rows with the status text `docker ps`
//! shows.

use std::sync::Arc;

use api_server::ApiError;
use api_types::models::generated::{
    ContainerSummaryHostConfig, ContainerSummaryNetworkSettings, HealthStatusEnum,
};
use api_types::models::*;
use api_types::query::*;

use super::network_index::NetworkIndex;
use super::{lock, parse_time, Container};
use crate::state::{ContainerRecord, Status};
use crate::Daemon;

/// The values of the `status` filter.
const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A `publish` or `expose` filter: a container port or range, with its protocol (tcp unless
/// given), matched against the `PORT/PROTO` keys of the port bindings or exposed ports.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortFilter {
    first: u16,
    last: u16,
    proto: String,
}

impl PortFilter {
    fn parse(filter: &str, v: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::InvalidParameter(format!("invalid filter '{filter}={v}'"));
        let (ports, proto) = v.split_once('/').unwrap_or((v, "tcp"));
        let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
        let (first, last): (u16, u16) = (
            first.parse().map_err(|_| bad())?,
            last.parse().map_err(|_| bad())?,
        );
        if first > last || !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(bad());
        }
        Ok(PortFilter {
            first,
            last,
            proto: proto.to_string(),
        })
    }

    fn matches(&self, keys: &[&str]) -> bool {
        keys.iter().any(|k| {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            proto == self.proto
                && port
                    .parse::<u16>()
                    .is_ok_and(|p| (self.first..=self.last).contains(&p))
        })
    }
}

/// Docker's human duration ("Less than a second", "5 seconds", "About a minute", …).
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = d.num_minutes();
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = d.num_hours();
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    let days = h / 24;
    if days < 14 {
        return format!("{days} days");
    }
    if days < 60 {
        return format!("{} weeks", days / 7);
    }
    if days < 730 {
        return format!("{} months", days / 30);
    }
    format!("{} years", days / 365)
}

pub(super) fn summary_state(s: Status) -> ContainerSummaryStateEnum {
    match s {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
    }
}

/// The status text `docker ps` shows.
pub(super) fn status_text(r: &ContainerRecord) -> String {
    let now = chrono::Utc::now();
    let since = |t: &str| {
        parse_time(t)
            .map(|t| human_duration(now - t))
            .unwrap_or_default()
    };
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running if r.state.paused => {
            format!("Up {} (Paused)", since(&r.state.started_at))
        }
        Status::Running => {
            let health = match r.state.health.as_ref().and_then(|h| h.status) {
                Some(HealthStatusEnum::STARTING) => " (health: starting)",
                Some(HealthStatusEnum::HEALTHY) => " (healthy)",
                Some(HealthStatusEnum::UNHEALTHY) => " (unhealthy)",
                _ => "",
            };
            format!("Up {}{health}", since(&r.state.started_at))
        }
        Status::Exited if r.state.restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
        Status::Removing => "Removal In Progress".into(),
    }
}

pub(super) fn command_text(r: &ContainerRecord) -> String {
    let mut parts = vec![r.path.clone()];
    parts.extend(r.args.iter().cloned());
    parts.join(" ")
}

impl Daemon {
    pub(super) async fn list_containers(
        &self,
        query: ContainerListQuery,
    ) -> Result<Vec<ContainerSummary>, ApiError> {
        let all: Vec<Arc<Container>> = lock(&self.inner.containers)
            .by_id
            .values()
            .cloned()
            .collect();
        let f = &query.filters;
        // The names were checked against CONTAINER_LIST_FILTERS by the API layer.
        let check = |name: &str, ok: &dyn Fn(&str) -> bool| {
            let mut values = f.get(name).peekable();
            values.peek().is_none() || values.any(ok)
        };
        for v in f.get("status") {
            if !STATUSES.contains(&v) {
                return Err(ApiError::InvalidParameter(format!(
                    "invalid filter 'status={v}'"
                )));
            }
        }
        for v in f.get("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&v) {
                return Err(ApiError::InvalidParameter(format!(
                    "Unrecognised filter value for health: {v}"
                )));
            }
        }
        let ports = |name: &str| -> Result<Vec<PortFilter>, ApiError> {
            f.get(name).map(|v| PortFilter::parse(name, v)).collect()
        };
        let (publish, expose) = (ports("publish")?, ports("expose")?);
        // `before`/`since` name a container; what was created before or after it passes.
        let reference = |name: &str| -> Result<Option<String>, ApiError> {
            match f.get(name).next() {
                None => Ok(None),
                Some(v) => Ok(Some(self.inner.resolve(v)?.record().created)),
            }
        };
        let (before, since) = (reference("before")?, reference("since")?);
        let network_ids: std::collections::HashMap<String, String> = if f.contains("network") {
            self.inner
                .networks
                .list()
                .into_iter()
                .map(|n| (n.name, n.id))
                .collect()
        } else {
            Default::default()
        };
        let mut records: Vec<ContainerRecord> = all
            .iter()
            .map(|c| c.record())
            .filter(|r| {
                let status = match r.state.status {
                    Status::Created => "created",
                    Status::Running if r.state.paused => "paused",
                    Status::Running => "running",
                    Status::Exited if r.state.restarting => "restarting",
                    Status::Exited => "exited",
                    Status::Removing => "removing",
                };
                let health = match r.state.health.as_ref().and_then(|h| h.status) {
                    Some(HealthStatusEnum::STARTING) => "starting",
                    Some(HealthStatusEnum::HEALTHY) => "healthy",
                    Some(HealthStatusEnum::UNHEALTHY) => "unhealthy",
                    _ => "none",
                };
                let labels = r.config.labels.clone().unwrap_or_default();
                // The ports are gathered only when a port filter asks for them.
                let bound = || -> Vec<&str> {
                    r.host_config
                        .port_bindings
                        .iter()
                        .flat_map(|m| m.keys().map(String::as_str))
                        .collect()
                };
                let exposed = || -> Vec<&str> {
                    r.config
                        .exposed_ports
                        .iter()
                        .flatten()
                        .map(String::as_str)
                        .collect()
                };
                (query.all || r.state.status == Status::Running || f.contains("status"))
                    && check("id", &|v| r.id.starts_with(v))
                    && check("name", &|v| r.name.contains(v.trim_start_matches('/')))
                    && check("status", &|v| v == status)
                    && check("exited", &|v| {
                        r.state.status == Status::Exited && v.parse() == Ok(r.state.exit_code)
                    })
                    && check("ancestor", &|v| r.image == v || r.image_id.contains(v))
                    && f.labels_match("label", |k| labels.get(k).map(String::as_str))
                    && check("health", &|v| v == health)
                    && check("network", &|v| {
                        NetworkIndex::networks_of(r).iter().any(|n| {
                            let n = if n == "default" { "bridge" } else { n.as_str() };
                            n == v || network_ids.get(n).is_some_and(|id| id.starts_with(v))
                        })
                    })
                    && check("volume", &|v| {
                        r.mounts.iter().any(|m| m.name == v || m.destination == v)
                    })
                    && (publish.is_empty() || {
                        let bound = bound();
                        publish.iter().any(|p| p.matches(&bound))
                    })
                    && (expose.is_empty() || {
                        let exposed = exposed();
                        expose.iter().any(|p| p.matches(&exposed))
                    })
                    && before.as_ref().is_none_or(|t| r.created < *t)
                    && since.as_ref().is_none_or(|t| r.created > *t)
                    && check("isolation", &|v| v == "default")
                    && check("is-task", &|v| !matches!(v, "true" | "1"))
            })
            .collect();
        records.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(limit) = query.limit.filter(|l| *l > 0) {
            records.truncate(limit as usize);
        }
        let sizes = if query.size {
            let inner = self.inner.clone();
            let records = records.clone();
            crate::blocking(move || Ok(super::size::sizes(&records, &inner.image_sizes()))).await?
        } else {
            Default::default()
        };
        Ok(records
            .iter()
            .map(|r| ContainerSummary {
                id: Some(r.id.clone()),
                names: Some(vec![format!("/{}", r.name)]),
                image: Some(r.image.clone()),
                image_id: Some(r.image_id.clone()),
                command: Some(command_text(r)),
                created: parse_time(&r.created).map(|t| t.timestamp()),
                ports: Some(crate::networks::port_summaries(r)),
                network_settings: Some(ContainerSummaryNetworkSettings {
                    networks: Some(crate::networks::endpoint_settings(r, &self.inner.networks)),
                }),
                labels: Some(r.config.labels.clone().unwrap_or_default()),
                state: Some(if r.state.paused {
                    ContainerSummaryStateEnum::PAUSED
                } else if r.state.restarting {
                    ContainerSummaryStateEnum::RESTARTING
                } else {
                    summary_state(r.state.status)
                }),
                status: Some(status_text(r)),
                host_config: Some(ContainerSummaryHostConfig {
                    network_mode: Some(
                        r.host_config
                            .network_mode
                            .clone()
                            .unwrap_or_else(|| "bridge".into()),
                    ),
                    annotations: None,
                }),
                mounts: Some(crate::volumes::mount_points(&r.mounts)),
                size_rw: sizes.get(&r.id).map(|s| s.0),
                size_root_fs: sizes.get(&r.id).map(|s| s.1),
                ..Default::default()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_filters_take_ports_ranges_and_protocols() {
        let p = PortFilter::parse("publish", "80").expect("a port");
        assert!(p.matches(&["80/tcp"]));
        assert!(!p.matches(&["80/udp", "8080/tcp"]));
        let p = PortFilter::parse("expose", "8000-8080/udp").expect("a range");
        assert!(p.matches(&["8053/udp"]));
        assert!(!p.matches(&["8053/tcp", "9000/udp"]));
        for bad in ["x", "80/icmp", "90-80", "70000"] {
            assert_eq!(
                PortFilter::parse("publish", bad)
                    .expect_err(bad)
                    .to_string(),
                format!("invalid filter 'publish={bad}'")
            );
        }
    }
}
