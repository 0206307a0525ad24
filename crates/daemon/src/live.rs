//! What berthd asks of a running container's monitor besides its life: pause, resume, the
//! cgroup counters (`docker stats`) and the process list (`docker top`, read from /proc).

use std::time::Duration;

use api_server::{ApiError, JsonStream};
use api_types::models::generated::{
    ContainerCpuStats, ContainerCpuUsage, ContainerMemoryStats, ContainerPidsStats,
};
use api_types::models::{ContainerStatsResponse, ContainerTopResponse};
use futures_util::StreamExt;
use monitor_protocol::{CgroupStats, Request, Response};

use crate::containers::Container;
use crate::monitor_client;
use crate::state::Status;
use crate::Inner;

/// Clock ticks per second of /proc's times (USER_HZ, 100 on every Linux ABI berth runs on).
const TICKS: u64 = 100;

/// The host's CPU time in nanoseconds, as docker's `system_cpu_usage` (from /proc/stat).
fn system_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("cpu ")).map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(7)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
            })
        })
        .map(|ticks| ticks * (1_000_000_000 / TICKS))
        .unwrap_or(0)
}

fn cpu_stats(s: &CgroupStats) -> ContainerCpuStats {
    ContainerCpuStats {
        cpu_usage: Some(ContainerCpuUsage {
            total_usage: Some(s.cpu_total_ns),
            percpu_usage: Some(s.cpu_percpu_ns.clone()),
            usage_in_kernelmode: Some(s.cpu_kernel_ns),
            usage_in_usermode: Some(s.cpu_user_ns),
        }),
        system_cpu_usage: Some(system_cpu_ns()),
        online_cpus: std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as u32),
        throttling_data: None,
    }
}

/// The fields of `docker update` berthd does not change on a container, refused by name when
/// set (dockerd too changes neither devices nor ulimits of a running container).
fn refuse_update_fields(body: &api_types::models::ContainerUpdateBody) -> Result<(), ApiError> {
    let listed = |v: Option<usize>| v.is_some_and(|n| n > 0);
    let set = [
        ("BlkioWeight", body.blkio_weight.is_some_and(|w| w > 0)),
        (
            "BlkioWeightDevice",
            listed(body.blkio_weight_device.as_ref().map(Vec::len)),
        ),
        (
            "BlkioDeviceReadBps",
            listed(body.blkio_device_read_bps.as_ref().map(Vec::len)),
        ),
        (
            "BlkioDeviceWriteBps",
            listed(body.blkio_device_write_bps.as_ref().map(Vec::len)),
        ),
        (
            "BlkioDeviceReadIOps",
            listed(body.blkio_device_read_iops.as_ref().map(Vec::len)),
        ),
        (
            "BlkioDeviceWriteIOps",
            listed(body.blkio_device_write_iops.as_ref().map(Vec::len)),
        ),
        ("Devices", listed(body.devices.as_ref().map(Vec::len))),
        (
            "DeviceCgroupRules",
            listed(body.device_cgroup_rules.as_ref().map(Vec::len)),
        ),
        (
            "DeviceRequests",
            listed(body.device_requests.as_ref().map(Vec::len)),
        ),
        ("Ulimits", listed(body.ulimits.as_ref().map(Vec::len))),
        (
            "CgroupParent",
            body.cgroup_parent.as_deref().is_some_and(|p| !p.is_empty()),
        ),
        ("OomKillDisable", body.oom_kill_disable == Some(true)),
        ("Init", body.init == Some(true)),
        ("CpuCount", body.cpu_count.is_some_and(|v| v != 0)),
        ("CpuPercent", body.cpu_percent.is_some_and(|v| v != 0)),
        (
            "IOMaximumIOps",
            body.io_maximum_iops.is_some_and(|v| v != 0),
        ),
        (
            "IOMaximumBandwidth",
            body.io_maximum_bandwidth.is_some_and(|v| v != 0),
        ),
    ];
    match set.iter().find(|(_, on)| *on) {
        Some((field, _)) => Err(ApiError::InvalidParameter(format!(
            "{field} is not supported by berthd's docker update: set it when the container is created"
        ))),
        None => Ok(()),
    }
}

impl Inner {
    fn require_running(&self, c: &Container) -> Result<(), ApiError> {
        if c.record().state.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.id()
            )));
        }
        Ok(())
    }

    /// Pauses or resumes the container through its monitor.
    pub(crate) async fn freeze(&self, c: &Container, on: bool) -> Result<(), ApiError> {
        self.require_running(c)?;
        let paused = c.record().state.paused;
        if paused == on {
            return Err(ApiError::Conflict(format!(
                "Container {} is {}",
                c.id(),
                if on { "already paused" } else { "not paused" }
            )));
        }
        let request = if on { Request::Pause } else { Request::Resume };
        monitor_client::call(&self.socket(c.id()), c.id(), request).await?;
        let record = c.set_paused(on);
        self.persist_state(&record)?;
        self.container_event(if on { "pause" } else { "unpause" }, &record);
        Ok(())
    }

    /// `docker update`: new limits or restart policy, kept in the record and applied to a
    /// running container's cgroup through its monitor.
    pub(crate) async fn update_container(
        &self,
        c: &Container,
        body: api_types::models::ContainerUpdateBody,
    ) -> Result<(), ApiError> {
        let mut record = c.record();
        let h = &mut record.host_config;
        macro_rules! take {
            ($($f:ident),*) => { $( if body.$f.is_some() { h.$f = body.$f.clone(); } )* };
        }
        take!(
            memory,
            memory_swap,
            memory_reservation,
            cpu_shares,
            cpu_period,
            cpu_quota,
            nano_cpus,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            memory_swappiness,
            cpu_realtime_period,
            cpu_realtime_runtime,
            restart_policy
        );
        refuse_update_fields(&body)?;
        crate::spec::host::check(&record.host_config)?;
        crate::restart::validate(&record.host_config).map_err(ApiError::InvalidParameter)?;
        let spec = crate::spec::build(
            &record,
            &self.config.cgroup_parent,
            self.config.init_path.as_deref(),
            &crate::spec::NetJoin {
                netns: None,
                files_dir: &self.container_dir(c.id()),
                pid_ns: None,
            },
        )?;
        if record.state.status == Status::Running {
            let mut resources = spec["linux"]["resources"].clone();
            if let Some(o) = resources.as_object_mut() {
                // Device rules are set at create and not changed here.
                o.remove("devices");
            }
            let resources = serde_json::from_value(resources).map_err(|e| {
                ApiError::Internal(format!("container {}: new limits: {e}", c.id()))
            })?;
            monitor_client::call(
                &self.socket(c.id()),
                c.id(),
                Request::Update {
                    resources: Box::new(resources),
                },
            )
            .await?;
        }
        let host = record.host_config.clone();
        let record = c.set_host_config(host);
        self.persist_record(&record)?;
        self.container_event("update", &record);
        Ok(())
    }

    async fn sample(&self, c: &Container) -> Result<CgroupStats, ApiError> {
        match monitor_client::call(&self.socket(c.id()), c.id(), Request::Stats).await? {
            Response::Stats(s) => Ok(s),
            other => Err(ApiError::Internal(format!(
                "container {}: monitor answered stats with {other:?}",
                c.id()
            ))),
        }
    }

    /// `docker stats`: one sample, or one a second while the client listens.
    pub(crate) async fn stats(
        &self,
        c: std::sync::Arc<Container>,
        stream: bool,
        inner: std::sync::Arc<Inner>,
    ) -> Result<JsonStream<ContainerStatsResponse>, ApiError> {
        self.require_running(&c)?;
        let first = self.sample(&c).await?;
        let name = format!("/{}", c.record().name);
        // As dockerd: a container without a memory limit shows the machine's memory as its
        // limit, not the cgroup's "unlimited" (2^63 rounded to a page), which `docker stats`
        // would print as 8192PiB.
        let machine = u64::try_from(crate::system::mem_total()).unwrap_or(0);
        let make = move |s: &CgroupStats, pre: Option<&ContainerCpuStats>, id: &str| {
            ContainerStatsResponse {
                id: Some(id.to_string()),
                name: Some(name.clone()),
                os_type: Some("linux".into()),
                read: Some(crate::now()),
                cpu_stats: Some(cpu_stats(s)),
                precpu_stats: Some(pre.cloned().unwrap_or_default()),
                memory_stats: Some(ContainerMemoryStats {
                    usage: Some(s.memory_usage),
                    max_usage: Some(s.memory_max_usage),
                    limit: Some(if machine > 0 {
                        s.memory_limit.min(machine)
                    } else {
                        s.memory_limit
                    }),
                    failcnt: Some(s.memory_failcnt),
                    stats: Some(
                        [("cache".to_string(), s.memory_cache)]
                            .into_iter()
                            .collect(),
                    ),
                    ..Default::default()
                }),
                pids_stats: Some(ContainerPidsStats {
                    current: Some(s.pids_current),
                    limit: (s.pids_limit > 0).then_some(s.pids_limit),
                }),
                num_procs: Some(0),
                ..Default::default()
            }
        };
        let first_msg = make(&first, None, c.id());
        if !stream {
            return Ok(futures_util::stream::iter([Ok(first_msg)]).boxed());
        }
        let pre = first_msg.cpu_stats.clone();
        // The API's cadence: one sample a second, as dockerd sends them.
        let ticks = futures_util::stream::unfold(
            (c, inner, pre, make),
            |(c, inner, pre, make)| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let s = inner.sample(&c).await.ok()?;
                let msg = make(&s, pre.as_ref(), c.id());
                let pre = msg.cpu_stats.clone();
                Some((Ok(msg), (c, inner, pre, make)))
            },
        );
        Ok(futures_util::stream::iter([Ok(first_msg)])
            .chain(ticks)
            .boxed())
    }

    /// `docker top`: `ps -ef`'s columns for the container's processes, from /proc.
    pub(crate) async fn top(
        &self,
        c: &Container,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse, ApiError> {
        self.require_running(c)?;
        if let Some(a) = ps_args.filter(|a| !a.is_empty() && *a != "-ef") {
            return Err(ApiError::NotImplemented(format!(
                "docker top with ps options {a:?} is not supported by berthd yet (it lists -ef's columns)"
            )));
        }
        let pids = match monitor_client::call(&self.socket(c.id()), c.id(), Request::Pids).await? {
            Response::Pids { pids } => pids,
            other => {
                return Err(ApiError::Internal(format!(
                    "container {}: monitor answered pids with {other:?}",
                    c.id()
                )))
            }
        };
        let mut processes = Vec::new();
        for pid in pids {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command (which may hold spaces) start after the last ')'.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let ppid = f.get(1).copied().unwrap_or("0").to_string();
            let cpu_secs = (num(11) + num(12)) / TICKS;
            let time = format!(
                "{:02}:{:02}:{:02}",
                cpu_secs / 3600,
                (cpu_secs / 60) % 60,
                cpu_secs % 60
            );
            let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .and_then(|v| v.split_whitespace().next().map(str::to_owned))
                })
                .unwrap_or_default();
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .trim_end_matches('\0')
                        .replace('\0', " ")
                })
                .unwrap_or_default();
            processes.push(vec![
                uid,
                pid.to_string(),
                ppid,
                "0".into(),
                "-".into(),
                "?".into(),
                time,
                cmd,
            ]);
        }
        Ok(ContainerTopResponse {
            titles: Some(
                ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            processes: Some(processes),
        })
    }
}
