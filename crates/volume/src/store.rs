//! The volume directory: `<root>/<name>/_data` and `<root>/<name>/opts.json`.
//!
//! A volume exists when its directory holds `_data`. The metadata file is written after `_data`
//! by temp file, fsync and rename, so a kill -9 at any point leaves either no volume, a volume
//! without metadata (listed with no labels, dated by its directory), or a whole one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::VolumeError;

/// The only driver berth has.
pub const DRIVER: &str = "local";

/// The label dockerd 28 puts on anonymous volumes (prune removes only those by default).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

const DATA: &str = "_data";
const META: &str = "opts.json";

/// A volume as inspect shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Its name (64 hex digits for an anonymous one).
    pub name: String,
    /// Always [`DRIVER`].
    pub driver: String,
    /// The directory containers see (`<root>/<name>/_data`).
    #[serde(skip)]
    pub mountpoint: PathBuf,
    /// When it was made (RFC 3339, seconds).
    pub created_at: String,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options (`type=none,o=bind,device=…` or none).
    pub options: BTreeMap<String, String>,
}

impl Volume {
    /// Whether it is an anonymous volume.
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// The host directory of a `type=none,o=bind,device=DIR` volume.
    pub fn device(&self) -> Option<PathBuf> {
        bind_device(&self.options)
    }

    /// The directory a container mounts: the bound host directory for a
    /// `type=none,o=bind` volume (checked to exist, as dockerd's mount at first use checks it),
    /// else `_data`.
    pub fn data_path(&self) -> Result<PathBuf, VolumeError> {
        match self.device() {
            None => Ok(self.mountpoint.clone()),
            Some(device) if device.is_dir() => Ok(device),
            Some(device) => Err(VolumeError::MissingDevice {
                device,
                mountpoint: self.mountpoint.clone(),
            }),
        }
    }

    /// Whether the bind of a `type=none,o=bind,ro` volume is read-only.
    pub fn read_only(&self) -> bool {
        self.options
            .get("o")
            .is_some_and(|o| o.split(',').any(|x| x == "ro"))
    }
}

/// The device of local-driver options that bind a host directory, `None` for no options.
fn bind_device(options: &BTreeMap<String, String>) -> Option<PathBuf> {
    let device = options.get("device")?;
    Some(PathBuf::from(device))
}

/// Checks local-driver options: none, or `type=none,o=bind[,ro|rw],device=/abs` (a bind
/// of a host directory, which needs no mount on the host: the container binds the device).
fn check_options(name: &str, options: &BTreeMap<String, String>) -> Result<(), VolumeError> {
    if options.is_empty() {
        return Ok(());
    }
    let o_ok = options.get("o").is_some_and(|o| {
        let parts: Vec<&str> = o.split(',').collect();
        parts.iter().any(|p| matches!(*p, "bind" | "rbind"))
            && parts
                .iter()
                .all(|p| matches!(*p, "bind" | "rbind" | "ro" | "rw"))
    });
    let ok = options.len() == 3
        && options.get("type").is_some_and(|t| t == "none")
        && o_ok
        && options.get("device").is_some_and(|d| d.starts_with('/'));
    if ok {
        return Ok(());
    }
    let options = options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Err(VolumeError::UnsupportedOptions {
        name: name.to_string(),
        options,
    })
}

/// Checks a volume name as dockerd's local driver does: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// Whether `name` has the shape of an anonymous volume's name (64 lower-case hex digits).
pub fn is_anonymous_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The volumes under one directory. Not locked: berthd serialises calls that change it.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    root: PathBuf,
}

impl VolumeStore {
    /// Opens (creating) the volume directory, mode 0701 as dockerd makes it, and drops the
    /// temporary files a killed write left.
    pub fn open(root: &Path) -> Result<Self, VolumeError> {
        let io = |op, source| VolumeError::Io {
            name: String::new(),
            op,
            path: root.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(root).map_err(|e| io("create", e))?;
        let store = VolumeStore {
            root: root.to_path_buf(),
        };
        for entry in std::fs::read_dir(root).map_err(|e| io("list", e))? {
            let entry = entry.map_err(|e| io("list", e))?;
            let _ = std::fs::remove_file(entry.path().join(format!("{META}.tmp")));
        }
        Ok(store)
    }

    /// The directory of the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The directory containers see for volume `name`.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir(name).join(DATA)
    }

    /// Creates volume `name` (a random anonymous one when `None`) with the `local` driver, or
    /// returns the existing volume of that name unchanged (docker's create is idempotent).
    pub fn create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        options: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        let mut labels = labels.clone();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                random_name().map_err(|source| VolumeError::Io {
                    name: String::new(),
                    op: "read",
                    path: PathBuf::from("/dev/urandom"),
                    source,
                })?
            }
        };
        validate_name(&name)?;
        let driver = driver.filter(|d| !d.is_empty()).unwrap_or(DRIVER);
        if let Ok(existing) = self.get(&name) {
            if driver != existing.driver {
                return Err(VolumeError::DriverConflict {
                    name,
                    existing: existing.driver,
                });
            }
            return Ok(existing);
        }
        if driver != DRIVER {
            return Err(VolumeError::UnknownDriver {
                name,
                driver: driver.to_string(),
            });
        }
        check_options(&name, options)?;
        let dir = self.dir(&name);
        let data = dir.join(DATA);
        let io = |op, path: &Path, source| VolumeError::Io {
            name: name.clone(),
            op,
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        match std::fs::create_dir(&data) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("create", &data, e)),
        }
        let volume = Volume {
            name: name.clone(),
            driver: DRIVER.to_string(),
            mountpoint: data,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options: options.clone(),
        };
        let meta = dir.join(META);
        write_atomic(&meta, &volume).map_err(|e| io("write", &meta, e))?;
        Ok(volume)
    }

    /// The volume called `name`.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        let not_found = || VolumeError::NotFound {
            name: name.to_string(),
        };
        // A name that is not a volume name cannot be one (and must not walk out of the store).
        validate_name(name).map_err(|_| not_found())?;
        let dir = self.dir(name);
        let data = dir.join(DATA);
        let st = std::fs::symlink_metadata(&data).map_err(|_| not_found())?;
        if !st.is_dir() {
            return Err(not_found());
        }
        let meta: Option<Volume> = std::fs::read(dir.join(META))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(match meta {
            Some(mut v) => {
                v.name = name.to_string();
                v.mountpoint = data;
                v
            }
            None => Volume {
                name: name.to_string(),
                driver: DRIVER.to_string(),
                mountpoint: data,
                created_at: st
                    .modified()
                    .ok()
                    .map(|t| {
                        chrono::DateTime::<chrono::Utc>::from(t)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    })
                    .unwrap_or_default(),
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
            },
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let entries = std::fs::read_dir(&self.root).map_err(|source| VolumeError::Io {
            name: String::new(),
            op: "list",
            path: self.root.clone(),
            source,
        })?;
        let mut out: Vec<Volume> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter_map(|n| self.get(&n).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes volume `name` and its content. Whether a container uses it is the caller's
    /// question. The directory is renamed away first, so a removal cut short never leaves a
    /// half-emptied volume under the name.
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        self.get(name)?;
        let dir = self.dir(name);
        let doomed = self.root.join(format!(".removing-{name}"));
        let io = |op, path: &Path, source| VolumeError::Io {
            name: name.to_string(),
            op,
            path: path.to_path_buf(),
            source,
        };
        std::fs::rename(&dir, &doomed).map_err(|e| io("rename", &dir, e))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| io("remove", &doomed, e))
    }

    /// Whether the volume's content is empty (a fresh volume gets the image's content).
    pub fn is_empty(&self, name: &str) -> Result<bool, VolumeError> {
        let data = self.get(name)?.data_path()?;
        let mut entries = std::fs::read_dir(&data).map_err(|source| VolumeError::Io {
            name: name.to_string(),
            op: "list",
            path: data.clone(),
            source,
        })?;
        Ok(entries.next().is_none())
    }

    /// Bytes used by the volume's files (each inode counted once; not following symlinks).
    pub fn size(&self, name: &str) -> u64 {
        fn walk(dir: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
            use std::os::unix::fs::MetadataExt;
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            let mut total = 0;
            for e in entries.filter_map(|e| e.ok()) {
                let Ok(m) = e.path().symlink_metadata() else {
                    continue;
                };
                if m.is_dir() {
                    total += walk(&e.path(), seen);
                } else if seen.insert((m.dev(), m.ino())) {
                    total += m.len();
                }
            }
            total
        }
        match self.get(name).and_then(|v| v.data_path()) {
            Ok(data) => walk(&data, &mut Default::default()),
            Err(_) => 0,
        }
    }

    /// Removes what an interrupted [`VolumeStore::remove`] left.
    pub fn finish_removals(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().starts_with(".removing-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn random_name() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(hex::encode(bytes))
}

fn write_atomic(path: &Path, volume: &Volume) -> std::io::Result<()> {
    let json = serde_json::to_vec(volume).map_err(std::io::Error::other)?;
    let tmp = path.with_file_name(format!("{META}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&json)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename is durable once the directory is.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = VolumeStore::open(&dir.path().join("volumes")).expect("open");
        (dir, store)
    }

    #[test]
    fn names_follow_dockerd() {
        assert!(validate_name("ab").is_ok());
        assert!(validate_name("my_vol.1-x").is_ok());
        for bad in ["a", "", "_ab", "a/b", "..", "a b"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            validate_name("a/b").expect_err("refused").to_string(),
            "create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }

    #[test]
    fn create_is_idempotent_and_remove_forgets() {
        let (_d, s) = store();
        let labels = BTreeMap::from([("a".to_string(), "1".to_string())]);
        let v = s
            .create(Some("data"), None, &BTreeMap::new(), &labels)
            .expect("create");
        assert_eq!(v.mountpoint, s.root().join("data/_data"));
        std::fs::write(v.mountpoint.join("f"), b"x").expect("write");
        let again = s
            .create(
                Some("data"),
                Some("local"),
                &BTreeMap::new(),
                &BTreeMap::new(),
            )
            .expect("again");
        assert_eq!(again.labels, labels);
        assert!(!s.is_empty("data").expect("list"));
        assert_eq!(s.size("data"), 1);
        assert_eq!(s.list().expect("list").len(), 1);
        s.remove("data").expect("remove");
        assert!(matches!(s.get("data"), Err(VolumeError::NotFound { .. })));
        assert!(s.list().expect("list").is_empty());
    }

    #[test]
    fn anonymous_volumes_are_labelled() {
        let (_d, s) = store();
        let v = s
            .create(None, None, &BTreeMap::new(), &BTreeMap::new())
            .expect("create");
        assert!(is_anonymous_name(&v.name));
        assert!(v.is_anonymous());
        assert!(s.is_empty(&v.name).expect("list"));
    }

    #[test]
    fn other_drivers_and_options_are_refused() {
        let (_d, s) = store();
        let none = BTreeMap::new();
        assert!(matches!(
            s.create(Some("vv"), Some("nfs"), &none, &none),
            Err(VolumeError::UnknownDriver { .. })
        ));
        let opts = BTreeMap::from([("type".to_string(), "tmpfs".to_string())]);
        assert!(matches!(
            s.create(Some("vv"), None, &opts, &none),
            Err(VolumeError::UnsupportedOptions { .. })
        ));
        assert!(s.list().expect("list").is_empty());
    }

    #[test]
    fn a_bind_volume_uses_its_device() {
        let (d, s) = store();
        let device = d.path().join("device");
        let opts = |o: &str| {
            BTreeMap::from([
                ("type".to_string(), "none".to_string()),
                ("o".to_string(), o.to_string()),
                ("device".to_string(), device.display().to_string()),
            ])
        };
        let none = BTreeMap::new();
        assert!(s
            .create(Some("b1"), None, &opts("bind,nosuid"), &none)
            .is_err());
        let v = s
            .create(Some("b1"), None, &opts("bind,ro"), &none)
            .expect("create");
        assert!(v.read_only());
        assert!(matches!(
            v.data_path(),
            Err(VolumeError::MissingDevice { .. })
        ));
        std::fs::create_dir(&device).expect("mkdir");
        std::fs::write(device.join("f"), b"abc").expect("write");
        let v = s.get("b1").expect("get");
        assert_eq!(v.data_path().expect("exists"), device);
        assert!(!s.is_empty("b1").expect("list"));
        assert_eq!(s.size("b1"), 3);
        s.remove("b1").expect("remove");
        assert!(
            device.join("f").exists(),
            "removing the volume keeps the device's content"
        );
    }

    #[test]
    fn a_volume_without_metadata_still_loads() {
        let (_d, s) = store();
        std::fs::create_dir_all(s.root().join("half/_data")).expect("mkdir");
        let v = s.get("half").expect("get");
        assert!(v.labels.is_empty());
        assert!(s.get("../x").is_err());
    }
}
