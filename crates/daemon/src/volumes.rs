//! Volumes and mounts: the `VolumeBackend` (`/volumes`), the mounts a container is created
//! with (`-v`, `--mount`, `--volumes-from`, anonymous volumes of `-v /path` and the image's
//! `VOLUME`s), the copy of image content into fresh volumes, and who uses which volume.
//!
//! Who uses a volume is counted in memory from the container records (filled at start-up,
//! changed at create and remove), so neither a start nor a `volume rm` scans the containers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use api_server::{ApiError, VolumeBackend};
use api_types::models::generated::{
    Mount, MountPoint, MountType, Volume as ApiVolume, VolumeCreateRequest, VolumeListResponse,
    VolumePruneResponse, VolumeScopeEnum, VolumeUsageData,
};
use api_types::models::{ContainerConfig, EventMessageTypeEnum, HostConfig};
use api_types::Filters;
use monitor_protocol::RootfsMount;
use serde_json::Value;
use volume::{MountSource, Volume, VolumeError, VolumeStore};

use crate::state::MountRecord;
use crate::{blocking, Daemon, Inner};

/// The volume store and the users of each volume.
pub(crate) struct Volumes {
    store: VolumeStore,
    /// Volume name → IDs of the containers whose records mount it. Held while a volume is
    /// made or removed, so a removal and a container's first use cannot cross.
    users: Mutex<HashMap<String, BTreeSet<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn volume_error(e: VolumeError) -> ApiError {
    match e {
        VolumeError::NotFound { .. } | VolumeError::UnknownDriver { .. } => {
            ApiError::NotFound(e.to_string())
        }
        VolumeError::InvalidName { .. } => ApiError::InvalidParameter(e.to_string()),
        VolumeError::DriverConflict { .. } => ApiError::Conflict(e.to_string()),
        VolumeError::UnsupportedOptions { .. } => ApiError::NotImplemented(e.to_string()),
        VolumeError::Io { .. } | VolumeError::MissingDevice { .. } => {
            ApiError::Internal(e.to_string())
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidParameter(e.to_string())
}

impl Volumes {
    /// Opens `<data-root>/volumes`.
    pub(crate) fn open(root: &Path) -> Result<Self, VolumeError> {
        let store = VolumeStore::open(root)?;
        store.finish_removals();
        Ok(Volumes {
            store,
            users: Mutex::new(HashMap::new()),
        })
    }

    /// Counts the volumes of a loaded container record as used by it.
    pub(crate) fn add_users(&self, id: &str, mounts: &[MountRecord]) {
        let mut users = lock(&self.users);
        for m in mounts.iter().filter(|m| m.typ == "volume") {
            users
                .entry(m.name.clone())
                .or_default()
                .insert(id.to_string());
        }
    }

    /// Makes (or finds) a volume and counts `id` as its user, in one step; says whether it
    /// was made.
    fn acquire(
        &self,
        id: &str,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
        options: &BTreeMap<String, String>,
    ) -> Result<(Volume, bool), ApiError> {
        let mut users = lock(&self.users);
        let existed = name.is_some_and(|n| self.store.get(n).is_ok());
        let v = self
            .store
            .create(name, None, options, labels)
            .map_err(volume_error)?;
        users
            .entry(v.name.clone())
            .or_default()
            .insert(id.to_string());
        Ok((v, !existed))
    }

    /// Forgets `id` as a user of its volumes; with `remove_anonymous`, removes its anonymous
    /// volumes that no other container uses (`docker rm -v`, `--rm`, a failed create).
    /// Returns the volumes removed and what failed.
    fn release(
        &self,
        id: &str,
        mounts: &[MountRecord],
        remove_anonymous: bool,
    ) -> (Vec<String>, Vec<String>) {
        let (mut removed, mut failures) = (Vec::new(), Vec::new());
        let mut users = lock(&self.users);
        for m in mounts.iter().filter(|m| m.typ == "volume") {
            let unused = match users.get_mut(&m.name) {
                Some(set) => {
                    set.remove(id);
                    set.is_empty()
                }
                None => true,
            };
            if unused {
                users.remove(&m.name);
                if remove_anonymous && m.anonymous {
                    match self.store.remove(&m.name) {
                        Ok(()) => removed.push(m.name.clone()),
                        Err(VolumeError::NotFound { .. }) => {}
                        Err(e) => failures.push(e.to_string()),
                    }
                }
            }
        }
        (removed, failures)
    }

    fn users_of(&self, name: &str) -> usize {
        lock(&self.users).get(name).map_or(0, |s| s.len())
    }

    /// Removes a volume no container uses; dockerd's 409 otherwise.
    fn remove(&self, name: &str) -> Result<(), ApiError> {
        let users = lock(&self.users);
        if let Some(ids) = users.get(name).filter(|s| !s.is_empty()) {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            return Err(ApiError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(", ")
            )));
        }
        self.store.remove(name).map_err(volume_error)
    }

    /// What inspect and list show for a volume.
    fn api(&self, v: &Volume, usage: bool) -> ApiVolume {
        ApiVolume {
            name: v.name.clone(),
            driver: v.driver.clone(),
            mountpoint: v.mountpoint.display().to_string(),
            created_at: Some(v.created_at.clone()),
            labels: v.labels.clone().into_iter().collect(),
            scope: Some(VolumeScopeEnum::LOCAL),
            options: v.options.clone().into_iter().collect(),
            usage_data: usage.then(|| VolumeUsageData {
                size: self.store.size(&v.name) as i64,
                ref_count: self.users_of(&v.name) as i64,
            }),
            ..Default::default()
        }
    }

    /// Every volume with its size and users, for `system df`.
    pub(crate) fn disk_usage(&self) -> Result<Vec<Value>, ApiError> {
        let list = self.store.list().map_err(volume_error)?;
        list.iter()
            .map(|v| {
                serde_json::to_value(self.api(v, true))
                    .map_err(|e| ApiError::Internal(format!("encode volume {}: {e}", v.name)))
            })
            .collect()
    }
}

fn labels_match(filters: &Filters, labels: &BTreeMap<String, String>) -> bool {
    let label = |k: &str| labels.get(k).map(String::as_str);
    filters.labels_match("label", label) && !filters.any_label_matches("label!", label)
}

fn truthy(v: &str) -> bool {
    matches!(v, "1" | "true" | "True" | "TRUE")
}

/// Resolves a new container's mounts into `made`, in the order given; the volumes they use
/// are counted as used by `id` as they are made. On error `made` holds what was made so far,
/// for the caller to undo with [`Inner::release_volumes`].
pub(crate) fn resolve_mounts(
    inner: &Inner,
    id: &str,
    host: &HostConfig,
    config: &ContainerConfig,
    image: &Value,
    made: &mut Vec<MountRecord>,
) -> Result<(), ApiError> {
    let mut dests: BTreeSet<String> = BTreeSet::new();
    let claim = |dests: &mut BTreeSet<String>, dst: &str| -> Result<(), ApiError> {
        if !dests.insert(clean_path(dst)) {
            return Err(invalid(format!("Duplicate mount point: {dst}")));
        }
        Ok(())
    };
    for raw in host.binds.iter().flatten() {
        let spec = volume::parse_bind(raw).map_err(invalid)?;
        claim(&mut dests, &spec.destination)?;
        let record = match &spec.source {
            MountSource::Host(path) => {
                // dockerd makes a missing host directory for -v (never for --mount).
                if std::fs::symlink_metadata(path).is_err() {
                    std::fs::create_dir_all(path).map_err(|e| {
                        invalid(format!(
                            "error while creating mount source path '{}': {e}",
                            path.display()
                        ))
                    })?;
                }
                MountRecord {
                    typ: "bind".into(),
                    source: path.display().to_string(),
                    destination: spec.destination.clone(),
                    mode: spec.mode.clone(),
                    rw: !spec.read_only,
                    propagation: spec
                        .propagation
                        .clone()
                        .unwrap_or_else(|| "rprivate".into()),
                    ..Default::default()
                }
            }
            MountSource::Named(name) => {
                let v = inner.acquire_volume(id, Some(name), &BTreeMap::new(), &BTreeMap::new())?;
                volume_record(
                    &v,
                    &spec.destination,
                    !spec.read_only,
                    spec.nocopy,
                    false,
                    {
                        if spec.mode.is_empty() {
                            "z".into()
                        } else {
                            spec.mode.clone()
                        }
                    },
                )?
            }
            MountSource::Anonymous => {
                let v = inner.acquire_volume(id, None, &BTreeMap::new(), &BTreeMap::new())?;
                volume_record(
                    &v,
                    &spec.destination,
                    !spec.read_only,
                    spec.nocopy,
                    true,
                    spec.mode.clone(),
                )?
            }
        };
        made.push(record);
    }
    for m in host.mounts.iter().flatten() {
        let record = mount_record(inner, id, m)?;
        claim(&mut dests, &record.destination)?;
        made.push(record);
    }
    for from in host.volumes_from.iter().flatten() {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m @ ("ro" | "rw"))) => (n, Some(m == "rw")),
            Some((_, m)) => return Err(invalid(format!("invalid mode: {m}"))),
            None => (from.as_str(), None),
        };
        let other = inner.resolve(name)?.record();
        for m in other.mounts.iter().filter(|m| m.typ != "tmpfs") {
            if !dests.insert(clean_path(&m.destination)) {
                continue;
            }
            let mut m = m.clone();
            if let Some(rw) = mode {
                m.rw = rw;
            }
            if m.typ == "volume" {
                let v =
                    inner.acquire_volume(id, Some(&m.name), &BTreeMap::new(), &BTreeMap::new())?;
                m.source = v.data_path().map_err(volume_error)?.display().to_string();
                // The volume belongs to the container that made it: `rm -v` here keeps it.
                m.anonymous = false;
            }
            made.push(m);
        }
    }
    // `-v /path` (the CLI sends it in Config.Volumes) and the image's VOLUMEs.
    let mut wanted: BTreeSet<String> = config
        .volumes
        .iter()
        .flat_map(|v| v.iter().cloned())
        .collect();
    if let Some(image_volumes) = image["config"]["Volumes"].as_object() {
        wanted.extend(image_volumes.keys().cloned());
    }
    for dst in wanted {
        volume::check_destination("volume", &dst).map_err(invalid)?;
        if !dests.insert(clean_path(&dst)) {
            continue;
        }
        let v = inner.acquire_volume(id, None, &BTreeMap::new(), &BTreeMap::new())?;
        made.push(volume_record(&v, &dst, true, false, true, String::new())?);
    }
    Ok(())
}

fn clean_path(p: &str) -> String {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.display().to_string()
}

/// A volume's mount: its `_data`, or the host directory a `type=none,o=bind` volume binds
/// (read-only when its options say `ro`).
fn volume_record(
    v: &Volume,
    dst: &str,
    rw: bool,
    nocopy: bool,
    anonymous: bool,
    mode: String,
) -> Result<MountRecord, ApiError> {
    Ok(MountRecord {
        typ: "volume".into(),
        name: v.name.clone(),
        source: v.data_path().map_err(volume_error)?.display().to_string(),
        destination: dst.to_string(),
        driver: v.driver.clone(),
        mode,
        rw: rw && !v.read_only(),
        nocopy,
        anonymous,
        ..Default::default()
    })
}

/// One `--mount` (HostConfig.Mounts entry), checked as dockerd checks it.
fn mount_record(inner: &Inner, id: &str, m: &Mount) -> Result<MountRecord, ApiError> {
    let typ = m.typ.unwrap_or_default();
    let kind = typ.to_string();
    let target = m.target.clone().unwrap_or_default();
    if target.is_empty() {
        return Err(invalid(format!(
            "invalid mount config for type \"{kind}\": field Target must not be empty"
        )));
    }
    volume::check_destination(&kind, &target).map_err(invalid)?;
    let source = m.source.clone().unwrap_or_default();
    let rw = m.read_only != Some(true);
    let refuse_opts = |name: &str, given: bool| {
        if given {
            Err(invalid(format!(
                "invalid mount config for type \"{kind}\": {name} must not be specified on mount type \"{kind}\""
            )))
        } else {
            Ok(())
        }
    };
    match typ {
        MountType::BIND => {
            refuse_opts("VolumeOptions", m.volume_options.is_some())?;
            refuse_opts("TmpfsOptions", m.tmpfs_options.is_some())?;
            if source.is_empty() {
                return Err(invalid(
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            }
            if !source.starts_with('/') {
                return Err(invalid(volume::MountError::RelativeSource(source)));
            }
            if std::fs::metadata(&source).is_err() {
                return Err(invalid(volume::MountError::MissingBindSource(source)));
            }
            let opts = m.bind_options.clone().unwrap_or_default();
            if opts.non_recursive == Some(true)
                || opts.read_only_non_recursive == Some(true)
                || opts.read_only_force_recursive == Some(true)
                || opts.create_mountpoint == Some(true)
            {
                return Err(ApiError::NotImplemented(
                    "bind options bind-recursive and bind-create-src are not supported by berthd yet".into(),
                ));
            }
            let propagation = match opts.propagation.map(|p| p.to_string()) {
                Some(p) if !p.is_empty() => volume::parse_propagation(&p).map_err(invalid)?,
                _ => "rprivate".into(),
            };
            Ok(MountRecord {
                typ: "bind".into(),
                source,
                destination: target,
                rw,
                propagation,
                ..Default::default()
            })
        }
        MountType::VOLUME => {
            refuse_opts("BindOptions", m.bind_options.is_some())?;
            refuse_opts("TmpfsOptions", m.tmpfs_options.is_some())?;
            let vo = m.volume_options.clone().unwrap_or_default();
            if vo.subpath.as_ref().is_some_and(|s| !s.is_empty()) {
                return Err(ApiError::NotImplemented(
                    "volume-subpath is not supported by berthd yet".into(),
                ));
            }
            let dc = vo.driver_config.clone().unwrap_or_default();
            let labels: BTreeMap<String, String> =
                vo.labels.clone().unwrap_or_default().into_iter().collect();
            let options: BTreeMap<String, String> =
                dc.options.clone().unwrap_or_default().into_iter().collect();
            if let Some(d) = dc
                .name
                .as_deref()
                .filter(|d| !d.is_empty() && *d != "local")
            {
                return Err(volume_error(VolumeError::UnknownDriver {
                    name: source.clone(),
                    driver: d.to_string(),
                }));
            }
            let anonymous = source.is_empty();
            let v = inner.acquire_volume(
                id,
                (!anonymous).then_some(source.as_str()),
                &labels,
                &options,
            )?;
            volume_record(
                &v,
                &target,
                rw,
                vo.no_copy == Some(true),
                anonymous,
                if anonymous { String::new() } else { "z".into() },
            )
        }
        MountType::TMPFS => {
            refuse_opts("BindOptions", m.bind_options.is_some())?;
            refuse_opts("VolumeOptions", m.volume_options.is_some())?;
            if !source.is_empty() {
                return Err(invalid(
                    "invalid mount config for type \"tmpfs\": field Source must be empty",
                ));
            }
            let mut options: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
            if !rw {
                options.push("ro".into());
            }
            if let Some(t) = &m.tmpfs_options {
                if let Some(size) = t.size_bytes.filter(|s| *s > 0) {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = t.mode.filter(|m| *m > 0) {
                    options.push(format!("mode={mode:o}"));
                }
                for o in t.options.iter().flatten() {
                    match o.as_slice() {
                        [flag] if flag == "exec" => options.retain(|x| x != "noexec"),
                        [flag] => options.push(flag.clone()),
                        [k, v] => options.push(format!("{k}={v}")),
                        _ => {}
                    }
                }
            }
            Ok(MountRecord {
                typ: "tmpfs".into(),
                destination: target,
                rw,
                tmpfs_options: options,
                ..Default::default()
            })
        }
        other => Err(ApiError::NotImplemented(format!(
            "mount type {other} is not supported by berthd"
        ))),
    }
}

/// Fills fresh, empty volumes with the image's content at their destination (dockerd's
/// copy-up), reading the image through a read-only overlay of the container's layers mounted
/// for the copy only. Runs before the container's first start, on a blocking thread.
pub(crate) fn copy_up(
    inner: &Inner,
    id: &str,
    rootfs: &RootfsMount,
    mounts: &[MountRecord],
) -> Result<(), ApiError> {
    let mut todo = Vec::new();
    for m in mounts.iter().filter(|m| m.typ == "volume" && !m.nocopy) {
        if inner
            .volumes
            .store
            .is_empty(&m.name)
            .map_err(volume_error)?
        {
            todo.push(m);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let copy = |root: &Path| -> Result<(), ApiError> {
        for m in &todo {
            volume::copy_up(root, &m.destination, Path::new(&m.source)).map_err(|e| {
                ApiError::Internal(format!(
                    "container {id}: copy the image's {} into volume {}: {e}",
                    m.destination, m.name
                ))
            })?;
        }
        Ok(())
    };
    if rootfs.typ == "bind" {
        return copy(Path::new(&rootfs.source));
    }
    let lowers: Vec<&str> = rootfs
        .upper_dir()
        .into_iter()
        .chain(rootfs.lower_dirs())
        .collect();
    let target = inner.config.exec_root.join("copyup").join(id);
    std::fs::create_dir_all(&target).map_err(|e| {
        ApiError::Internal(format!("container {id}: create {}: {e}", target.display()))
    })?;
    let data = format!("lowerdir={}", lowers.join(":"));
    let mounted = nix::mount::mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOSUID,
        Some(data.as_str()),
    )
    .map_err(|e| {
        ApiError::Internal(format!(
            "container {id}: mount its image read-only on {} for the copy into its volumes: {e}",
            target.display()
        ))
    });
    let result = mounted.and_then(|()| {
        let copied = copy(&target);
        if let Err(e) = nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!("container {id}: unmount {}: {e}", target.display());
        }
        copied
    });
    let _ = std::fs::remove_dir(&target);
    result
}

/// What inspect and list show for a container's mounts.
pub(crate) fn mount_points(mounts: &[MountRecord]) -> Vec<MountPoint> {
    mounts
        .iter()
        .map(|m| MountPoint {
            typ: Some(m.typ.clone()),
            name: (m.typ == "volume").then(|| m.name.clone()),
            source: Some(m.source.clone()),
            destination: Some(m.destination.clone()),
            driver: (m.typ == "volume").then(|| m.driver.clone()),
            mode: Some(m.mode.clone()),
            rw: Some(m.rw),
            propagation: Some(m.propagation.clone()),
        })
        .collect()
}

impl Inner {
    /// [`Volumes::acquire`], announcing a volume it made (as dockerd does for `-v name:/x`).
    fn acquire_volume(
        &self,
        id: &str,
        name: Option<&str>,
        labels: &BTreeMap<String, String>,
        options: &BTreeMap<String, String>,
    ) -> Result<Volume, ApiError> {
        let (v, made) = self.volumes.acquire(id, name, labels, options)?;
        if made {
            self.volume_event("create", &v.name);
        }
        Ok(v)
    }

    /// [`Volumes::release`], announcing the volumes it removed; returns what failed.
    pub(crate) fn release_volumes(
        &self,
        id: &str,
        mounts: &[MountRecord],
        remove_anonymous: bool,
    ) -> Vec<String> {
        let (removed, failures) = self.volumes.release(id, mounts, remove_anonymous);
        for name in removed {
            self.volume_event("destroy", &name);
        }
        failures
    }

    fn volume_event(&self, action: &str, name: &str) {
        let mut attrs = HashMap::new();
        attrs.insert("driver".to_string(), volume::DRIVER.to_string());
        self.events
            .publish(EventMessageTypeEnum::VOLUME, action, name, attrs);
    }
}

impl VolumeBackend for Daemon {
    async fn volume_list(&self, filters: Filters) -> Result<VolumeListResponse, ApiError> {
        let inner = self.inner.clone();
        blocking(move || {
            let v = &inner.volumes;
            let list = v.store.list().map_err(volume_error)?;
            let mut out = Vec::new();
            for vol in list {
                let ok = (!filters.contains("name")
                    || filters.get("name").any(|n| vol.name.contains(n)))
                    && (!filters.contains("driver")
                        || filters.get("driver").any(|d| d == vol.driver))
                    && filters
                        .get("dangling")
                        .all(|d| truthy(d) == (v.users_of(&vol.name) == 0))
                    && labels_match(&filters, &vol.labels);
                if ok {
                    out.push(v.api(&vol, false));
                }
            }
            Ok(VolumeListResponse {
                volumes: Some(out),
                warnings: None,
            })
        })
        .await
    }

    async fn volume_create(&self, body: VolumeCreateRequest) -> Result<ApiVolume, ApiError> {
        if body.cluster_volume_spec.is_some() {
            return Err(ApiError::InvalidParameter(
                "ClusterVolumeSpec is not supported by berthd: cluster volumes need a swarm".into(),
            ));
        }
        let inner = self.inner.clone();
        blocking(move || {
            let name = body.name.clone().filter(|n| !n.is_empty());
            let labels: BTreeMap<String, String> =
                body.labels.unwrap_or_default().into_iter().collect();
            let options: BTreeMap<String, String> =
                body.driver_opts.unwrap_or_default().into_iter().collect();
            let existed = name
                .as_deref()
                .is_some_and(|n| inner.volumes.store.get(n).is_ok());
            let v = {
                let _users = lock(&inner.volumes.users);
                inner
                    .volumes
                    .store
                    .create(name.as_deref(), body.driver.as_deref(), &options, &labels)
                    .map_err(volume_error)?
            };
            if !existed {
                inner.volume_event("create", &v.name);
            }
            Ok(inner.volumes.api(&v, false))
        })
        .await
    }

    async fn volume_inspect(&self, name: &str) -> Result<ApiVolume, ApiError> {
        let inner = self.inner.clone();
        let name = name.to_string();
        blocking(move || {
            let v = inner.volumes.store.get(&name).map_err(volume_error)?;
            Ok(inner.volumes.api(&v, false))
        })
        .await
    }

    async fn volume_remove(&self, name: &str, force: bool) -> Result<(), ApiError> {
        let inner = self.inner.clone();
        let name = name.to_string();
        blocking(move || match inner.volumes.remove(&name) {
            Ok(()) => {
                inner.volume_event("destroy", &name);
                Ok(())
            }
            Err(ApiError::NotFound(_)) if force => Ok(()),
            Err(e) => Err(e),
        })
        .await
    }

    async fn volume_prune(&self, filters: Filters) -> Result<VolumePruneResponse, ApiError> {
        let inner = self.inner.clone();
        blocking(move || {
            let all = filters.get("all").any(truthy);
            let v = &inner.volumes;
            let mut deleted = Vec::new();
            let mut reclaimed = 0i64;
            for vol in v.store.list().map_err(volume_error)? {
                if (!all && !vol.is_anonymous()) || !labels_match(&filters, &vol.labels) {
                    continue;
                }
                let size = v.store.size(&vol.name) as i64;
                match v.remove(&vol.name) {
                    Ok(()) => {
                        reclaimed += size;
                        inner.volume_event("destroy", &vol.name);
                        deleted.push(vol.name);
                    }
                    Err(ApiError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            inner.events.publish(
                EventMessageTypeEnum::VOLUME,
                "prune",
                "",
                HashMap::from([("reclaimed".to_string(), reclaimed.to_string())]),
            );
            Ok(VolumePruneResponse {
                volumes_deleted: Some(deleted),
                space_reclaimed: Some(reclaimed),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_clean() {
        assert_eq!(clean_path("/a//b/./c/"), "/a/b/c");
        assert_eq!(clean_path("/a/../b"), "/b");
        assert_eq!(clean_path("/../.."), "/");
    }

    #[test]
    fn label_filters_match_as_dockerd_does() {
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let f = |json: &str| Filters::from_json(json).expect("filters");
        assert!(labels_match(&f(r#"{"label":{"a":true}}"#), &labels));
        assert!(labels_match(&f(r#"{"label":{"a=1":true}}"#), &labels));
        assert!(!labels_match(&f(r#"{"label":{"a=2":true}}"#), &labels));
        assert!(!labels_match(&f(r#"{"label!":{"a":true}}"#), &labels));
        assert!(labels_match(&f("{}"), &labels));
    }

    #[test]
    fn use_counts_guard_removal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let v = Volumes::open(&dir.path().join("volumes")).expect("open");
        let none = BTreeMap::new();
        let (vol, made) = v.acquire("c1", Some("data"), &none, &none).expect("make");
        assert!(made);
        let (_, made) = v.acquire("c2", Some("data"), &none, &none).expect("find");
        assert!(!made);
        let record = volume_record(&vol, "/d", true, false, false, "z".into()).expect("record");
        assert_eq!(
            v.remove("data"),
            Err(ApiError::Conflict(
                "remove data: volume is in use - [c1, c2]".into()
            ))
        );
        v.release("c1", std::slice::from_ref(&record), true);
        assert!(v.remove("data").is_err(), "c2 still uses it");
        let (removed, failures) = v.release("c2", &[record], true);
        assert!(
            removed.is_empty() && failures.is_empty(),
            "a named volume stays"
        );
        v.remove("data").expect("unused now");
        let (anon, _) = v.acquire("c3", None, &none, &none).expect("make");
        let record = volume_record(&anon, "/d", true, false, true, String::new()).expect("record");
        let (removed, _) = v.release("c3", &[record], true);
        assert_eq!(removed, [anon.name]);
    }
}
