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
//! update.
//!
//! Durability without waiting for the disk: blobs are verified under
//! temporary names and snapshots unpacked into temporary directories; when
//! everything is verified, a marker listing them is written durably
//! (`pending`), then the blobs and snapshots (bottom up) get their names and
//! the image record is written. Nothing waits on the writeback of the
//! 500 MB a pull writes: the pages are in the page cache, which a kill -9
//! does not lose, and [`Settler::settle`](crate::store::Settler::settle)
//! (berthd runs it right after the pull, in the background) flushes them
//! and removes the marker. A crash of the machine before that leaves the
//! marker, and the next open hashes the blobs again and unpacks the layers
//! again from them, dropping only what cannot be made whole: a torn image is
//! never shown. A kill -9 or a crash before the names appear leaves
//! temporary snapshot directories, which the next open removes, and the
//! layers' downloads in `content/ingest/` (see
//! [`ContentStore::resumable_writer`]): the retry re-hashes each, uses a
//! complete one without a request and asks for the rest of a partial one
//! (`Range`), so what was fetched is not fetched again.
//!
//! Retries: a transient failure (see `retry`) of the manifest, config or a
//! layer request is retried up to [`RegistryOptions::max_retries`] times
//! with exponential backoff, reported as docker does ("Retrying in N
//! seconds").
//!
//! Resuming a layer cut off part-way: the retry asks for the rest
//! (`Range: bytes=N-`) and, when the registry answers 206 from byte N,
//! appends to the same temporary file with the same running hash, so the
//! digest still covers every byte of the file. The unpacker following that
//! file sees one uninterrupted stream and goes on unaffected. When the
//! registry answers 200 (it ignored the range), the download starts over
//! in a new temporary file with a new hash; the layer's feed is marked
//! restarted, the unpacker drops what it staged from the old file and,
//! once the new blob is verified, unpacks the layer again from it. A
//! partial blob is never named: a digest or size mismatch after a resume
//! fails the layer and stores nothing.

use super::client::{Access, RegistryClient, RegistryOptions, Session};
use super::{retry, RegistryError};
use crate::content::{BlobWriter, ContentError, ContentStore, Expected, VerifiedBlob};
use crate::digest::Digest;
use crate::manifest::{self, ManifestDocument, Platform};
use crate::metadata::{ImageRecord, LayerRecord};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::snapshot::{Snapshotter, StagedSnapshot};
use crate::store::{publish_staged, StagedLayer, Store};
use oci_spec::image::ImageConfiguration;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
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
    /// The download started over (the registry ignored a Range request):
    /// what was read from the first temporary file must be thrown away.
    restarted: bool,
    /// Where the verified blob can be read (its temporary name until the
    /// pull publishes it, or its name in the store).
    blob: Option<PathBuf>,
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
                restarted: false,
                blob: None,
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
                !s.restarted
                    && s.written <= pos
                    && matches!(s.phase, Phase::Pending | Phase::Streaming(_))
            });
            if g.restarted {
                return Err(io::Error::other(
                    "the download started over; the layer is unpacked again once it is verified",
                ));
            }
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

/// One attempt at a layer's bytes: from where `writer` stopped (a Range
/// request) or from the start, appending to `writer` (created on the
/// first answer, replaced when the registry starts over).
async fn fetch_layer_once(
    session: &Session,
    content: &ContentStore,
    layer: &LayerDesc,
    feed: &Arc<Feed>,
    tx: &mpsc::UnboundedSender<Progress>,
    writer: &mut Option<BlobWriter>,
    last: &mut u64,
) -> Result<(), RegistryError> {
    let id = layer.digest.short();
    let offset = writer.as_ref().map_or(0, |w| w.written());
    let (mut resp, continues) = session.get_blob_from(&layer.digest, offset).await?;
    if offset > 0 && !continues {
        tracing::info!(blob = %layer.digest, offset, "the registry ignored the Range request; downloading the layer again from the start");
        // The partial file is of no more use, here or to a later pull.
        if let Some(w) = writer.take() {
            w.discard();
        }
        *last = 0;
        feed.update(|s| {
            s.restarted = true;
            s.written = 0;
            if let Phase::Streaming(r) = &mut s.phase {
                *r = None;
            }
        });
    }
    let w = match writer {
        Some(w) => w,
        None => {
            let w = content.writer(Expected {
                digest: Some(layer.digest.clone()),
                size: Some(layer.size),
            })?;
            let reader = w.reopen()?;
            feed.update(|s| {
                // After a restart the unpacker reads the verified blob.
                let follow = (!s.restarted).then_some(reader);
                s.phase = Phase::Streaming(follow);
            });
            writer.insert(w)
        }
    };
    let op = format!("download layer {}", layer.digest);
    while let Some(chunk) = resp.chunk().await.map_err(|source| RegistryError::Http {
        registry: session.registry().to_string(),
        op: op.clone(),
        source,
    })? {
        // A page-cache write of one chunk: short enough not to need a
        // blocking thread.
        w.write_all(&chunk).map_err(content_err)?;
        let n = w.written();
        feed.update(|s| s.written = n);
        if n - *last >= REPORT_EVERY || n == layer.size {
            *last = n;
            send(tx, bytes_event(id, "Downloading", n, layer.size));
        }
    }
    Ok(())
}

async fn download_layer(
    session: Session,
    options: Arc<RegistryOptions>,
    content: ContentStore,
    layer: LayerDesc,
    feed: Arc<Feed>,
    slots: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Progress>,
) -> Result<VerifiedBlob, RegistryError> {
    let guard = FeedGuard(feed.clone());
    let id = layer.digest.short().to_string();
    let result: Result<VerifiedBlob, RegistryError> = async {
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
        // What an earlier pull (killed, or failed elsewhere) left of this
        // blob: re-hashed, then resumed from its end or, when complete
        // and matching its digest, used without a request.
        let c = content.clone();
        let (d, size) = (layer.digest.clone(), layer.size);
        let w = tokio::task::spawn_blocking(move || c.resumable_writer(&d, size))
            .await
            .map_err(join_err("resume a layer download"))??;
        let resumed = w.resumed();
        if resumed > 0 {
            tracing::info!(blob = %layer.digest, bytes = resumed, "resuming what an earlier pull downloaded");
        }
        let reader = w.reopen()?;
        feed.update(|s| {
            s.written = resumed;
            s.phase = Phase::Streaming(Some(reader));
        });
        let mut writer = Some(w);
        let mut last = resumed;
        let mut tries = 0u32;
        // A complete ingest file needs no request.
        if resumed < layer.size {
            loop {
                match fetch_layer_once(&session, &content, &layer, &feed, &tx, &mut writer, &mut last)
                    .await
                {
                    Ok(()) => break,
                    // Not `with_retries`: each attempt goes on from what
                    // the one before wrote (`writer`), which a closure
                    // returning a new future cannot borrow.
                    Err(e) => match retry::next_wait(&options, retry::is_transient, &mut tries, &e) {
                        Some(wait) => {
                            send(&tx, Progress::message(&id, retry::message(wait)));
                            tokio::time::sleep(wait).await;
                        }
                        None => return Err(e),
                    },
                }
            }
        }
        let writer = writer.ok_or_else(|| RegistryError::Task {
            op: format!("download layer {}", layer.digest),
            reason: "the download ended without a response".into(),
        })?;
        send(&tx, Progress::message(&id, "Verifying Checksum"));
        // The hash ran as the bytes arrived: verifying is a comparison, no
        // I/O, so no blocking thread (whose result would outlive an abort).
        let verified = writer.verify()?;
        let path = verified.path().to_path_buf();
        feed.update(|s| {
            s.blob = Some(path);
            s.phase = Phase::Committed;
        });
        send(&tx, Progress::message(&id, "Download complete"));
        Ok(verified)
    }
    .await;
    if let Err(e) = &result {
        feed.fail(e.to_string());
    }
    drop(guard);
    result
}

/// The config's bytes, and the verified blob to publish when it was not in
/// the store yet.
async fn fetch_config(
    session: Session,
    options: Arc<RegistryOptions>,
    content: ContentStore,
    digest: Digest,
    tx: mpsc::UnboundedSender<Progress>,
) -> Result<(Vec<u8>, Option<VerifiedBlob>), RegistryError> {
    let op = format!("fetch image config {digest}");
    if content.contains(&digest) {
        let c = content.clone();
        let d = digest.clone();
        return Ok((
            tokio::task::spawn_blocking(move || c.read(&d))
                .await
                .map_err(join_err(&op))??,
            None,
        ));
    }
    let bytes = retry::with_retries(
        &options,
        retry::is_transient,
        |m| send(&tx, Progress::message(digest.short(), m)),
        || async {
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
                        what: op.clone(),
                        limit: MAX_CONFIG,
                    });
                }
            }
            Ok(bytes)
        },
    )
    .await?;
    let actual = Digest::of_bytes(&bytes);
    if actual != digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("image config from {}", session.repository()),
            expected: digest,
            actual,
        });
    }
    // A config is small (bounded above): written from this task, so that
    // an abort of the pull drops (and removes) it at once.
    let mut w = content.writer(Expected {
        digest: Some(digest.clone()),
        size: Some(bytes.len() as u64),
    })?;
    w.write_all(&bytes).map_err(content_err)?;
    let verified = w.verify()?;
    Ok((bytes, Some(verified)))
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
    // The verified blob's path, and whether the download started over.
    let wait_verified = || {
        let g = feed.wait_while(|s| !matches!(s.phase, Phase::Committed | Phase::Failed(_)));
        match &g.phase {
            Phase::Failed(why) => Err(failed(why)),
            _ => Ok((
                g.blob
                    .clone()
                    .unwrap_or_else(|| content.path(&layer.digest)),
                g.restarted,
            )),
        }
    };
    let open_verified = |path: &std::path::Path| -> Result<File, RegistryError> {
        File::open(path)
            .map_err(|e| failed(&format!("open the verified blob {}: {e}", path.display())))
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
    let size = layer.size;
    let unpack = |reader: Box<dyn Read>| {
        let mut last = 0u64;
        snapshots.stage_unsynced(parent, diff_id, reader, &mut |n| {
            if n - last >= REPORT_EVERY || n == size {
                last = n;
                send(tx, bytes_event(&id, "Extracting", n, size));
            }
        })
    };
    let from_verified = || -> Result<Option<StagedSnapshot>, RegistryError> {
        let (path, _) = wait_verified()?;
        Ok(unpack(Box::new(open_verified(&path)?))?)
    };
    let Some(file) = follow else {
        // Already in the store, the same blob elsewhere in this image
        // (empty layers repeat) took the growing file, or the download
        // started over: read the blob once it is verified.
        return from_verified();
    };
    let staged = unpack(Box::new(FollowReader {
        file,
        pos: 0,
        feed: feed.clone(),
    }));
    let staged = match staged {
        Ok(s) => s,
        Err(e) => {
            // Bytes that do not unpack may be bytes that will not verify
            // either: the download's verdict explains more (a digest
            // mismatch rather than a broken tar header), so wait for it.
            return match wait_verified() {
                Err(download) => Err(download),
                Ok((_, true)) => from_verified(),
                Ok((_, false)) => Err(e.into()),
            };
        }
    };
    // Dropping `staged` on failure removes what was unpacked.
    let (_, restarted) = wait_verified()?;
    if restarted {
        // Made (at least partly) from the abandoned first download.
        drop(staged);
        return from_verified();
    }
    Ok(staged)
}

/// One layer's staging result, waiting for its turn to be named.
type Slot = Option<Result<Option<StagedSnapshot>, RegistryError>>;

/// A layer unpacked for this pull, its snapshot staged (to be named after
/// the filesystem sync) or `None` when it existed already.
type Unpacked = StagedLayer;

/// Unpacks the layers as their bytes arrive, several at once (unpacking
/// one reads nothing of another), returning them bottom up; the pull names
/// the staged snapshots in that order once everything is synced, so a
/// visible snapshot's parent is always visible.
fn unpack_chain(
    snapshots: Snapshotter,
    content: ContentStore,
    layers: Vec<(LayerDesc, Digest)>,
    feeds: Vec<Arc<Feed>>,
    concurrent_downloads: usize,
    tx: mpsc::UnboundedSender<Progress>,
) -> Result<Vec<Unpacked>, RegistryError> {
    let n = layers.len();
    let diff_ids: Vec<Digest> = layers.iter().map(|(_, d)| d.clone()).collect();
    let chains = crate::snapshot::chain_ids(&diff_ids);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let slots: Mutex<Vec<Slot>> = Mutex::new((0..n).map(|_| None).collect());
    let ready = Condvar::new();
    // Workers take layers bottom first. One worker per download in flight
    // (at least one per core): the downloads share the bandwidth, so all
    // the layers in flight arrive together, and with fewer workers the
    // last ones, downloaded, waited for a worker while a core sat idle
    // with a single layer left to unpack. Unpacking is mostly inflating
    // and hashing, so extra workers on few cores only share them.
    let cores = std::thread::available_parallelism().map_or(2, |p| p.get());
    let workers = concurrent_downloads.max(cores).clamp(1, 8).min(n.max(1));
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
                let (staged, unpacked_size) = match taken {
                    Some(Ok(Some(staged))) => {
                        let size = staged.size();
                        (Some(staged), size)
                    }
                    Some(Ok(None)) => (None, snapshots.info(&chains[i])?.size),
                    Some(Err(e)) => return Err(e),
                    None => unreachable!("the wait ends only on a filled slot"),
                };
                send(
                    &tx,
                    Progress::message(layer.digest.short(), "Pull complete"),
                );
                out.push((
                    LayerRecord {
                        blob: layer.digest.clone(),
                        media_type: layer.media_type.clone(),
                        size: layer.size,
                        diff_id: diff_id.clone(),
                        chain_id: chains[i].clone(),
                        unpacked_size,
                    },
                    staged,
                ));
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

/// An image whose blobs and snapshots are named in the store (durable, or
/// covered by a pending-names marker), but not yet visible:
/// [`Store::commit_pulled`] makes it so. Between the two, a garbage
/// collection would take its blobs and snapshots for debris.
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
        let options = Arc::new(client.options().clone());
        // A registry that refuses the first connection is not there (or
        // not yet): that fails at once, as docker's does; one that answers
        // "try later" or times out is retried.
        let session = retry::with_retries(
            &options,
            retry::is_transient_at_start,
            |m| progress(Progress::message("", m)),
            || client.session(&reference, Access::Pull, &[]),
        )
        .await?;
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

        let (bytes, media_type, top_digest) = retry::with_retries(
            &options,
            retry::is_transient,
            |m| progress(Progress::message(&tag_or_digest, m)),
            || session.get_manifest(&tag_or_digest),
        )
        .await?;
        // Schema 1 is refused naming the image, not only a digest.
        let schema1 = |served: Option<&str>| {
            let reference = reference.to_string();
            let media_type = served
                .filter(|m| m.contains(".v1+"))
                .unwrap_or("recognised by its schemaVersion 1")
                .to_string();
            move |e: manifest::ManifestError| match e {
                manifest::ManifestError::Schema1(_) => RegistryError::Schema1 {
                    reference,
                    media_type,
                },
                other => other.into(),
            }
        };
        let doc = ManifestDocument::parse(&bytes, media_type.as_deref(), Some(&top_digest))
            .map_err(schema1(media_type.as_deref()))?;
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
                let d = d.to_string();
                let (b, mt, got) = retry::with_retries(
                    &options,
                    retry::is_transient,
                    |m| progress(Progress::message(&tag_or_digest, m)),
                    || session.get_manifest(&d),
                )
                .await?;
                let mt = mt
                    .filter(|m| m != "application/json")
                    .unwrap_or_else(|| desc.media_type().to_string());
                match ManifestDocument::parse(&b, Some(&mt), Some(&got))
                    .map_err(schema1(Some(&mt)))?
                {
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
                let path = self.content().path(&layer.digest);
                feed.update(|s| {
                    s.blob = Some(path);
                    s.phase = Phase::Committed;
                });
                progress(Progress::message(id, "Already exists"));
                continue;
            }
            progress(Progress::message(id, "Pulling fs layer"));
            downloads.spawn(download_layer(
                session.clone(),
                options.clone(),
                self.content().clone(),
                layer.clone(),
                feed.clone(),
                slots.clone(),
                tx.clone(),
            ));
        }
        let mut config_task = tokio::spawn(fetch_config(
            session.clone(),
            options.clone(),
            self.content().clone(),
            config_digest.clone(),
            tx.clone(),
        ));
        let mut config_pending = true;
        let mut config: Option<ImageConfiguration> = None;
        let mut unpacker: JoinSet<Result<Vec<Unpacked>, RegistryError>> = JoinSet::new();
        let mut records: Option<Vec<Unpacked>> = None;
        // Verified blobs under their temporary names, published after the sync.
        let mut verified: Vec<VerifiedBlob> = Vec::new();
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
                        .and_then(|(raw, blob)| {
                            verified.extend(blob);
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
                            let downloads = options.max_concurrent_downloads.max(1);
                            if let Some(tx) = unpacker_tx.take() {
                                unpacker.spawn_blocking(move || unpack_chain(snapshots, content, plan, feeds, downloads, tx));
                            }
                        }
                        Err(e) => failure = Some(e),
                    }
                }
                Some(r) = downloads.join_next() => {
                    match r {
                        Ok(Ok(blob)) => verified.push(blob),
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
        let (config, unpacked) = match (config, records) {
            (Some(c), Some(l)) => (c, l),
            _ => return Err(bad("the pull ended without its config or layers".into())),
        };
        let content = self.content().clone();
        let snapshots = self.snapshotter().clone();
        let pending = self.pending().clone();
        let layers = tokio::task::spawn_blocking(move || {
            publish_staged(&content, &snapshots, &pending, verified, unpacked)
        })
        .await
        .map_err(join_err("sync and name the pulled blobs and snapshots"))??;

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
