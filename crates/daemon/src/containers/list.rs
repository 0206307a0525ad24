//! `GET /containers/json`: the filters, and the summary rows with the status text `docker ps`
//! shows.

use std::sync::Arc;

use api_server::ApiError;
use api_types::models::generated::{
    ContainerSummaryHostConfig, ContainerSummaryNetworkSettings, HealthStatusEnum,
};
use api_types::models::*;
use api_types::query::*;

use super::{lock, parse_time, Container};
use crate::state::{ContainerRecord, Status};
use crate::Daemon;

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
        let check = |name: &str, ok: &dyn Fn(&str) -> bool| {
            let mut values = f.get(name).peekable();
            values.peek().is_none() || values.any(ok)
        };
        let mut records: Vec<ContainerRecord> = all
            .iter()
            .map(|c| c.record())
            .filter(|r| {
                let status = match r.state.status {
                    Status::Created => "created",
                    Status::Running => "running",
                    Status::Exited => "exited",
                    Status::Removing => "removing",
                };
                let labels = r.config.labels.clone().unwrap_or_default();
                (query.all || r.state.status == Status::Running || f.contains("status"))
                    && check("id", &|v| r.id.starts_with(v))
                    && check("name", &|v| r.name.contains(v.trim_start_matches('/')))
                    && check("status", &|v| v == status)
                    && check("exited", &|v| {
                        r.state.status == Status::Exited && v.parse() == Ok(r.state.exit_code)
                    })
                    && check("ancestor", &|v| r.image == v || r.image_id.contains(v))
                    && f.labels_match("label", |k| labels.get(k).map(String::as_str))
            })
            .collect();
        records.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(limit) = query.limit.filter(|l| *l > 0) {
            records.truncate(limit as usize);
        }
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
                ..Default::default()
            })
            .collect())
    }
}
