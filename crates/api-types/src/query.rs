//! Query strings and the typed query parameters of the main endpoints.
//!
//! bollard-stubs' query types serialize only (they are written for a client), so the server side
//! is here: [`Query`] decodes `application/x-www-form-urlencoded` text and reads values the way
//! dockerd's `httputils` does (booleans are true unless "", "0", "no", "false" or "none"), and one
//! struct per endpoint gathers what that endpoint accepts.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::filters::{Filters, FiltersError};

/// A query string that cannot be decoded, or a parameter with a value of the wrong kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A `%` escape that is not two hex digits, or an escape that decodes to invalid UTF-8.
    #[error("invalid query string: {0}")]
    Encoding(String),
    /// A parameter that should be a number is not.
    #[error("invalid value for {name}: {value:?} is not an integer")]
    NotAnInteger {
        /// The parameter.
        name: String,
        /// The value received.
        value: String,
    },
    /// A parameter with a value outside the accepted set.
    #[error("invalid value for {name}: {value:?}, {expected}")]
    Invalid {
        /// The parameter.
        name: &'static str,
        /// The value received.
        value: String,
        /// What is accepted, as a phrase.
        expected: &'static str,
    },
    /// The `filters` parameter is malformed.
    #[error(transparent)]
    Filters(#[from] FiltersError),
}

/// A decoded query string: each name with its values in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    params: BTreeMap<String, Vec<String>>,
}

fn percent_decode(text: &str) -> Result<String, QueryError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| QueryError::Encoding(format!("bad escape in {text:?}")))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::Encoding(format!("{text:?} is not UTF-8")))
}

/// dockerd's `BoolValue`: anything but an empty or negative word is true.
fn truthy(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
}

impl Query {
    /// Decodes the text after `?` (without the `?`).
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params
                .entry(percent_decode(k)?)
                .or_default()
                .push(percent_decode(v)?);
        }
        Ok(Self { params })
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of `name` (`names=a&names=b`).
    pub fn get_all(&self, name: &str) -> &[String] {
        self.params.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The first value of `name` unless absent or empty.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    /// A boolean parameter; absent means false.
    pub fn bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(truthy)
    }

    /// A boolean parameter with a default for when it is absent or empty (dockerd's
    /// `BoolValueOrDefault`).
    pub fn bool_or(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            None | Some("") => default,
            Some(v) => truthy(v),
        }
    }

    /// An integer parameter; absent or empty is `None`.
    pub fn int<T: FromStr>(&self, name: &str) -> Result<Option<T>, QueryError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| QueryError::NotAnInteger {
                    name: name.to_string(),
                    value: v.to_string(),
                }),
        }
    }

    /// The `filters` parameter.
    pub fn filters(&self) -> Result<Filters, QueryError> {
        Ok(Filters::from_json(self.get("filters").unwrap_or(""))?)
    }
}

/// Builds an endpoint's parameters from a decoded query string.
pub trait FromQuery: Sized {
    /// Reads and validates the parameters the endpoint accepts, ignoring others as dockerd does.
    fn from_query(q: &Query) -> Result<Self, QueryError>;
}

/// `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerListQuery {
    /// Include stopped containers.
    pub all: bool,
    /// Only the `limit` most recently created containers.
    pub limit: Option<i64>,
    /// Fill `SizeRw` and `SizeRootFs`.
    pub size: bool,
    /// Filters: ancestor, before, expose, exited, health, id, isolation, is-task, label, name,
    /// network, publish, since, status, volume.
    pub filters: Filters,
}

/// The filter names `GET /containers/json` accepts.
pub const CONTAINER_LIST_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

impl FromQuery for ContainerListQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let filters = q.filters()?;
        filters.validate(CONTAINER_LIST_FILTERS)?;
        Ok(Self {
            all: q.bool("all"),
            limit: q.int("limit")?.filter(|l: &i64| *l > 0),
            size: q.bool("size"),
            filters,
        })
    }
}

/// `POST /containers/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerCreateQuery {
    /// The container's name, without the leading `/`.
    pub name: Option<String>,
    /// The platform of the image (`linux/amd64`).
    pub platform: Option<String>,
}

impl FromQuery for ContainerCreateQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            name: q.string("name"),
            platform: q.string("platform"),
        })
    }
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInspectQuery {
    /// Fill `SizeRw` and `SizeRootFs`.
    pub size: bool,
}

impl FromQuery for ContainerInspectQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            size: q.bool("size"),
        })
    }
}

/// `DELETE /containers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRemoveQuery {
    /// Remove the anonymous volumes too (`v`).
    pub volumes: bool,
    /// Kill a running container first.
    pub force: bool,
    /// Remove a legacy link instead of the container.
    pub link: bool,
}

impl FromQuery for ContainerRemoveQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            volumes: q.bool("v"),
            force: q.bool("force"),
            link: q.bool("link"),
        })
    }
}

/// `POST /containers/{id}/stop` and `/restart`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStopQuery {
    /// The signal to stop with instead of the container's stop signal (API ≥ 1.42).
    pub signal: Option<String>,
    /// Seconds to wait before SIGKILL; `None` uses the container's stop timeout, -1 waits forever.
    pub timeout: Option<i64>,
}

impl FromQuery for ContainerStopQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            signal: q.string("signal"),
            timeout: q.int("t")?,
        })
    }
}

/// `POST /containers/{id}/kill`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerKillQuery {
    /// The signal, by name (`SIGHUP`, `HUP`) or number; `None` means SIGKILL.
    pub signal: Option<String>,
}

impl FromQuery for ContainerKillQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            signal: q.string("signal"),
        })
    }
}

/// What `POST /containers/{id}/wait` waits for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitCondition {
    /// Returns at once if the container is not running, else at its exit.
    #[default]
    NotRunning,
    /// The next exit, even if the container is not running yet (`docker run` uses it).
    NextExit,
    /// The container's removal (`docker run --rm`).
    Removed,
}

/// `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerWaitQuery {
    /// The condition to wait for.
    pub condition: WaitCondition,
}

impl FromQuery for ContainerWaitQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let condition = match q.get("condition").unwrap_or("") {
            "" | "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            other => {
                return Err(QueryError::Invalid {
                    name: "condition",
                    value: other.to_string(),
                    expected: "expected not-running, next-exit or removed",
                })
            }
        };
        Ok(Self { condition })
    }
}

/// How many log lines to return from the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogTail {
    /// Every line (`all`, or absent).
    #[default]
    All,
    /// The last N lines.
    Lines(u64),
}

/// `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerLogsQuery {
    /// Keep the stream open and send new lines as they come.
    pub follow: bool,
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
    /// Only lines after this time (unix seconds, possibly fractional, as clients send it).
    pub since: Option<String>,
    /// Only lines before this time.
    pub until: Option<String>,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Only the last lines.
    pub tail: LogTail,
}

impl FromQuery for ContainerLogsQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let tail = match q.get("tail").map(str::trim) {
            None | Some("") | Some("all") => LogTail::All,
            // dockerd treats a negative count as "all".
            Some(v) if v.starts_with('-') && v[1..].bytes().all(|b| b.is_ascii_digit()) => {
                LogTail::All
            }
            Some(v) => LogTail::Lines(v.parse().map_err(|_| QueryError::Invalid {
                name: "tail",
                value: v.to_string(),
                expected: "expected a number of lines or \"all\"",
            })?),
        };
        Ok(Self {
            follow: q.bool("follow"),
            stdout: q.bool("stdout"),
            stderr: q.bool("stderr"),
            since: q.string("since"),
            until: q.string("until"),
            timestamps: q.bool("timestamps"),
            tail,
        })
    }
}

/// `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerAttachQuery {
    /// Stream output as it is produced.
    pub stream: bool,
    /// Replay the container's log first.
    pub logs: bool,
    /// Connect the client's input to the container's stdin.
    pub stdin: bool,
    /// Send stdout.
    pub stdout: bool,
    /// Send stderr.
    pub stderr: bool,
    /// The key sequence that detaches (`ctrl-p,ctrl-q` by default).
    pub detach_keys: Option<String>,
}

impl FromQuery for ContainerAttachQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            stream: q.bool("stream"),
            logs: q.bool("logs"),
            stdin: q.bool("stdin"),
            stdout: q.bool("stdout"),
            stderr: q.bool("stderr"),
            detach_keys: q.string("detachKeys"),
        })
    }
}

/// `POST /containers/{id}/resize` and `/exec/{id}/resize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResizeQuery {
    /// Rows.
    pub height: u32,
    /// Columns.
    pub width: u32,
}

impl FromQuery for ResizeQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let dim = |name: &str| -> Result<u32, QueryError> {
            q.int::<u32>(name)?.ok_or_else(|| QueryError::NotAnInteger {
                name: name.to_string(),
                value: String::new(),
            })
        };
        Ok(Self {
            height: dim("h")?,
            width: dim("w")?,
        })
    }
}

/// `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerTopQuery {
    /// Arguments for `ps` (default `-ef`).
    pub ps_args: Option<String>,
}

impl FromQuery for ContainerTopQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            ps_args: q.string("ps_args"),
        })
    }
}

/// `GET /containers/{id}/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatsQuery {
    /// Keep sending a sample every second (the default); false sends one.
    pub stream: bool,
    /// With `stream=false`, answer at once without the one-second CPU pre-sample.
    pub one_shot: bool,
}

impl FromQuery for ContainerStatsQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            stream: q.bool_or("stream", true),
            one_shot: q.bool("one-shot"),
        })
    }
}

/// `POST /containers/{id}/rename`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRenameQuery {
    /// The new name.
    pub name: String,
}

impl FromQuery for ContainerRenameQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            name: q.get("name").unwrap_or("").to_string(),
        })
    }
}

/// `POST /containers/prune`, `/images/prune` and the like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneQuery {
    /// Filters: `until`, `label`, `label!` (images also `dangling`).
    pub filters: Filters,
}

impl FromQuery for PruneQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            filters: q.filters()?,
        })
    }
}

/// `GET /networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkListQuery {
    /// Filters: dangling, driver, id, label, name, scope, type.
    pub filters: Filters,
}

/// The filter names `GET /networks` accepts.
pub const NETWORK_LIST_FILTERS: &[&str] =
    &["dangling", "driver", "id", "label", "name", "scope", "type"];

impl FromQuery for NetworkListQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let filters = q.filters()?;
        filters.validate(NETWORK_LIST_FILTERS)?;
        Ok(Self { filters })
    }
}

/// `GET /networks/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInspectQuery {
    /// Detailed inspect output (swarm only; accepted and ignored as dockerd does for local networks).
    pub verbose: bool,
    /// Only networks of this scope (`local`, `swarm`, `global`).
    pub scope: Option<String>,
}

impl FromQuery for NetworkInspectQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            verbose: q.bool("verbose"),
            scope: q.string("scope").filter(|s| !s.is_empty()),
        })
    }
}

/// `GET /images/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageListQuery {
    /// Include intermediate images.
    pub all: bool,
    /// Fill `RepoDigests`.
    pub digests: bool,
    /// Fill `SharedSize`.
    pub shared_size: bool,
    /// Fill `Manifests` (API ≥ 1.47).
    pub manifests: bool,
    /// Filters: before, dangling, label, reference, since, until.
    pub filters: Filters,
}

impl FromQuery for ImageListQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let filters = q.filters()?;
        filters.validate(&["before", "dangling", "label", "reference", "since", "until"])?;
        Ok(Self {
            all: q.bool("all"),
            digests: q.bool("digests"),
            shared_size: q.bool("shared-size"),
            manifests: q.bool("manifests"),
            filters,
        })
    }
}

/// `POST /images/create` in its pull form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagePullQuery {
    /// The image to pull (`busybox`, `registry:5000/app`), possibly with a tag or digest.
    pub from_image: String,
    /// The tag or digest, when not part of `from_image`; empty pulls `latest`.
    pub tag: Option<String>,
    /// The platform to pull (`linux/arm64`).
    pub platform: Option<String>,
}

/// `POST /images/create`: dockerd pulls with `fromImage` and imports with `fromSrc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCreateQuery {
    /// Pull from a registry.
    Pull(ImagePullQuery),
    /// Import a root filesystem tarball (`fromSrc`, `-` for the request body).
    Import {
        /// The source: `-` or a URL.
        from_src: String,
        /// The repository to tag the result with.
        repo: Option<String>,
        /// The tag.
        tag: Option<String>,
    },
}

impl FromQuery for ImageCreateQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        if let Some(from_image) = q.string("fromImage") {
            return Ok(Self::Pull(ImagePullQuery {
                from_image,
                tag: q.string("tag"),
                platform: q.string("platform"),
            }));
        }
        if let Some(from_src) = q.string("fromSrc") {
            return Ok(Self::Import {
                from_src,
                repo: q.string("repo"),
                tag: q.string("tag"),
            });
        }
        Err(QueryError::Invalid {
            name: "fromImage",
            value: String::new(),
            expected: "expected fromImage (pull) or fromSrc (import)",
        })
    }
}

/// `POST /images/{name}/push`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagePushQuery {
    /// The tag to push; empty pushes every tag of the repository.
    pub tag: Option<String>,
    /// The platform to push, for a multi-platform image.
    pub platform: Option<String>,
}

impl FromQuery for ImagePushQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            tag: q.string("tag"),
            platform: q.string("platform"),
        })
    }
}

/// `POST /images/{name}/tag`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageTagQuery {
    /// The repository of the new reference.
    pub repo: String,
    /// The tag of the new reference; empty means `latest`.
    pub tag: Option<String>,
}

impl FromQuery for ImageTagQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            repo: q.get("repo").unwrap_or("").to_string(),
            tag: q.string("tag"),
        })
    }
}

/// `DELETE /images/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRemoveQuery {
    /// Remove even if tagged in several repositories or used by a stopped container.
    pub force: bool,
    /// Keep untagged parents.
    pub noprune: bool,
    /// Only these platforms' variants (API ≥ 1.50), each a JSON OCI platform.
    pub platforms: Vec<PlatformSpec>,
}

impl FromQuery for ImageRemoveQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let platforms = q
            .get_all("platforms")
            .iter()
            .filter(|v| !v.is_empty())
            .map(|v| PlatformSpec::parse(v))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            force: q.bool("force"),
            noprune: q.bool("noprune"),
            platforms,
        })
    }
}

/// `POST /containers/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStartQuery {
    /// Restore from this checkpoint (experimental in dockerd).
    pub checkpoint: Option<String>,
    /// Where the checkpoint is.
    pub checkpoint_dir: Option<String>,
}

impl FromQuery for ContainerStartQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            checkpoint: q.string("checkpoint"),
            checkpoint_dir: q.string("checkpoint-dir"),
        })
    }
}

/// What `GET /system/df?type=` asks for; all of them when none is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsageQuery {
    /// Containers, images, volumes, build cache.
    pub types: Vec<String>,
}

impl FromQuery for DiskUsageQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let types = q.get_all("type").to_vec();
        for t in &types {
            if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
                return Err(QueryError::Invalid {
                    name: "type",
                    value: t.clone(),
                    expected: "expected container, image, volume or build-cache",
                });
            }
        }
        Ok(Self { types })
    }
}

/// `POST /images/load`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageLoadQuery {
    /// Only report the result, no progress.
    pub quiet: bool,
    /// The platform to load from a multi-platform archive (API ≥ 1.48).
    pub platform: Option<PlatformSpec>,
}

impl FromQuery for ImageLoadQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            quiet: q.bool("quiet"),
            platform: PlatformSpec::from_query(q)?,
        })
    }
}

/// A `platform` parameter of the image endpoints that take one as JSON (API ≥ 1.48: save,
/// load, history, inspect), or as `os/arch[/variant]` text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformSpec {
    /// `linux`.
    pub os: String,
    /// `amd64`; empty for any.
    pub architecture: String,
    /// `v8`; empty for any.
    pub variant: String,
}

impl PlatformSpec {
    /// Reads `platform` (the last one given), if any.
    pub fn from_query(q: &Query) -> Result<Option<Self>, QueryError> {
        match q.get_all("platform").last().filter(|v| !v.is_empty()) {
            Some(v) => Self::parse(v).map(Some),
            None => Ok(None),
        }
    }

    /// Parses one platform, JSON or text.
    pub fn parse(v: &str) -> Result<Self, QueryError> {
        let bad = || QueryError::Invalid {
            name: "platform",
            value: v.to_string(),
            expected: "expected a JSON OCI platform or os[/arch[/variant]]",
        };
        let spec = if v.trim_start().starts_with('{') {
            let j: serde_json::Value = serde_json::from_str(v).map_err(|_| bad())?;
            let field = |k: &str| j[k].as_str().unwrap_or("").to_string();
            Self {
                os: field("os"),
                architecture: field("architecture"),
                variant: field("variant"),
            }
        } else {
            let mut parts = v.split('/').map(str::to_string);
            let spec = Self {
                os: parts.next().unwrap_or_default(),
                architecture: parts.next().unwrap_or_default(),
                variant: parts.next().unwrap_or_default(),
            };
            if parts.next().is_some() {
                return Err(bad());
            }
            spec
        };
        if spec.os.is_empty() {
            return Err(bad());
        }
        Ok(spec)
    }

    /// Whether an image of `os`/`architecture`/`variant` is of this platform.
    pub fn matches(&self, os: &str, architecture: &str, variant: &str) -> bool {
        self.os == os
            && (self.architecture.is_empty() || self.architecture == architecture)
            && (self.variant.is_empty() || variant.is_empty() || self.variant == variant)
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [&self.os, &self.architecture, &self.variant];
        let text: Vec<&str> = parts
            .iter()
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .collect();
        f.write_str(&text.join("/"))
    }
}

/// `GET /images/get` (and `/images/{name}/get`, whose name is added by the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSaveQuery {
    /// The images to put in the archive.
    pub names: Vec<String>,
    /// Only images of this platform (API ≥ 1.48).
    pub platform: Option<PlatformSpec>,
}

impl FromQuery for ImageSaveQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            names: q.get_all("names").to_vec(),
            platform: PlatformSpec::from_query(q)?,
        })
    }
}

/// `GET /images/{name}/json` and `/history` (API ≥ 1.48 adds `platform`; inspect also
/// `manifests`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageInspectQuery {
    /// The platform the image must be of.
    pub platform: Option<PlatformSpec>,
    /// Fill `Manifests` (inspect only).
    pub manifests: bool,
}

impl FromQuery for ImageInspectQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        Ok(Self {
            platform: PlatformSpec::from_query(q)?,
            manifests: q.bool("manifests"),
        })
    }
}

/// `GET /events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventsQuery {
    /// Replay events after this time (unix seconds, possibly fractional).
    pub since: Option<String>,
    /// Stop at this time; without it the stream stays open.
    pub until: Option<String>,
    /// Filters: config, container, daemon, event, image, label, network, node, plugin, scope,
    /// secret, service, type, volume.
    pub filters: Filters,
}

impl FromQuery for EventsQuery {
    fn from_query(q: &Query) -> Result<Self, QueryError> {
        let filters = q.filters()?;
        filters.validate(&[
            "config",
            "container",
            "daemon",
            "event",
            "image",
            "label",
            "network",
            "node",
            "plugin",
            "scope",
            "secret",
            "service",
            "type",
            "volume",
        ])?;
        Ok(Self {
            since: q.string("since"),
            until: q.string("until"),
            filters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_reads_like_dockerd() {
        let q = Query::parse(
            "all=1&size=False&filters=%7B%22name%22%3A%7B%22a+b%22%3Atrue%7D%7D&names=x&names=y",
        )
        .expect("parse");
        assert!(q.bool("all"));
        assert!(!q.bool("size"));
        assert!(!q.bool("absent"));
        assert!(q.bool_or("absent", true));
        assert_eq!(q.get_all("names"), ["x", "y"]);
        let list = ContainerListQuery::from_query(&q).expect("list query");
        assert_eq!(list.filters.get("name").collect::<Vec<_>>(), ["a b"]);
        assert!(Query::parse("a=%zz").is_err());
    }

    #[test]
    fn typed_queries() {
        let q = Query::parse("t=abc").expect("parse");
        assert!(matches!(
            ContainerStopQuery::from_query(&q),
            Err(QueryError::NotAnInteger { .. })
        ));
        let q = Query::parse("condition=removed").expect("parse");
        assert_eq!(
            ContainerWaitQuery::from_query(&q).expect("wait").condition,
            WaitCondition::Removed
        );
        let q = Query::parse("tail=10&stdout=1").expect("parse");
        let logs = ContainerLogsQuery::from_query(&q).expect("logs");
        assert_eq!(logs.tail, LogTail::Lines(10));
        assert!(logs.stdout && !logs.stderr);
        let q = Query::parse("filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D").expect("parse");
        assert_eq!(
            ContainerListQuery::from_query(&q)
                .expect_err("bogus filter")
                .to_string(),
            "invalid filter 'bogus'"
        );
        let q = Query::parse(
            "platform=%7B%22os%22%3A%22linux%22%2C%22architecture%22%3A%22arm64%22%7D",
        )
        .expect("parse");
        let p = ImageSaveQuery::from_query(&q)
            .expect("save")
            .platform
            .expect("platform given");
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(p.matches("linux", "arm64", "v8") && !p.matches("linux", "amd64", ""));
        let q = Query::parse("platform=linux").expect("parse");
        let p = ImageInspectQuery::from_query(&q).expect("inspect").platform;
        assert!(p.is_some_and(|p| p.matches("linux", "amd64", "")));
        let q = Query::parse("platform=%7Bnot").expect("parse");
        assert!(ImageLoadQuery::from_query(&q).is_err());
        let q = Query::parse("stream=0").expect("parse");
        assert!(!ContainerStatsQuery::from_query(&q).expect("stats").stream);
        assert!(
            ContainerStatsQuery::from_query(&Query::default())
                .expect("stats")
                .stream
        );
    }
}
