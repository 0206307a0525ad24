//! Pull: manifest (negotiated, platform chosen from an index), then the
//! config and every missing layer downloaded in parallel, each layer
//! unpacked while it downloads as soon as its parent's snapshot is ready.
//!
//! How "unpack while downloading" keeps the chain order: each download
//! writes into a content-store [`BlobWriter`](crate::content::BlobWriter)
//! and publishes how many bytes are on disk through a `Feed`; a few
//! blocking workers take the layers bottom first and unpack each from a
//! reader that follows the growing temporary file (waiting on the feed when
//! it catches up with the download) into a staged, unnamed snapshot; the
//! snapshots are then named strictly bottom up, each once its parent is.
//! Unpacking a layer reads nothing of its parent's tree (whiteouts stay in
//! the layer, as overlay wants them), so only the naming needs the chain
//! order; doing the unpacking itself in order would leave a core idle
//! while the other decompresses.
//!
//! What makes it safe: the unpacker checks each layer's diff ID (from the
//! verified config), and a snapshot whose blob then fails its digest check
//! is removed; the image record is written last, in one atomic metadata
//! update. A kill -9 leaves committed blobs and snapshots (reused by the
//! retry) and temporary files that the next open removes.

use super::client::{Access, RegistryClient, Session};
use super::RegistryError;
use crate::content::{ContentError, ContentStore, Expected};
use crate::digest::Digest;
use crate::manifest::{self, ManifestDocument, Platform};
use crate::metadata::{ImageRecord, LayerRecord};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::snapshot::{Snapshotter, StagedSnapshot};
use crate::store::Store;
use oci_spec::image::ImageConfiguration;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// A config larger than this is refused.
const MAX_CONFIG: usize = 8 << 20;
/// Progress is reported at most once per this many bytes.
const REPORT_EVERY: u64 = 512 << 10;

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The image as stored.
    pub record: ImageRecord,
    /// The reference pulled (normalised, with `:latest` added if bare).
    pub reference: Reference,
    /// The digest the tag pointed at (the index's, for multi-platform images).
    pub digest: Digest,
    /// False when the tag already named this image ("Image is up to date").
    pub updated: bool,
}

/// Where one layer's download stands, shared with the unpacker.
enum Phase {
    /// Not started (waiting for a download slot).
    Pending,
    /// Bytes are arriving in a temporary file; the unpacker may take the
    /// reader once.
    Streaming(Option<File>),
    /// The blob is in the content store, verified.
    Committed,
    /// The download failed or was cancelled.
    Failed(String),
}

struct FeedState {
    phase: Phase,
    written: u64,
}

/// One layer's download state and a condition variable to wait on it.
struct Feed {
    state: Mutex<FeedState>,
    changed: Condvar,
}

impl Feed {
    fn new() -> Arc<Self> {
        Arc::new(Feed {
            state: Mutex::new(FeedState {
                phase: Phase::Pending,
                written: 0,
            }),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        // A poisoned lock only means a thread panicked while holding it; the
        // state itself (a phase and a counter) is still coherent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut FeedState)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    fn fail(&self, why: String) {
        self.update(|s| {
            if !matches!(s.phase, Phase::Committed) {
                s.phase = Phase::Failed(why)
            }
        });
    }

    fn wait_while(&self, mut cond: impl FnMut(&FeedState) -> bool) -> MutexGuard<'_, FeedState> {
        let mut g = self.lock();
        while cond(&g) {
            g = self.changed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g
    }
}

/// Marks a feed failed if its download task ends without finishing it
/// (an error, or an abort that drops the task).
struct FeedGuard(Arc<Feed>);

impl Drop for FeedGuard {
    fn drop(&mut self) {
        self.0.fail("the download was cancelled".into());
    }
}

/// Reads a blob's temporary file as it grows.
struct FollowReader {
    file: File,
    pos: u64,
    feed: Arc<Feed>,
}

impl Read for FollowReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                self.pos += n as u64;
                return Ok(n);
            }
            let pos = self.pos;
            let g = self.feed.wait_while(|s| {
                s.written <= pos && matches!(s.phase, Phase::Pending | Phase::Streaming(_))
            });
            match &g.phase {
                Phase::Failed(why) => return Err(io::Error::other(why.clone())),
                Phase::Committed if g.written <= pos => return Ok(0),
                _ => {}
            }
        }
    }
}

/// One layer to pull.
#[derive(Clone)]
struct LayerDesc {
    digest: Digest,
    size: u64,
    media_type: String,
}

fn send(tx: &mpsc::UnboundedSender<Progress>, p: Progress) {
    // The receiver only goes away when the pull is over.
    let _ = tx.send(p);
}

fn bytes_event(id: &str, status: &str, current: u64, total: u64) -> Progress {
    Progress {
        id: id.to_string(),
        status: status.to_string(),
        current,
        total: Some(total),
    }
}

fn content_err(e: io::Error) -> RegistryError {
    match e.into_inner().map(|inner| inner.downcast::<ContentError>()) {
        Some(Ok(c)) => (*c).into(),
        Some(Err(other)) => RegistryError::Task {
            op: "write a blob".into(),
            reason: other.to_string(),
        },
        None => RegistryError::Task {
            op: "write a blob".into(),
            reason: "unknown I/O error".into(),
        },
    }
}

fn join_err(op: &str) -> impl FnOnce(tokio::task::JoinError) -> RegistryError + '_ {
    move |e| RegistryError::Task {
        op: op.to_string(),
        reason: e.to_string(),
    }
}

async fn download_layer(
    session: Session,
    content: ContentStore,
    layer: LayerDesc,
    feed: Arc<Feed>,
    slots: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Progress>,
) -> Result<(), RegistryError> {
    let guard = FeedGuard(feed.clone());
    let id = layer.digest.short().to_string();
    let result: Result<(), RegistryError> = async {
        let _slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                send(&tx, Progress::message(&id, "Waiting"));
                slots
                    .acquire_owned()
                    .await
                    .map_err(|e| RegistryError::Task {
                        op: format!("download layer {}", layer.digest),
                        reason: e.to_string(),
                    })?
            }
        };
        let mut resp = session.get_blob(&layer.digest).await?;
        let mut writer = content.writer(Expected {
            digest: Some(layer.digest.clone()),
            size: Some(layer.size),
        })?;
        let reader = writer.reopen()?;
        feed.update(|s| s.phase = Phase::Streaming(Some(reader)));
        let op = format!("download layer {}", layer.digest);
        let mut last = 0u64;
        while let Some(chunk) = resp.chunk().await.map_err(|source| RegistryError::Http {
            registry: session.registry().to_string(),
            op: op.clone(),
            source,
        })? {
            // A page-cache write of one chunk: short enough not to need a
            // blocking thread; the fsync at commit gets one.
            writer.write_all(&chunk).map_err(content_err)?;
            let n = writer.written();
            feed.update(|s| s.written = n);
            if n - last >= REPORT_EVERY || n == layer.size {
                last = n;
                send(&tx, bytes_event(&id, "Downloading", n, layer.size));
            }
        }
        send(&tx, Progress::message(&id, "Verifying Checksum"));
        tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(join_err("verify and store a layer"))??;
        feed.update(|s| s.phase = Phase::Committed);
        send(&tx, Progress::message(&id, "Download complete"));
        Ok(())
    }
    .await;
    if let Err(e) = &result {
        feed.fail(e.to_string());
    }
    drop(guard);
    result
}

async fn fetch_config(
    session: Session,
    content: ContentStore,
    digest: Digest,
) -> Result<Vec<u8>, RegistryError> {
    let op = format!("fetch image config {digest}");
    if content.contains(&digest) {
        let c = content.clone();
        let d = digest.clone();
        return Ok(tokio::task::spawn_blocking(move || c.read(&d))
            .await
            .map_err(join_err(&op))??);
    }
    let mut resp = session.get_blob(&digest).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| RegistryError::Http {
        registry: session.registry().to_string(),
        op: op.clone(),
        source,
    })? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_CONFIG {
            return Err(RegistryError::TooLarge {
                what: op,
                limit: MAX_CONFIG,
            });
        }
    }
    let actual = Digest::of_bytes(&bytes);
    if actual != digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("image config from {}", session.repository()),
            expected: digest,
            actual,
        });
    }
    let d2 = digest.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        content
            .write_bytes(
                &bytes,
                Expected {
                    digest: Some(d2),
                    size: None,
                },
            )
            .map(|_| bytes)
    })
    .await
    .map_err(join_err(&op))??;
    Ok(bytes)
}

/// Unpacks one layer into a staged (unnamed) snapshot as its bytes become
/// available; `None` when its snapshot exists already. Waits for the
/// layer's blob to be verified before answering, so nothing made from
/// bytes that fail their digest check survives.
fn stage_layer(
    snapshots: &Snapshotter,
    content: &ContentStore,
    layer: &LayerDesc,
    parent: Option<&Digest>,
    diff_id: &Digest,
    feed: &Arc<Feed>,
    tx: &mpsc::UnboundedSender<Progress>,
) -> Result<Option<StagedSnapshot>, RegistryError> {
    let id = layer.digest.short().to_string();
    let failed = |why: &str| RegistryError::Task {
        op: format!("unpack layer {}", layer.digest),
        reason: why.to_string(),
    };
    let wait_verified = || {
        let g = feed.wait_while(|s| !matches!(s.phase, Phase::Committed | Phase::Failed(_)));
        match &g.phase {
            Phase::Failed(why) => Err(failed(why)),
            _ => Ok(()),
        }
    };
    let chain = match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of_bytes(format!("{p} {diff_id}").as_bytes()),
    };
    if snapshots.exists(&chain) {
        wait_verified()?;
        return Ok(None);
    }
    let mut g = feed.wait_while(|s| matches!(s.phase, Phase::Pending));
    let follow = match &mut g.phase {
        Phase::Streaming(file) => file.take(),
        _ => None,
    };
    drop(g);
    let reader: Box<dyn Read> = match follow {
        Some(file) => Box::new(FollowReader {
            file,
            pos: 0,
            feed: feed.clone(),
        }),
        // Already in the store, or the same blob elsewhere in this image
        // (empty layers repeat) took the growing file: read the blob once
        // it is complete.
        None => {
            wait_verified()?;
            Box::new(content.open_blob(&layer.digest)?)
        }
    };
    let mut last = 0u64;
    let size = layer.size;
    let staged = snapshots.stage(parent, diff_id, reader, &mut |n| {
        if n - last >= REPORT_EVERY || n == size {
            last = n;
            send(tx, bytes_event(&id, "Extracting", n, size));
        }
    });
    let staged = match staged {
        Ok(s) => s,
        Err(e) => {
            // Prefer the download's own error when it caused this one.
            if let Phase::Failed(why) = &feed.lock().phase {
                return Err(failed(why));
            }
            return Err(e.into());
        }
    };
    // Dropping `staged` on failure removes what was unpacked.
    wait_verified()?;
    Ok(staged)
}

/// One layer's staging result, waiting for its turn to be named.
type Slot = Option<Result<Option<StagedSnapshot>, RegistryError>>;

/// Unpacks the layers as their bytes arrive, several at once (unpacking
/// one reads nothing of another), and names the snapshots strictly bottom
/// up, so a visible snapshot's parent is always visible.
fn unpack_chain(
    snapshots: Snapshotter,
    content: ContentStore,
    layers: Vec<(LayerDesc, Digest)>,
    feeds: Vec<Arc<Feed>>,
    tx: mpsc::UnboundedSender<Progress>,
) -> Result<Vec<LayerRecord>, RegistryError> {
    let n = layers.len();
    let diff_ids: Vec<Digest> = layers.iter().map(|(_, d)| d.clone()).collect();
    let chains = crate::snapshot::chain_ids(&diff_ids);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let slots: Mutex<Vec<Slot>> = Mutex::new((0..n).map(|_| None).collect());
    let ready = Condvar::new();
    // Workers take layers bottom first, so the next layer to be named is
    // always being worked on.
    let workers = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(2)
        .clamp(1, 4)
        .min(n.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let parent = if i == 0 { None } else { chains.get(i - 1) };
                let r = stage_layer(
                    &snapshots,
                    &content,
                    &layers[i].0,
                    parent,
                    &layers[i].1,
                    &feeds[i],
                    &tx,
                );
                slots.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                ready.notify_all();
            });
        }
        let result = (|| {
            let mut out = Vec::with_capacity(n);
            for (i, (layer, diff_id)) in layers.iter().enumerate() {
                let taken = {
                    let mut g = slots.lock().unwrap_or_else(|e| e.into_inner());
                    while g[i].is_none() {
                        g = ready.wait(g).unwrap_or_else(|e| e.into_inner());
                    }
                    g[i].take()
                };
                let chain = match taken {
                    Some(Ok(Some(staged))) => snapshots.commit_staged(staged)?,
                    Some(Ok(None)) => chains[i].clone(),
                    Some(Err(e)) => return Err(e),
                    None => unreachable!("the wait ends only on a filled slot"),
                };
                send(
                    &tx,
                    Progress::message(layer.digest.short(), "Pull complete"),
                );
                let unpacked_size = snapshots.info(&chain)?.size;
                out.push(LayerRecord {
                    blob: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                    size: layer.size,
                    diff_id: diff_id.clone(),
                    chain_id: chain,
                    unpacked_size,
                });
            }
            Ok(out)
        })();
        if result.is_err() {
            // Workers blocked on a download must wake up to end the scope.
            stop.store(true, Ordering::Relaxed);
            for f in &feeds {
                f.fail("cancelled: another layer failed".into());
            }
        }
        result
    })
}

/// An image whose blobs and snapshots are in the store, durable, but not
/// yet visible: [`Store::commit_pulled`] makes it so. Between the two, a
/// garbage collection would take its blobs and snapshots for debris.
#[derive(Debug)]
pub struct PulledImage {
    reference: Reference,
    top_digest: Digest,
    config_digest: Digest,
    config: ImageConfiguration,
    config_media_type: String,
    manifest: (Vec<u8>, Digest, String),
    layers: Vec<LayerRecord>,
}

impl Store {
    /// Pulls `reference` (`:latest` added if it names no tag or digest)
    /// into the store, as `docker pull` does, choosing `platform` (default:
    /// the store's) from a multi-platform index. Progress events are
    /// docker's ("Pulling fs layer", "Downloading", "Extracting", …, then
    /// "Digest: …" and "Status: …"). [`Store::download`] then
    /// [`Store::commit_pulled`], for callers that share the store.
    pub async fn pull(
        &mut self,
        client: &RegistryClient,
        reference: &Reference,
        platform: Option<&Platform>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PullOutcome, RegistryError> {
        let pulled = self.download(client, reference, platform, progress).await?;
        self.commit_pulled(pulled, progress)
    }

    /// The network half of a pull: manifest, config and layers fetched,
    /// verified and unpacked, needing only `&self` so a daemon can run
    /// several at once (under a shared lock) and take the store exclusively
    /// only for [`Store::commit_pulled`].
    pub async fn download(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        platform: Option<&Platform>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PulledImage, RegistryError> {
        let reference = reference.clone().with_default_tag();
        let platform = platform.cloned().unwrap_or_else(|| self.platform().clone());
        let session = client.session(&reference, Access::Pull, &[]).await?;
        let tag_or_digest = match (reference.tag(), reference.digest()) {
            (_, Some(d)) => d.to_string(),
            (Some(t), None) => t.to_string(),
            (None, None) => crate::reference::DEFAULT_TAG.to_string(),
        };
        progress(Progress::message(
            &tag_or_digest,
            format!("Pulling from {}", reference.path()),
        ));
        let bad = |reason: String| RegistryError::BadImage {
            reference: reference.to_string(),
            reason,
        };

        let (bytes, media_type, top_digest) = session.get_manifest(&tag_or_digest).await?;
        let doc = ManifestDocument::parse(&bytes, media_type.as_deref(), Some(&top_digest))?;
        let (manifest_bytes, manifest_digest, manifest_media_type, image_manifest) = match doc {
            ManifestDocument::Image(m) => {
                let mt = media_type
                    .clone()
                    .filter(|m| m != "application/json")
                    .or_else(|| m.media_type().as_ref().map(|t| t.to_string()))
                    .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
                (bytes, top_digest.clone(), mt, m)
            }
            ManifestDocument::Index(index) => {
                let desc = manifest::select_platform(&index, &platform, Some(&top_digest))?;
                let d = manifest::digest_of(desc.digest(), "index entry")?;
                let (b, mt, got) = session.get_manifest(&d.to_string()).await?;
                let mt = mt
                    .filter(|m| m != "application/json")
                    .unwrap_or_else(|| desc.media_type().to_string());
                match ManifestDocument::parse(&b, Some(&mt), Some(&got))? {
                    ManifestDocument::Image(m) => (b, got, mt, m),
                    ManifestDocument::Index(_) => {
                        return Err(bad(format!(
                            "the index entry for {platform} is itself an index; nested indexes are not supported"
                        )))
                    }
                }
            }
        };
        let config_digest =
            manifest::digest_of(image_manifest.config().digest(), "manifest config")?;
        let config_media_type = image_manifest.config().media_type().to_string();
        let layers: Vec<LayerDesc> = image_manifest
            .layers()
            .iter()
            .map(|l| {
                Ok(LayerDesc {
                    digest: manifest::digest_of(l.digest(), "manifest layer")?,
                    size: l.size(),
                    media_type: l.media_type().to_string(),
                })
            })
            .collect::<Result<_, RegistryError>>()?;

        let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
        let slots = Arc::new(Semaphore::new(
            client.options().max_concurrent_downloads.max(1),
        ));
        // One feed (and one download) per distinct blob: images repeat
        // their empty layers.
        let mut feeds: Vec<Arc<Feed>> = Vec::with_capacity(layers.len());
        let mut fresh = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            match layers[..i].iter().position(|l| l.digest == layer.digest) {
                Some(j) => {
                    let f = feeds[j].clone();
                    feeds.push(f);
                    fresh.push(false);
                }
                None => {
                    feeds.push(Feed::new());
                    fresh.push(true);
                }
            }
        }
        let mut downloads = JoinSet::new();
        for ((layer, feed), fresh) in layers.iter().zip(&feeds).zip(fresh) {
            if !fresh {
                continue;
            }
            let id = layer.digest.short().to_string();
            if self.content().contains(&layer.digest) {
                feed.update(|s| s.phase = Phase::Committed);
                progress(Progress::message(id, "Already exists"));
                continue;
            }
            progress(Progress::message(id, "Pulling fs layer"));
            downloads.spawn(download_layer(
                session.clone(),
                self.content().clone(),
                layer.clone(),
                feed.clone(),
                slots.clone(),
                tx.clone(),
            ));
        }
        let mut config_task = tokio::spawn(fetch_config(
            session.clone(),
            self.content().clone(),
            config_digest.clone(),
        ));
        let mut config_pending = true;
        let mut config: Option<ImageConfiguration> = None;
        let mut unpacker: JoinSet<Result<Vec<LayerRecord>, RegistryError>> = JoinSet::new();
        let mut records: Option<Vec<LayerRecord>> = None;
        let mut first_err: Option<RegistryError> = None;
        let mut unpacker_tx = Some(tx);

        loop {
            let mut failure: Option<RegistryError> = None;
            tokio::select! {
                Some(ev) = rx.recv() => progress(ev),
                r = &mut config_task, if config_pending => {
                    config_pending = false;
                    let started = r
                        .map_err(join_err("fetch the image config"))
                        .and_then(|r| r)
                        .and_then(|raw| {
                            let c = manifest::parse_config(&raw, &config_digest)?;
                            let diff_ids = manifest::diff_ids(&c, &config_digest)?;
                            if diff_ids.len() != layers.len() {
                                return Err(bad(format!(
                                    "the config lists {} layers but the manifest {}",
                                    diff_ids.len(),
                                    layers.len()
                                )));
                            }
                            Ok((c, diff_ids))
                        });
                    match started {
                        Ok((c, diff_ids)) => {
                            config = Some(c);
                            let snapshots = self.snapshotter().clone();
                            let content = self.content().clone();
                            let plan: Vec<_> = layers.iter().cloned().zip(diff_ids).collect();
                            let feeds = feeds.clone();
                            if let Some(tx) = unpacker_tx.take() {
                                unpacker.spawn_blocking(move || unpack_chain(snapshots, content, plan, feeds, tx));
                            }
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                Some(r) = downloads.join_next() => {
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failure = Some(e),
                        Err(e) if e.is_cancelled() => {}
                        Err(e) => failure = Some(join_err("download a layer")(e)),
                    }
                }
                Some(r) = unpacker.join_next() => {
                    match r.map_err(join_err("unpack layers")).and_then(|r| r) {
                        Ok(recs) => records = Some(recs),
                        Err(e) => failure = Some(e),
                    }
                }
                else => break,
            }
            if let Some(e) = failure {
                if first_err.is_none() {
                    first_err = Some(e);
                    downloads.abort_all();
                    if config_pending {
                        config_task.abort();
                    }
                    for f in &feeds {
                        f.fail("cancelled: another part of the pull failed".into());
                    }
                    // The unpacker never starts now; its sender must go so
                    // the progress channel can close.
                    unpacker_tx = None;
                }
            }
        }
        drop(unpacker_tx);
        while let Ok(ev) = rx.try_recv() {
            progress(ev);
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let (config, layers) = match (config, records) {
            (Some(c), Some(l)) => (c, l),
            _ => return Err(bad("the pull ended without its config or layers".into())),
        };

        Ok(PulledImage {
            reference,
            top_digest,
            config_digest,
            config,
            config_media_type,
            manifest: (manifest_bytes, manifest_digest, manifest_media_type),
            layers,
        })
    }

    /// Makes a downloaded image visible with its tag and repo digest, in
    /// one metadata write, and reports docker's closing lines.
    pub fn commit_pulled(
        &mut self,
        pulled: PulledImage,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PullOutcome, RegistryError> {
        let PulledImage {
            reference,
            top_digest,
            config_digest,
            config,
            config_media_type,
            manifest,
            layers,
        } = pulled;
        // A collection between download and commit would have taken them.
        for l in &layers {
            if !self.content().contains(&l.blob) || !self.snapshotter().exists(&l.chain_id) {
                return Err(RegistryError::BadImage {
                    reference: reference.to_string(),
                    reason: format!(
                        "layer {} was removed (garbage collection?) between download and commit; pull again",
                        l.blob
                    ),
                });
            }
        }
        let tags: Vec<Reference> = match reference.tag() {
            Some(_) if reference.digest().is_none() => vec![reference.clone()],
            _ => Vec::new(),
        };
        let before = tags
            .first()
            .and_then(|t| self.resolve(&t.to_string()).ok())
            .map(|(id, _)| id);
        let repo_digest = format!("{}@{top_digest}", reference.name());
        let config_size = self.content().size(&config_digest)?;
        let record = self.commit_image_with(
            &config_digest,
            config_size,
            &config,
            &config_media_type,
            Some(&manifest),
            layers,
            &tags,
            &[repo_digest],
            None,
            &mut |p| progress(p),
        )?;
        let updated = before.as_ref() != Some(&record.id);
        progress(Progress::message("", format!("Digest: {top_digest}")));
        progress(Progress::message(
            "",
            if updated {
                format!(
                    "Status: Downloaded newer image for {}",
                    reference.familiar()
                )
            } else {
                format!("Status: Image is up to date for {}", reference.familiar())
            },
        ));
        Ok(PullOutcome {
            record,
            reference,
            digest: top_digest,
            updated,
        })
    }
}
