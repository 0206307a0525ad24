//! The image service: the image store behind the image routes.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use api_server::{ApiError, ByteStream, ImageBackend, JsonStream};
use api_types::models::generated::{DriverData, ImageConfig, ImageInspectRootFs};
use api_types::models::*;
use api_types::query::{
    ImageListQuery, ImagePullQuery, ImagePushQuery, ImageRemoveQuery, PruneQuery,
};
use api_types::{ProgressMessage, RegistryAuth};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use image::manifest::Platform;
use image::progress::Progress;
use image::reference::Reference;
use image::registry::{Credentials, RegistryClient, RegistryOptions};
use image::store::{RemoveOutcome, Store, StoreError};
use tokio::io::AsyncWriteExt;

use crate::{blocking, Daemon};

/// Makes what a pull or load just named durable (one `syncfs`), off the
/// request's path: the image is whole and visible already, and after a
/// crash before this ends the next start checks and remakes what it named,
/// or drops it, never shows it torn (see the image crate's `pending` module).
async fn settle_in_background(images: &tokio::sync::RwLock<Store>) {
    let settler = images.read().await.settler();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = settler.settle() {
            tracing::warn!(error = %e, "cannot flush the images just pulled or loaded to disk; the next start retries");
        }
    });
}

fn lock(m: &tokio::sync::RwLock<Store>) -> tokio::sync::RwLockWriteGuard<'_, Store> {
    crate::store_write(m)
}

fn store_err(name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::no_such_image(name),
        StoreError::InUse { .. } | StoreError::MultipleTags { .. } => {
            ApiError::Conflict(e.to_string())
        }
        StoreError::Ambiguous(_) | StoreError::Reference(_) => {
            ApiError::InvalidParameter(e.to_string())
        }
        other => ApiError::Internal(other.to_string()),
    }
}

fn unix_time(s: Option<&str>) -> i64 {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

impl Daemon {
    /// The image IDs some container uses.
    fn images_in_use(&self) -> HashSet<String> {
        let reg = self
            .inner
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        reg_image_ids(&reg)
    }

    /// A registry client for one pull or push: the client's `X-Registry-Auth` credentials
    /// (never berthd's own docker config) and the daemon's insecure registries.
    fn registry_client(&self, auth: &RegistryAuth) -> Result<RegistryClient, ApiError> {
        // Re-encoded so the image crate's one reader of the header decides what it means.
        let header = if *auth == RegistryAuth::default() {
            String::new()
        } else {
            let json = serde_json::to_vec(auth)
                .map_err(|e| ApiError::Internal(format!("encode registry credentials: {e}")))?;
            base64::engine::general_purpose::URL_SAFE.encode(json)
        };
        let credentials = Credentials::from_x_registry_auth(&header)
            .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
        Ok(RegistryClient::new(RegistryOptions {
            insecure_registries: self.inner.config.insecure_registries.clone(),
            credentials,
            docker_config: None,
            ..RegistryOptions::default()
        }))
    }

    fn image_event(&self, action: &str, id: &str, name: &str) {
        let mut attrs = HashMap::new();
        attrs.insert("name".to_string(), name.to_string());
        self.inner
            .events
            .publish(EventMessageTypeEnum::IMAGE, action, id, attrs);
    }
}

/// The reference a pull asks for: `fromImage`, with `tag` (a tag or a digest) when given.
fn pull_reference(query: &ImagePullQuery) -> Result<Reference, ApiError> {
    let text = match query.tag.as_deref().filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{}@{t}", query.from_image),
        Some(t) => format!("{}:{t}", query.from_image),
        None => query.from_image.clone(),
    };
    Reference::parse(&text)
        .map(Reference::with_default_tag)
        .map_err(|e| ApiError::InvalidParameter(format!("pull {text}: {e}")))
}

/// An image-crate progress event as a line of docker's JSON progress stream.
fn progress_message(p: &Progress) -> ProgressMessage {
    serde_json::from_value(p.to_docker_json())
        .unwrap_or_else(|_| ProgressMessage::status(Some(&p.id), p.status.clone()))
}

/// The receiving end of a worker's channel as the response body's stream; it ends when the
/// worker drops its sender.
fn tokio_stream_of(
    rx: tokio::sync::mpsc::UnboundedReceiver<Result<ProgressMessage, ApiError>>,
) -> JsonStream<ProgressMessage> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) })
        .boxed()
}

/// An image as the list and prune filters see it.
struct ListedImage {
    summary: image::store::ImageSummary,
    tags: Vec<String>,
    repo_digests: Vec<String>,
    labels: HashMap<String, String>,
    /// Unix seconds.
    created: i64,
    /// Each layer's chain ID and unpacked size.
    layers: Vec<(String, u64)>,
}

fn listed_images(store: &Store) -> Result<Vec<ListedImage>, ApiError> {
    let mut out = Vec::new();
    for summary in store.list() {
        let id = summary.id.to_string();
        let inspect = store.inspect(&id).map_err(|e| store_err(&id, e))?;
        let labels = inspect.config_json["config"]["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        out.push(ListedImage {
            tags: summary.tags.iter().map(|t| t.familiar()).collect(),
            repo_digests: inspect.record.repo_digests.clone(),
            labels,
            created: unix_time(summary.created.as_deref()),
            layers: inspect
                .record
                .layers
                .iter()
                .map(|l| (l.chain_id.to_string(), l.unpacked_size))
                .collect(),
            summary,
        });
    }
    Ok(out)
}

/// `path.Match`-style glob (`*`, `?`) as dockerd matches `reference` filters; `*` stops at `/`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text)
                || (text.first().is_some_and(|c| *c != b'/') && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(c)) if p == c => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Whether a `reference` filter value matches one of an image's familiar tags: the whole
/// `name:tag`, or the name alone when the pattern has no tag.
fn reference_matches(pattern: &str, tags: &[String]) -> bool {
    tags.iter().any(|t| {
        let name = t
            .rsplit_once(':')
            .filter(|(_, tag)| !tag.contains('/'))
            .map_or(t.as_str(), |(n, _)| n);
        glob(pattern.as_bytes(), t.as_bytes()) || glob(pattern.as_bytes(), name.as_bytes())
    })
}

/// The `GET /images/json` filters (dangling, reference, before, since, until, label) as one
/// predicate.
fn image_filter<'a>(
    store: &Store,
    details: &[ListedImage],
    f: &'a api_types::Filters,
) -> Result<impl Fn(&ListedImage) -> bool + 'a, ApiError> {
    let created_of = |name: &str| -> Result<i64, ApiError> {
        let (id, _) = store
            .resolve(name)
            .map_err(|_| ApiError::no_such_image(name))?;
        let id = id.to_string();
        Ok(details
            .iter()
            .find(|d| d.summary.id.to_string() == id)
            .map_or(0, |d| d.created))
    };
    let before = f
        .get("before")
        .map(created_of)
        .collect::<Result<Vec<_>, _>>()?;
    let since = f
        .get("since")
        .map(created_of)
        .collect::<Result<Vec<_>, _>>()?;
    let until = f
        .get("until")
        .map(crate::until_seconds)
        .collect::<Result<Vec<_>, _>>()?;
    for v in f.get("dangling") {
        if v != "true" && v != "false" {
            return Err(ApiError::InvalidParameter(format!(
                "invalid filter 'dangling={v}'"
            )));
        }
    }
    Ok(move |d: &ListedImage| {
        let mut refs = f.get("reference").peekable();
        f.get("dangling")
            .all(|v| (v == "true") == d.tags.is_empty())
            && (refs.peek().is_none() || refs.any(|r| reference_matches(r, &d.tags)))
            && before.iter().all(|t| d.created < *t)
            && since.iter().all(|t| d.created > *t)
            && until.iter().all(|t| d.created < *t)
            && f.labels_match("label", |k| d.labels.get(k).map(String::as_str))
    })
}

fn reg_image_ids(reg: &crate::containers::Registry) -> HashSet<String> {
    reg.image_ids()
}

impl ImageBackend for Daemon {
    async fn image_list(&self, query: ImageListQuery) -> Result<Vec<ImageSummary>, ApiError> {
        if query.manifests {
            return Err(ApiError::InvalidParameter(
                "manifests=1 (docker image ls --tree) is not supported by berthd: it keeps one platform's manifest per image".into(),
            ));
        }
        let images = self.inner.images.clone();
        let used = self.images_in_use();
        let f = query.filters.clone();
        let shared = query.shared_size;
        blocking(move || {
            let store = crate::store_read(&images);
            let details = listed_images(&store)?;
            let keep = image_filter(&store, &details, &f)?;
            // A layer's bytes count as shared when another image has the same chain.
            let mut users: HashMap<String, usize> = HashMap::new();
            for d in &details {
                for l in &d.layers {
                    *users.entry(l.0.clone()).or_default() += 1;
                }
            }
            Ok(details
                .into_iter()
                .filter(|d| keep(d))
                .map(|d| {
                    let id = d.summary.id.to_string();
                    let shared_size = if shared {
                        d.layers
                            .iter()
                            .filter(|l| users.get(&l.0).is_some_and(|n| *n > 1))
                            .map(|l| l.1 as i64)
                            .sum()
                    } else {
                        -1
                    };
                    ImageSummary {
                        containers: if used.contains(&id) { 1 } else { 0 },
                        id,
                        parent_id: String::new(),
                        // As dockerd: with a reference filter, only the tags it matched.
                        repo_tags: if f.contains("reference") {
                            d.tags
                                .iter()
                                .filter(|t| {
                                    f.get("reference")
                                        .any(|r| reference_matches(r, std::slice::from_ref(t)))
                                })
                                .cloned()
                                .collect()
                        } else {
                            d.tags
                        },
                        repo_digests: d.repo_digests,
                        created: d.created,
                        size: d.summary.size as i64,
                        shared_size,
                        labels: d.labels,
                        manifests: None,
                        descriptor: None,
                    }
                })
                .collect())
        })
        .await
    }

    async fn image_inspect(&self, name: &str) -> Result<ImageInspect, ApiError> {
        let images = self.inner.images.clone();
        let n = name.to_string();
        let i = blocking(move || {
            crate::store_read(&images)
                .inspect(&n)
                .map_err(|e| store_err(&n, e))
        })
        .await?;
        let cfg = &i.config_json;
        let config: Option<ImageConfig> = serde_json::from_value(cfg["config"].clone()).ok();
        Ok(ImageInspect {
            id: Some(i.record.id.to_string()),
            repo_tags: Some(i.tags.iter().map(|t| t.familiar()).collect()),
            repo_digests: Some(i.record.repo_digests.clone()),
            comment: Some(String::new()),
            created: i.record.created.clone(),
            author: cfg["author"].as_str().map(str::to_owned),
            config,
            architecture: cfg["architecture"].as_str().map(str::to_owned),
            os: cfg["os"].as_str().map(str::to_owned),
            size: Some(i.size as i64),
            graph_driver: Some(DriverData {
                name: "overlay2".into(),
                data: HashMap::new(),
            }),
            root_fs: Some(ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(i.diff_ids.iter().map(|d| d.to_string()).collect()),
            }),
            ..Default::default()
        })
    }

    async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>, ApiError> {
        let images = self.inner.images.clone();
        let n = name.to_string();
        blocking(move || {
            let store = crate::store_read(&images);
            let (id, _) = store.resolve(&n).map_err(|e| store_err(&n, e))?;
            let h = store.history(&n).map_err(|e| store_err(&n, e))?;
            Ok(h.iter()
                .enumerate()
                .map(|(i, h)| ImageHistoryResponseItem {
                    id: if i == 0 {
                        id.to_string()
                    } else {
                        "<missing>".into()
                    },
                    created: unix_time(h.created().as_deref()),
                    created_by: h.created_by().clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size: 0,
                    comment: h.comment().clone().unwrap_or_default(),
                })
                .collect())
        })
        .await
    }

    async fn image_tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<(), ApiError> {
        let images = self.inner.images.clone();
        let n = name.to_string();
        let target = format!("{repo}:{}", tag.unwrap_or("latest"));
        let t2 = target.clone();
        let id = blocking(move || {
            let mut store = lock(&images);
            store.tag(&n, &t2).map_err(|e| store_err(&n, e))?;
            Ok(store
                .resolve(&t2)
                .map(|(id, _)| id.to_string())
                .unwrap_or_default())
        })
        .await?;
        self.image_event("tag", &id, &target);
        Ok(())
    }

    async fn image_remove(
        &self,
        name: &str,
        query: ImageRemoveQuery,
    ) -> Result<Vec<ImageDeleteResponseItem>, ApiError> {
        let images = self.inner.images.clone();
        let used = self.images_in_use();
        let n = name.to_string();
        let outcomes = blocking(move || {
            let in_use = |id: &image::metadata::ImageId| used.contains(&id.to_string());
            lock(&images)
                .remove(&n, query.force, &in_use)
                .map_err(|e| match e {
                    StoreError::InUse { .. } => ApiError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{n}\" - image is being used by a container"
                    )),
                    e => store_err(&n, e),
                })
        })
        .await?;
        let mut out = Vec::new();
        for o in outcomes {
            match o {
                RemoveOutcome::Untagged(r) => {
                    self.image_event("untag", "", &r.familiar());
                    out.push(ImageDeleteResponseItem {
                        untagged: Some(r.familiar()),
                        deleted: None,
                    });
                }
                RemoveOutcome::Deleted(id) => {
                    self.image_event("delete", &id.to_string(), name);
                    out.push(ImageDeleteResponseItem {
                        untagged: None,
                        deleted: Some(id.to_string()),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn image_pull(
        &self,
        query: ImagePullQuery,
        auth: RegistryAuth,
    ) -> Result<JsonStream<ProgressMessage>, ApiError> {
        let reference = pull_reference(&query)?;
        let platform = match query.platform.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => Some(p.parse::<Platform>().map_err(|e| {
                ApiError::InvalidParameter(format!("pull {reference}: platform {p:?}: {e}"))
            })?),
            None => None,
        };
        let client = self.registry_client(&auth)?;
        let images = self.inner.images.clone();
        let daemon = self.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let progress_tx = tx.clone();
            let mut progress = move |p: Progress| {
                let _ = progress_tx.send(Ok(progress_message(&p)));
            };
            // Shared while downloading: image reads (and other pulls) go on meanwhile.
            let pulled = {
                let store = images.read().await;
                store
                    .download(&client, &reference, platform.as_ref(), &mut progress)
                    .await
            };
            let outcome = match pulled {
                Ok(pulled) => {
                    let images = images.clone();
                    blocking(move || {
                        lock(&images)
                            .commit_pulled(pulled, &mut progress)
                            .map_err(|e| ApiError::Internal(e.to_string()))
                    })
                    .await
                }
                Err(e) => Err(ApiError::Internal(e.to_string())),
            };
            match outcome {
                Ok(o) => {
                    daemon.image_event("pull", &o.record.id.to_string(), &o.reference.familiar());
                    // The client has its answer; durability follows.
                    drop(tx);
                    settle_in_background(&images).await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        Ok(tokio_stream_of(rx))
    }

    async fn image_push(
        &self,
        name: &str,
        query: ImagePushQuery,
        auth: RegistryAuth,
    ) -> Result<JsonStream<ProgressMessage>, ApiError> {
        let repo = image::reference::Reference::parse(name)
            .map_err(|e| ApiError::InvalidParameter(format!("push {name}: {e}")))?;
        let images = self.inner.images.clone();
        // With a tag, that tag; without one, every tag of the repository, as dockerd does.
        let names: Vec<String> = match query.tag.as_deref().filter(|t| !t.is_empty()) {
            Some(tag) => vec![repo
                .with_tag(tag)
                .map_err(|e| ApiError::InvalidParameter(format!("push {name}:{tag}: {e}")))?
                .to_string()],
            None if repo.tag().is_some() => vec![repo.to_string()],
            None => {
                let want = repo.name();
                let mut tags: Vec<String> = images
                    .read()
                    .await
                    .list()
                    .iter()
                    .flat_map(|s| s.tags.iter())
                    .filter(|t| t.name() == want)
                    .map(|t| t.to_string())
                    .collect();
                tags.sort();
                tags
            }
        };
        if names.is_empty() {
            return Err(ApiError::no_such_image(name));
        }
        // A missing image is a 404 before the stream starts, as dockerd answers it.
        {
            let store = images.read().await;
            for n in &names {
                store.resolve(n).map_err(|e| store_err(n, e))?;
                // berthd keeps one platform per image: a push names it or fails.
                if let Some(p) = query.platform.as_deref().filter(|p| !p.is_empty()) {
                    let config = store.inspect(n).map_err(|e| store_err(n, e))?.config_json;
                    check_platform(n, p, &config)?;
                }
            }
        }
        let client = self.registry_client(&auth)?;
        let daemon = self.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let progress_tx = tx.clone();
            let mut progress = move |p: Progress| {
                let _ = progress_tx.send(Ok(progress_message(&p)));
            };
            for n in names {
                // Exclusive: a push records the repo digest it made in the store.
                let pushed = images.write().await.push(&client, &n, &mut progress).await;
                match pushed {
                    Ok(o) => {
                        let tag = o.reference.tag().unwrap_or_default().to_string();
                        let _ = tx.send(Ok(ProgressMessage {
                            aux: Some(serde_json::json!({
                                "Tag": tag,
                                "Digest": o.digest.to_string(),
                                "Size": o.size,
                            })),
                            ..Default::default()
                        }));
                        daemon.image_event("push", &n, &o.reference.familiar());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(ApiError::Internal(e.to_string())));
                        return;
                    }
                }
            }
        });
        Ok(tokio_stream_of(rx))
    }

    async fn image_load(
        &self,
        mut archive: ByteStream,
        _quiet: bool,
    ) -> Result<JsonStream<ProgressMessage>, ApiError> {
        let tmp_dir = self.inner.config.data_root.join("image").join("tmp");
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| ApiError::Internal(format!("create {}: {e}", tmp_dir.display())))?;
        let path = tmp_dir.join(format!("load-{}.tar", crate::new_id()?));
        let io = |e: std::io::Error| {
            ApiError::Internal(format!("spool the archive to {}: {e}", path.display()))
        };
        let mut f = tokio::fs::File::create(&path).await.map_err(io)?;
        let spooled = async {
            while let Some(chunk) = archive.next().await {
                f.write_all(&chunk?).await.map_err(io)?;
            }
            f.flush().await.map_err(io)?;
            Ok::<_, ApiError>(())
        }
        .await;
        drop(f);
        if let Err(e) = spooled {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let images = self.inner.images.clone();
        let p2 = path.clone();
        let loaded = blocking(move || {
            let mut store = lock(&images);
            let result = std::fs::File::open(&p2)
                .map_err(|e| ApiError::Internal(format!("open {}: {e}", p2.display())))
                .and_then(|file| {
                    store
                        .load_reader(file.take(u64::MAX), &mut |_| {})
                        .map_err(|e| ApiError::InvalidParameter(format!("load the archive: {e}")))
                });
            let _ = std::fs::remove_file(&p2);
            let records = result?;
            let list = store.list();
            let mut lines = Vec::new();
            for r in records {
                let tags: Vec<String> = list
                    .iter()
                    .find(|s| s.id == r.id)
                    .map(|s| s.tags.iter().map(|t| t.familiar()).collect())
                    .unwrap_or_default();
                if tags.is_empty() {
                    lines.push((r.id.to_string(), format!("Loaded image ID: {}", r.id)));
                }
                for t in tags {
                    lines.push((r.id.to_string(), format!("Loaded image: {t}")));
                }
            }
            Ok(lines)
        })
        .await?;
        settle_in_background(&self.inner.images).await;
        let mut msgs = Vec::new();
        for (id, line) in loaded {
            self.image_event("load", &id, &line);
            // docker prints these lines with and without --quiet.
            msgs.push(Ok(ProgressMessage {
                stream: Some(format!("{line}\n")),
                ..Default::default()
            }));
        }
        Ok(futures_util::stream::iter(msgs).boxed())
    }

    async fn image_save(&self, names: Vec<String>) -> Result<ByteStream, ApiError> {
        let images = self.inner.images.clone();
        let tmp_dir = self.inner.config.data_root.join("image").join("tmp");
        let path = tmp_dir.join(format!("save-{}.tar", crate::new_id()?));
        let p2 = path.clone();
        blocking(move || {
            let store = crate::store_read(&images);
            let file = std::fs::File::create(&p2)
                .map_err(|e| ApiError::Internal(format!("create {}: {e}", p2.display())))?;
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let r = store.save(&refs, file, &mut |_| {});
            if let Err(e) = r {
                let _ = std::fs::remove_file(&p2);
                let first = names.first().cloned().unwrap_or_default();
                return Err(store_err(&first, e));
            }
            Ok(())
        })
        .await?;
        let file = std::fs::File::open(&path)
            .map_err(|e| ApiError::Internal(format!("open {}: {e}", path.display())))?;
        // Unlinked at once: the open file is read to its end, and nothing is left behind.
        let _ = std::fs::remove_file(&path);
        let file = Arc::new(Mutex::new(file));
        let stream = futures_util::stream::unfold(file, |file| async move {
            let f2 = file.clone();
            let chunk = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; 256 * 1024];
                let n = f2
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .read(&mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>(buf)
            })
            .await;
            match chunk {
                Ok(Ok(b)) if b.is_empty() => None,
                Ok(Ok(b)) => Some((Ok(Bytes::from(b)), file)),
                Ok(Err(e)) => Some((
                    Err(ApiError::Internal(format!("read saved archive: {e}"))),
                    file,
                )),
                Err(e) => Some((Err(ApiError::Internal(e.to_string())), file)),
            }
        });
        Ok(stream.boxed())
    }

    async fn image_prune(&self, query: PruneQuery) -> Result<ImagePruneResponse, ApiError> {
        let all = query.filters.get("dangling").any(|v| v == "false");
        let images = self.inner.images.clone();
        let used = self.images_in_use();
        let f = query.filters;
        let report = blocking(move || {
            // until and label narrow what may go: the images they exclude are kept, as if used.
            let spared: HashSet<String> = {
                let store = crate::store_read(&images);
                let details = listed_images(&store)?;
                let until = f
                    .get("until")
                    .map(crate::until_seconds)
                    .collect::<Result<Vec<_>, _>>()?;
                details
                    .iter()
                    .filter(|d| {
                        let old_enough = until.iter().all(|u| d.created < *u);
                        let labelled = f
                            .labels_match("label", |k| d.labels.get(k).map(String::as_str))
                            && !(f.contains("label!")
                                && f.any_label_matches("label!", |k| {
                                    d.labels.get(k).map(String::as_str)
                                }));
                        !(old_enough && labelled)
                    })
                    .map(|d| d.summary.id.to_string())
                    .collect()
            };
            let in_use = |id: &image::metadata::ImageId| {
                let id = id.to_string();
                used.contains(&id) || spared.contains(&id)
            };
            lock(&images)
                .prune(all, &in_use)
                .map_err(|e| ApiError::Internal(e.to_string()))
        })
        .await?;
        let mut deleted: Vec<ImageDeleteResponseItem> = report
            .untagged
            .iter()
            .map(|r| ImageDeleteResponseItem {
                untagged: Some(r.familiar()),
                deleted: None,
            })
            .collect();
        deleted.extend(
            report
                .images_deleted
                .iter()
                .map(|id| ImageDeleteResponseItem {
                    untagged: None,
                    deleted: Some(id.to_string()),
                }),
        );
        Ok(ImagePruneResponse {
            images_deleted: Some(deleted),
            space_reclaimed: Some(report.gc.bytes_reclaimed as i64),
        })
    }
}

/// `platform=os/arch[/variant]` of create and push: the local image must be of that platform,
/// as dockerd requires (a 404, so the docker CLI pulls the right one).
pub(crate) fn check_platform(
    name: &str,
    wanted: &str,
    image: &serde_json::Value,
) -> Result<(), ApiError> {
    let mut parts = wanted.split('/');
    let os = parts.next().unwrap_or("");
    let arch = parts.next();
    let variant = parts.next();
    if os.is_empty() || parts.next().is_some() {
        return Err(ApiError::InvalidParameter(format!(
            "invalid platform {wanted:?}: expected os[/arch[/variant]]"
        )));
    }
    let field = |k: &str| image[k].as_str().unwrap_or("");
    let matches = field("os") == os
        && arch.is_none_or(|a| field("architecture") == a)
        && variant.is_none_or(|v| field("variant").is_empty() || field("variant") == v);
    if matches {
        return Ok(());
    }
    let have = [field("os"), field("architecture"), field("variant")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    Err(ApiError::NotFound(format!(
        "image with reference {name} was found but its platform ({have}) does not match the specified platform ({wanted})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_must_match_the_image() {
        let image = serde_json::json!({"os": "linux", "architecture": "amd64"});
        check_platform("busybox", "linux", &image).expect("os only");
        check_platform("busybox", "linux/amd64", &image).expect("same platform");
        let e = check_platform("busybox", "linux/arm64", &image).expect_err("other arch");
        assert!(e.to_string().contains("linux/amd64"), "{e}");
        assert!(check_platform("busybox", "", &image).is_err());
    }

    #[test]
    fn reference_filters_glob_like_dockerd() {
        let tags = vec![
            "busybox:latest".to_string(),
            "localhost:5000/app:v1".to_string(),
        ];
        assert!(reference_matches("busybox", &tags));
        assert!(reference_matches("busybox:latest", &tags));
        assert!(reference_matches("busy*", &tags));
        assert!(reference_matches("*:latest", &tags));
        assert!(reference_matches("localhost:5000/app", &tags));
        assert!(reference_matches("localhost:5000/*:v?", &tags));
        assert!(!reference_matches("busybox:1", &tags));
        assert!(!reference_matches(
            "*",
            &["localhost:5000/app:v1".to_string()]
        ));
        assert!(!reference_matches("box", &tags));
    }
}
