//! `GET /containers/{id}/json`: a record as dockerd's inspect shows it.

use std::collections::HashMap;

use api_types::models::generated::{DriverData, NetworkSettings};
use api_types::models::*;

use crate::state::{ContainerRecord, Status};
use crate::{spec, Inner};

pub(super) fn state_status(s: Status) -> ContainerStateStatusEnum {
    match s {
        Status::Created => ContainerStateStatusEnum::CREATED,
        Status::Running => ContainerStateStatusEnum::RUNNING,
        Status::Exited => ContainerStateStatusEnum::EXITED,
        Status::Removing => ContainerStateStatusEnum::REMOVING,
    }
}

impl Inner {
    pub(super) fn inspect_record(&self, r: &ContainerRecord) -> ContainerInspectResponse {
        let mut data = HashMap::new();
        for o in &r.rootfs.options {
            for (k, key) in [
                ("lowerdir=", "LowerDir"),
                ("upperdir=", "UpperDir"),
                ("workdir=", "WorkDir"),
            ] {
                if let Some(v) = o.strip_prefix(k) {
                    data.insert(key.to_string(), v.to_string());
                }
            }
        }
        data.insert(
            "MergedDir".into(),
            self.bundle_dir(&r.id).join("rootfs").display().to_string(),
        );
        let dir = self.container_dir(&r.id);
        let mut config = r.config.clone();
        config.image = Some(r.image.clone());
        if config.hostname.as_ref().is_none_or(|h| h.is_empty()) {
            config.hostname = Some(spec::hostname(r));
        }
        ContainerInspectResponse {
            id: Some(r.id.clone()),
            created: Some(r.created.clone()),
            path: Some(r.path.clone()),
            args: Some(r.args.clone()),
            state: Some(ContainerState {
                status: Some(if r.state.paused {
                    ContainerStateStatusEnum::PAUSED
                } else if r.state.restarting {
                    ContainerStateStatusEnum::RESTARTING
                } else {
                    state_status(r.state.status)
                }),
                running: Some(r.state.status == Status::Running),
                paused: Some(r.state.paused),
                restarting: Some(r.state.restarting),
                oom_killed: Some(r.state.oom_killed),
                dead: Some(false),
                pid: Some(r.state.pid as i64),
                exit_code: Some(r.state.exit_code),
                error: Some(r.state.error.clone()),
                started_at: Some(r.state.started_at.clone()),
                finished_at: Some(r.state.finished_at.clone()),
                health: r.state.health.clone(),
            }),
            image: Some(r.image_id.clone()),
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            network_settings: Some(NetworkSettings {
                sandbox_id: Some(String::new()),
                sandbox_key: Some(
                    if r.state.status == Status::Running
                        && r.host_config.network_mode.as_deref() != Some("host")
                    {
                        format!("/proc/{}/ns/net", r.state.pid)
                    } else {
                        String::new()
                    },
                ),
                ports: Some(crate::networks::port_map(r)),
                networks: Some(crate::networks::endpoint_settings(r, &self.networks)),
            }),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            log_path: Some(self.log_path(&r.id).display().to_string()),
            name: Some(format!("/{}", r.name)),
            restart_count: Some(r.restart_count),
            driver: Some("overlay2".into()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            host_config: Some(r.host_config.clone()),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data,
            }),
            mounts: Some(crate::volumes::mount_points(&r.mounts)),
            config: Some(config),
            ..Default::default()
        }
    }
}
