//! `POST /containers/create`: the image and config merged, names and networks checked, then
//! the record, volumes and writable layer made, undone as a whole if any step fails.

use api_server::ApiError;
use api_types::models::*;
use api_types::query::*;
use monitor_protocol::RootfsMount;

use crate::state::{ContainerRecord, RunState};
use crate::{blocking, now, spec, Daemon, Inner};

use super::lifecycle::parse_signal;
use super::logs::log_options;
use super::names::{valid_name, ADJECTIVES, NOUNS};
use super::{lock, Container};

impl Inner {
    /// The runtime a container asks for, checked: `berth` (also for `runc` unless a runtime
    /// of that name was added), or a name given to `--add-runtime`.
    pub(super) fn runtime_name(&self, asked: Option<&str>) -> Result<String, ApiError> {
        let name = asked
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.config.default_runtime);
        if self.config.runtimes.contains_key(name) || name == "berth" {
            return Ok(name.to_string());
        }
        if name == "runc" {
            return Ok("berth".into());
        }
        Err(ApiError::InvalidParameter(format!(
            "unknown or invalid runtime name: {name}"
        )))
    }
}

impl Daemon {
    pub(super) async fn create_container(
        &self,
        query: ContainerCreateQuery,
        body: ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, ApiError> {
        let inner = &self.inner;
        let host = body.host_config.clone().unwrap_or_default();
        spec::refuse_unsupported(&host)?;
        spec::host::check_hostname(&host, body.hostname.as_deref())?;
        if let Some(other) = spec::host::pid_container(&host) {
            // Not a 404, which the docker CLI would take for a missing image and pull.
            inner.resolve(other).map_err(|_| {
                ApiError::InvalidParameter(format!(
                    "cannot join the PID namespace of container {other}: no such container"
                ))
            })?;
        }
        log_options(&host)?;
        let image_name = body
            .image
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                ApiError::InvalidParameter(
                    "config cannot be empty in order to create a container: no image given".into(),
                )
            })?;
        let name = match query.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(ApiError::InvalidParameter(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            None => String::new(),
        };
        let images = inner.images.clone();
        let lookup = image_name.clone();
        let (image_id, image_json) = blocking(move || {
            let store = crate::store_read(&images);
            let (id, _) = store
                .resolve(&lookup)
                .map_err(|_| ApiError::no_such_image(&lookup))?;
            let inspect = store
                .inspect(&id.to_string())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok((id, inspect.config_json))
        })
        .await?;
        if let Some(wanted) = query.platform.as_deref() {
            crate::images::check_platform(&image_name, wanted, &image_json)?;
        }
        let config = ContainerConfig {
            hostname: body.hostname.clone(),
            domainname: body.domainname.clone(),
            user: body.user.clone(),
            attach_stdin: body.attach_stdin,
            attach_stdout: body.attach_stdout,
            attach_stderr: body.attach_stderr,
            exposed_ports: body.exposed_ports.clone(),
            tty: body.tty,
            open_stdin: body.open_stdin,
            stdin_once: body.stdin_once,
            env: body.env.clone(),
            cmd: body.cmd.clone(),
            healthcheck: body.healthcheck.clone(),
            args_escaped: body.args_escaped,
            image: body.image.clone(),
            volumes: body.volumes.clone(),
            working_dir: body.working_dir.clone(),
            entrypoint: body.entrypoint.clone(),
            network_disabled: body.network_disabled,
            on_build: body.on_build.clone(),
            labels: body.labels.clone(),
            stop_signal: body.stop_signal.clone(),
            stop_timeout: body.stop_timeout,
            shell: body.shell.clone(),
        };
        if let Some(s) = &config.stop_signal {
            parse_signal(s)?;
        }
        let (config, path, args) = spec::merge_config(config, &image_json)?;
        let mut host = host;
        host.runtime = Some(inner.runtime_name(host.runtime.as_deref())?);
        if let Some(h) = &config.healthcheck {
            crate::health::validate(h)?;
        }
        let id = crate::new_id()?;
        let mut record = ContainerRecord {
            id: id.clone(),
            name,
            created: now(),
            image: image_name,
            image_id: image_id.to_string(),
            path,
            args,
            config,
            host_config: host,
            rootfs: RootfsMount {
                typ: String::new(),
                source: String::new(),
                options: Vec::new(),
            },
            state: RunState::default(),
            restart_count: 0,
            manually_stopped: false,
            endpoints_config: body
                .networking_config
                .clone()
                .and_then(|n| n.endpoints_config)
                .unwrap_or_default(),
            net: Default::default(),
            mounts: Vec::new(),
            primary_disconnected: false,
        };
        let mut warnings = Vec::new();
        if body.network_disabled == Some(true) {
            // dockerd gives such a container a namespace with loopback only: `none`.
            let m = record.host_config.network_mode.as_deref().unwrap_or("");
            if m == "host" || m.starts_with("container:") {
                return Err(ApiError::InvalidParameter(format!(
                    "conflicting options: NetworkDisabled and network mode {m}"
                )));
            }
            record.host_config.network_mode = Some("none".into());
            record.endpoints_config.clear();
        }
        {
            let mut mode = record.host_config.network_mode.clone().unwrap_or_default();
            if mode.is_empty() || mode == "default" {
                // dockerd records the default network by its name.
                mode = crate::networks::DEFAULT_NETWORK.to_string();
                record.host_config.network_mode = Some(mode.clone());
            }
            match mode.as_str() {
                "host" | "none" => {}
                m if m.starts_with("container:") => {
                    inner.resolve(&m["container:".len()..])?;
                }
                m => {
                    // Refused here, not at the first start as dockerd does, so a bad --network
                    // leaves no container behind; not a 404, which the docker CLI would take for
                    // a missing image and pull.
                    let net = inner.networks.find(m).map_err(|_| {
                        ApiError::InvalidParameter(format!("network {m} not found"))
                    })?;
                    // Kept by name, so a later inspect shows the name as dockerd does.
                    if net.id == m || (net.id.starts_with(m) && net.name != m) {
                        record.host_config.network_mode = Some(net.name.clone());
                    }
                }
            }
            if (mode == "host" || mode == "none" || mode.starts_with("container:"))
                && (record.host_config.publish_all_ports == Some(true)
                    || record
                        .host_config
                        .port_bindings
                        .as_ref()
                        .is_some_and(|p| !p.is_empty()))
            {
                if mode == "host" {
                    warnings.push(
                        "Published ports are discarded when using host network mode".to_string(),
                    );
                } else {
                    return Err(ApiError::InvalidParameter(
                        "conflicting options: port publishing and the container type network mode"
                            .into(),
                    ));
                }
            }
            let primary = match mode.as_str() {
                "" | "default" => crate::networks::DEFAULT_NETWORK.to_string(),
                m => m.to_string(),
            };
            // The docker CLI names the --network's own endpoint too ("default" for none given).
            if let Some(settings) = record.endpoints_config.remove("default") {
                record.endpoints_config.insert(primary.clone(), settings);
            }
            for (key, settings) in &record.endpoints_config {
                crate::networks::refuse_unsupported_endpoint(key, settings)?;
                // Checked at create, as dockerd does, not first at start.
                let ipam = settings.ipam_config.as_ref();
                let want4 = crate::networks::requested(
                    ipam.and_then(|c| c.ipv4_address.as_deref()),
                    "IPv4",
                )?;
                let want6 = crate::networks::requested(
                    ipam.and_then(|c| c.ipv6_address.as_deref()),
                    "IPv6",
                )?;
                let predefined = matches!(key.as_str(), "bridge" | "host" | "none")
                    || (key == &primary && primary == crate::networks::DEFAULT_NETWORK);
                if (want4.is_some() || want6.is_some()) && predefined {
                    return Err(crate::networks::fixed_address_on_predefined());
                }
            }
            for key in record.endpoints_config.keys() {
                if key != &primary {
                    inner.networks.find(key).map_err(|_| {
                        ApiError::InvalidParameter(format!("network {key} not found"))
                    })?;
                }
            }
            if let Some(keys) = record.host_config.port_bindings.as_ref() {
                for k in keys.keys() {
                    crate::networks::parse_port_key(k)?;
                }
            }
        }
        let c;
        {
            let mut reg = lock(&inner.containers);
            if record.name.is_empty() {
                let b = id.as_bytes();
                let mut n = format!(
                    "{}_{}",
                    ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
                    NOUNS[b[1] as usize % NOUNS.len()]
                );
                if reg.by_name.contains_key(&n) {
                    n = format!("{n}_{}", &id[..6]);
                }
                record.name = n;
            }
            if let Some(other) = reg.by_name.get(&record.name) {
                return Err(ApiError::Conflict(format!(
                    "Conflict. The container name \"/{}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name.",
                    record.name
                )));
            }
            c = Container::new(record.clone(), &inner.network_index);
            reg.by_name.insert(record.name.clone(), id.clone());
            reg.by_id.insert(id.clone(), c.clone());
        }
        let made = async {
            // The record is on disk before the writable layer exists, so a berthd killed in
            // between leaves a record (with no rootfs yet) that start-up removes with its layer.
            let dir = inner.container_dir(&id);
            std::fs::create_dir_all(&dir).map_err(|e| {
                ApiError::Internal(format!("container {id}: create {}: {e}", dir.display()))
            })?;
            let mounts = {
                let (inner, cid) = (inner.clone(), id.clone());
                let (host, config) = (record.host_config.clone(), record.config.clone());
                let image_json = image_json.clone();
                blocking(move || {
                    let mut made = Vec::new();
                    match crate::volumes::resolve_mounts(
                        &inner,
                        &cid,
                        &host,
                        &config,
                        &image_json,
                        &mut made,
                    ) {
                        Ok(()) => Ok(made),
                        Err(e) => {
                            for f in inner.release_volumes(&cid, &made, true) {
                                tracing::warn!("container {cid}: {f}");
                            }
                            Err(e)
                        }
                    }
                })
                .await?
            };
            let record = c.update(|r| r.mounts = mounts);
            inner.persist_state(&record)?;
            let images = inner.images.clone();
            let (iid, cid) = (image_id.clone(), id.clone());
            let mount = blocking(move || {
                crate::store_read(&images)
                    .prepare_container(&iid, &cid)
                    .map_err(|e| {
                        ApiError::Internal(format!("container {cid}: prepare its rootfs: {e}"))
                    })
            })
            .await?;
            let mut options = mount.options;
            if mount.typ == "overlay" && record.host_config.auto_remove == Some(true) {
                // A --rm container's layer is deleted at its exit: nothing in it has to reach
                // the disk. Without `volatile`, the overlay's unmount at the exit syncs the
                // whole filesystem under the upper directory (the host's data disk: every
                // dirty page of every process on it), which made the exit of a `run --rm`
                // wait for the host's writeback, 2 to 300 ms here.
                options.push("volatile".into());
            }
            let record = c.update(|r| {
                r.rootfs = RootfsMount {
                    typ: mount.typ,
                    source: mount.source,
                    options,
                }
            });
            {
                let (inner, record) = (inner.clone(), record.clone());
                blocking(move || {
                    crate::volumes::copy_up(&inner, &record.id, &record.rootfs, &record.mounts)
                })
                .await?;
            }
            // Everything the start would refuse is refused now, before anything runs.
            spec::build(
                &record,
                &inner.config.cgroup_parent,
                inner.config.init_path.as_deref(),
                &spec::NetJoin {
                    netns: None,
                    files_dir: &inner.container_dir(&id),
                    pid_ns: None,
                },
            )?;
            inner.persist(&record)?;
            Ok::<_, ApiError>(record)
        }
        .await;
        match made {
            Ok(record) => {
                inner.event("create", &record, &[]);
                Ok(ContainerCreateResponse { id, warnings })
            }
            Err(e) => {
                {
                    let mut reg = lock(&inner.containers);
                    reg.by_id.remove(&id);
                    reg.by_name.remove(&record.name);
                }
                lock(&inner.network_index).forget(&id);
                let images = inner.images.clone();
                let cid = id.clone();
                let _ = blocking(move || {
                    let _ = crate::store_read(&images).remove_container(&cid);
                    Ok(())
                })
                .await;
                let _ = std::fs::remove_dir_all(inner.container_dir(&id));
                let (inner, mounts) = (inner.clone(), c.record().mounts);
                let _ = blocking(move || {
                    for f in inner.release_volumes(&id, &mounts, true) {
                        tracing::warn!("{f}");
                    }
                    Ok(())
                })
                .await;
                Err(e)
            }
        }
    }
}
