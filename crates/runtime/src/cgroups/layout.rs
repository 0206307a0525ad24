//! Which cgroup hierarchies the host has (from mountinfo) and where a container's cgroup goes in each.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Cgroup, Controller, Error, Hierarchy, Result, Version, DEFAULT_PARENT};

/// The shape of the host's cgroup mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// Only v1 (`cgroup`) hierarchies.
    V1,
    /// Only the unified (`cgroup2`) hierarchy.
    V2,
    /// v1 hierarchies and a cgroup2 mount side by side.
    Hybrid,
}

/// One cgroup or cgroup2 mount, as read from mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupMount {
    /// `cgroup` (v1) or `cgroup2`.
    pub version: Version,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The cgroup of the hierarchy shown at the mount point (mountinfo's root field).
    pub root: String,
    /// For v1: the super options naming controllers or `name=...`; empty for v2.
    pub options: Vec<String>,
}

/// A v1 hierarchy berth can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The mount's root inside the hierarchy.
    pub root: String,
    /// The controllers bound to it that berth knows.
    pub controllers: Vec<Controller>,
    /// A named hierarchy without controllers (`systemd`).
    pub name: Option<String>,
}

/// The unified hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V2Hierarchy {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The mount's root inside the hierarchy.
    pub root: String,
    /// The controllers berth uses from it (those in its root `cgroup.controllers` that no v1 hierarchy holds).
    pub controllers: Vec<Controller>,
}

/// The host's cgroup hierarchies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// v1, v2 or hybrid.
    pub kind: LayoutKind,
    /// The v1 hierarchies, in mountinfo order.
    pub v1: Vec<V1Hierarchy>,
    /// The unified hierarchy, if mounted.
    pub v2: Option<V2Hierarchy>,
}

/// Unescapes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `/proc/self/mountinfo` text into its cgroup and cgroup2 mounts (pure).
pub fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let bad = |reason: &str| Error::Parse {
            path: PathBuf::from("/proc/self/mountinfo"),
            reason: format!("line {}: {reason}: {line:?}", n + 1),
        };
        let sep = fields
            .iter()
            .position(|f| *f == "-")
            .ok_or_else(|| bad("no '-' separator"))?;
        if sep < 6 || fields.len() < sep + 4 {
            return Err(bad("too few fields"));
        }
        let version = match fields[sep + 1] {
            "cgroup" => Version::V1,
            "cgroup2" => Version::V2,
            _ => continue,
        };
        let options = match version {
            Version::V1 => fields[sep + 3]
                .split(',')
                .filter(|o| o.starts_with("name=") || Controller::from_v1_name(o).is_some())
                .map(str::to_string)
                .collect(),
            Version::V2 => Vec::new(),
        };
        out.push(CgroupMount {
            version,
            mount_point: PathBuf::from(unescape(fields[4])),
            root: unescape(fields[3]),
            options,
        });
    }
    Ok(out)
}

/// The runtime's own cgroups, from `/proc/self/cgroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    /// v1 entries: the hierarchy's controller list (as the kernel prints it) and the path.
    pub v1: Vec<(Vec<String>, String)>,
    /// The v2 entry's path (`0::/path`).
    pub v2: Option<String>,
}

impl OwnCgroups {
    /// Reads `/proc/self/cgroup`.
    pub fn read() -> Result<OwnCgroups> {
        let path = PathBuf::from("/proc/self/cgroup");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        parse_proc_cgroup(&text)
    }

    fn v1_path(&self, names: &[String]) -> Option<&str> {
        self.v1
            .iter()
            .find(|(ctrls, _)| names.iter().any(|n| ctrls.contains(n)))
            .map(|(_, p)| p.as_str())
    }
}

/// Parses `/proc/<pid>/cgroup` text (pure).
pub fn parse_proc_cgroup(text: &str) -> Result<OwnCgroups> {
    let mut own = OwnCgroups::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Parse {
                path: PathBuf::from("/proc/self/cgroup"),
                reason: format!("expected id:controllers:path, found {line:?}"),
            });
        };
        if id == "0" && ctrls.is_empty() {
            own.v2 = Some(path.to_string());
        } else {
            own.v1.push((
                ctrls.split(',').map(str::to_string).collect(),
                path.to_string(),
            ));
        }
    }
    Ok(own)
}

/// A `cgroupsPath` after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupsPath {
    /// Below each hierarchy's mount point; always starts with `/`.
    Absolute(String),
    /// Below the runtime's own cgroup in each hierarchy; never starts with `/`.
    Relative(String),
}

impl CgroupsPath {
    fn as_str(&self) -> &str {
        match self {
            CgroupsPath::Absolute(p) | CgroupsPath::Relative(p) => p,
        }
    }
}

/// Validates `cgroupsPath` (absent or empty means `/berth/<container_id>`), pure.
pub fn resolve_cgroups_path(cgroups_path: Option<&str>, container_id: &str) -> Result<CgroupsPath> {
    let given = cgroups_path.filter(|p| !p.is_empty());
    let raw = match given {
        Some(p) => p.to_string(),
        None => {
            if container_id.is_empty()
                || container_id.contains('/')
                || container_id == "."
                || container_id == ".."
            {
                return Err(Error::InvalidPath {
                    path: String::new(),
                    reason: format!("container id {container_id:?} cannot name a cgroup directory"),
                });
            }
            format!("{DEFAULT_PARENT}/{container_id}")
        }
    };
    if raw.contains(':') {
        return Err(Error::SystemdPath(raw));
    }
    let invalid = |reason: &str| Error::InvalidPath {
        path: raw.clone(),
        reason: reason.to_string(),
    };
    if raw.contains('\0') || raw.contains('\n') {
        return Err(invalid("it contains a NUL or newline"));
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid("'..' would leave the cgroup hierarchy")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(invalid(
            "it names the hierarchy root, which a container cannot own",
        ));
    }
    let joined = parts.join("/");
    Ok(if raw.starts_with('/') {
        CgroupsPath::Absolute(format!("/{joined}"))
    } else {
        CgroupsPath::Relative(joined)
    })
}

impl Layout {
    /// Reads `/proc/self/mountinfo` and, if there is a cgroup2 mount, its root `cgroup.controllers`.
    pub fn detect() -> Result<Layout> {
        let path = PathBuf::from("/proc/self/mountinfo");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let mounts = parse_mountinfo(&text)?;
        let v2_controllers = match mounts.iter().find(|m| m.version == Version::V2) {
            Some(m) => {
                let file = m.mount_point.join("cgroup.controllers");
                Some(
                    std::fs::read_to_string(&file)
                        .map_err(|source| Error::Read { path: file, source })?,
                )
            }
            None => None,
        };
        Layout::from_mounts(&mounts, v2_controllers.as_deref())
    }

    /// Builds the layout from parsed mounts and the v2 root's `cgroup.controllers` text (pure).
    pub fn from_mounts(mounts: &[CgroupMount], v2_controllers: Option<&str>) -> Result<Layout> {
        let mut v1: Vec<V1Hierarchy> = Vec::new();
        let mut v2: Option<V2Hierarchy> = None;
        for m in mounts {
            match m.version {
                Version::V1 => {
                    let controllers: Vec<Controller> = m
                        .options
                        .iter()
                        .filter_map(|o| Controller::from_v1_name(o))
                        .collect();
                    let name = m
                        .options
                        .iter()
                        .find_map(|o| o.strip_prefix("name="))
                        .map(str::to_string);
                    let useful = !controllers.is_empty() || name.as_deref() == Some("systemd");
                    // A hierarchy mounted twice (bind mounts) is used at its first mount.
                    let seen = v1.iter().any(|h| {
                        (!controllers.is_empty() && h.controllers == controllers)
                            || (controllers.is_empty()
                                && h.controllers.is_empty()
                                && h.name == name)
                    });
                    if useful && !seen {
                        v1.push(V1Hierarchy {
                            mount_point: m.mount_point.clone(),
                            root: m.root.clone(),
                            name: if controllers.is_empty() { name } else { None },
                            controllers,
                        });
                    }
                }
                Version::V2 => {
                    if v2.is_none() {
                        v2 = Some(V2Hierarchy {
                            mount_point: m.mount_point.clone(),
                            root: m.root.clone(),
                            controllers: Vec::new(),
                        });
                    }
                }
            }
        }
        if let Some(u) = v2.as_mut() {
            let on_v1 = |c: &Controller| v1.iter().any(|h| h.controllers.contains(c));
            u.controllers = v2_controllers
                .unwrap_or("")
                .split_whitespace()
                .filter_map(Controller::from_v2_name)
                .filter(|c| !on_v1(c))
                .collect();
        }
        let kind = match (v1.is_empty(), v2.is_some()) {
            (true, true) => LayoutKind::V2,
            (false, true) => LayoutKind::Hybrid,
            (false, false) => LayoutKind::V1,
            (true, false) => return Err(Error::NoCgroupMounts),
        };
        Ok(Layout { kind, v1, v2 })
    }

    /// Where `path` lives in a hierarchy mounted at `mount_point` with `root`, given the runtime's own cgroup there.
    fn dir_for(
        mount_point: &Path,
        root: &str,
        own: Option<&str>,
        path: &CgroupsPath,
    ) -> Result<PathBuf> {
        match path {
            CgroupsPath::Absolute(p) => Ok(mount_point.join(p.trim_start_matches('/'))),
            CgroupsPath::Relative(p) => {
                let own = own.unwrap_or("/");
                let below = if root == "/" {
                    Some(own)
                } else {
                    own.strip_prefix(root)
                        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                };
                let Some(below) = below else {
                    return Err(Error::OwnCgroupOutsideMount {
                        own: own.to_string(),
                        mount_point: mount_point.to_path_buf(),
                        root: root.to_string(),
                    });
                };
                Ok(mount_point
                    .join(below.trim_start_matches('/'))
                    .join(p.as_str()))
            }
        }
    }

    /// The container's cgroup in every hierarchy (pure); `own` is consulted only for relative paths.
    pub fn resolve(&self, own: Option<&OwnCgroups>, path: &CgroupsPath) -> Result<Cgroup> {
        let relative = matches!(path, CgroupsPath::Relative(_));
        if relative && own.is_none() {
            return Err(Error::InvalidPath {
                path: path.as_str().to_string(),
                reason: "a relative path needs the runtime's own cgroup, which was not given"
                    .to_string(),
            });
        }
        let mut hierarchies = Vec::with_capacity(self.v1.len() + 1);
        for h in &self.v1 {
            let names: Vec<String> = match &h.name {
                Some(n) => vec![format!("name={n}")],
                None => h
                    .controllers
                    .iter()
                    .map(|c| c.v1_name().to_string())
                    .collect(),
            };
            let own_path = own.and_then(|o| o.v1_path(&names));
            hierarchies.push(Hierarchy {
                version: Version::V1,
                controllers: h.controllers.clone(),
                name: h.name.clone(),
                mount_point: h.mount_point.clone(),
                dir: Layout::dir_for(&h.mount_point, &h.root, own_path, path)?,
            });
        }
        if let Some(u) = &self.v2 {
            let own_path = own.and_then(|o| o.v2.as_deref());
            hierarchies.push(Hierarchy {
                version: Version::V2,
                controllers: u.controllers.clone(),
                name: None,
                mount_point: u.mount_point.clone(),
                dir: Layout::dir_for(&u.mount_point, &u.root, own_path, path)?,
            });
        }
        Ok(Cgroup::from_parts(
            path.as_str().to_string(),
            self.kind,
            hierarchies,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This VM's layout: v1 controllers each on their own mount, hugetlb on cgroup2.
    pub(crate) const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const V2: &str = "\
25 1 0:22 / / rw - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    const V1_COMOUNTED: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
37 31 0:34 / /sys/fs/cgroup/perf_event rw,relatime - cgroup cgroup rw,perf_event
38 31 0:32 / /mnt/mem\\040again rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn detects_hybrid_with_hugetlb_on_v2() {
        let mounts = parse_mountinfo(HYBRID).expect("parse");
        assert_eq!(mounts.len(), 10);
        let layout = Layout::from_mounts(&mounts, Some("hugetlb\n")).expect("layout");
        assert_eq!(layout.kind, LayoutKind::Hybrid);
        assert_eq!(layout.v1.len(), 9);
        assert_eq!(layout.v1[8].name.as_deref(), Some("systemd"));
        let v2 = layout.v2.expect("v2");
        assert_eq!(v2.mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(v2.controllers, vec![Controller::Hugetlb]);
    }

    #[test]
    fn detects_pure_v2() {
        let mounts = parse_mountinfo(V2).expect("parse");
        let layout = Layout::from_mounts(
            &mounts,
            Some("cpuset cpu io memory hugetlb pids rdma misc\n"),
        )
        .expect("layout");
        assert_eq!(layout.kind, LayoutKind::V2);
        let v2 = layout.v2.expect("v2");
        assert_eq!(
            v2.controllers,
            vec![
                Controller::Cpuset,
                Controller::Cpu,
                Controller::Blkio,
                Controller::Memory,
                Controller::Hugetlb,
                Controller::Pids
            ]
        );
    }

    #[test]
    fn detects_v1_comounted_and_skips_duplicates_and_unknown() {
        let mounts = parse_mountinfo(V1_COMOUNTED).expect("parse");
        assert_eq!(mounts[4].mount_point, PathBuf::from("/mnt/mem again"));
        let layout = Layout::from_mounts(&mounts, None).expect("layout");
        assert_eq!(layout.kind, LayoutKind::V1);
        assert_eq!(layout.v1.len(), 3, "{layout:?}");
        assert_eq!(
            layout.v1[0].controllers,
            vec![Controller::Cpu, Controller::Cpuacct]
        );
        assert_eq!(layout.v1[1].root, "/docker/abc");
    }

    #[test]
    fn no_cgroup_mounts_is_an_error() {
        let mounts = parse_mountinfo("25 1 0:22 / / rw - ext4 /dev/vda rw\n").expect("parse");
        assert!(matches!(
            Layout::from_mounts(&mounts, None),
            Err(Error::NoCgroupMounts)
        ));
    }

    #[test]
    fn malformed_mountinfo_is_an_error() {
        assert!(parse_mountinfo("1 2 3\n").is_err());
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let own = parse_proc_cgroup(
            "9:name=systemd:/\n4:memory:/process_api/95cd\n2:cpu,cpuacct:/a\n0::/\n",
        )
        .expect("parse");
        assert_eq!(own.v2.as_deref(), Some("/"));
        assert_eq!(
            own.v1_path(&["memory".to_string()]),
            Some("/process_api/95cd")
        );
        assert_eq!(own.v1_path(&["cpuacct".to_string()]), Some("/a"));
        assert_eq!(own.v1_path(&["name=systemd".to_string()]), Some("/"));
    }

    #[test]
    fn path_rules() {
        assert_eq!(
            resolve_cgroups_path(None, "abc").expect("default"),
            CgroupsPath::Absolute("/berth/abc".into())
        );
        assert_eq!(
            resolve_cgroups_path(Some(""), "abc").expect("empty"),
            CgroupsPath::Absolute("/berth/abc".into())
        );
        assert_eq!(
            resolve_cgroups_path(Some("//foo/./bar/"), "abc").expect("abs"),
            CgroupsPath::Absolute("/foo/bar".into())
        );
        assert_eq!(
            resolve_cgroups_path(Some("foo/bar"), "abc").expect("rel"),
            CgroupsPath::Relative("foo/bar".into())
        );
        assert!(matches!(
            resolve_cgroups_path(Some("system.slice:berth:abc"), "abc"),
            Err(Error::SystemdPath(_))
        ));
        assert!(resolve_cgroups_path(Some("/foo/../../etc"), "abc").is_err());
        assert!(resolve_cgroups_path(Some("/"), "abc").is_err());
        assert!(resolve_cgroups_path(None, "a/b").is_err());
    }

    #[test]
    fn resolves_dirs_absolute_and_relative() {
        let mounts = parse_mountinfo(HYBRID).expect("parse");
        let layout = Layout::from_mounts(&mounts, Some("hugetlb")).expect("layout");
        let cg = layout
            .resolve(None, &CgroupsPath::Absolute("/berth/abc".into()))
            .expect("resolve");
        let paths = cg.paths();
        assert_eq!(
            paths["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/berth/abc")
        );
        assert_eq!(
            paths["hugetlb"],
            PathBuf::from("/sys/fs/cgroup/unified/berth/abc")
        );
        assert_eq!(
            paths["unified"],
            PathBuf::from("/sys/fs/cgroup/unified/berth/abc")
        );
        assert_eq!(
            paths["name=systemd"],
            PathBuf::from("/sys/fs/cgroup/systemd/berth/abc")
        );

        let own = parse_proc_cgroup("4:memory:/process_api/95cd\n1:cpu:/\n0::/x\n").expect("own");
        let rel = CgroupsPath::Relative("foo/bar".into());
        assert!(layout.resolve(None, &rel).is_err());
        let cg = layout.resolve(Some(&own), &rel).expect("resolve");
        let paths = cg.paths();
        assert_eq!(
            paths["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/process_api/95cd/foo/bar")
        );
        assert_eq!(paths["cpu"], PathBuf::from("/sys/fs/cgroup/cpu/foo/bar"));
        assert_eq!(
            paths["unified"],
            PathBuf::from("/sys/fs/cgroup/unified/x/foo/bar")
        );
    }

    #[test]
    fn relative_path_strips_the_mount_root() {
        let mounts = parse_mountinfo(V1_COMOUNTED).expect("parse");
        let layout = Layout::from_mounts(&mounts, None).expect("layout");
        let own =
            parse_proc_cgroup("3:memory:/docker/abc/sub\n2:cpu,cpuacct:/\n1:net_cls,net_prio:/\n")
                .expect("own");
        let cg = layout
            .resolve(Some(&own), &CgroupsPath::Relative("c1".into()))
            .expect("resolve");
        assert_eq!(
            cg.paths()["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/sub/c1")
        );
        let outside = parse_proc_cgroup("3:memory:/elsewhere\n").expect("own");
        assert!(matches!(
            layout.resolve(Some(&outside), &CgroupsPath::Relative("c1".into())),
            Err(Error::OwnCgroupOutsideMount { .. })
        ));
    }

    #[test]
    fn cgroup_round_trips_through_json() {
        let mounts = parse_mountinfo(HYBRID).expect("parse");
        let layout = Layout::from_mounts(&mounts, Some("hugetlb")).expect("layout");
        let cg = layout
            .resolve(None, &CgroupsPath::Absolute("/berth/abc".into()))
            .expect("resolve");
        let json = serde_json::to_string(&cg).expect("serialize");
        let back: Cgroup = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, cg);
    }
}
