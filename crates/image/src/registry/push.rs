//! Push: each layer checked (`HEAD`), mounted from another repository of
//! the same registry when the image is known there, or uploaded (one `PUT`
//! for small blobs, `PATCH` chunks then `PUT` for large ones), layers in
//! parallel; then the config, then the manifest under the tag.
//!
//! Retries, as a pull's (the same policy and loop, `retry`): a transient
//! failure (408, 429 honouring `Retry-After`, 5xx, a dropped or timed-out
//! connection) of the first contact, of a blob's push or of the manifest's
//! `PUT` is retried with backoff, reported as docker does ("Retrying in N
//! seconds"). A blob's push is retried whole: it asks again whether the
//! registry has the blob and opens a new upload, since an upload session
//! cut off part-way cannot be trusted to hold what was sent.

use super::client::{Access, RegistryClient, Session};
use super::{retry, RegistryError};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::Store;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// The reference pushed.
    pub reference: Reference,
    /// The manifest's digest in the registry.
    pub digest: Digest,
    /// The manifest's size.
    pub size: u64,
}

/// How a blob got into the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    AlreadyThere,
    Mounted(String),
    Uploaded,
}

fn read_range(
    content: &ContentStore,
    digest: &Digest,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, RegistryError> {
    let path = content.path(digest);
    let mut f = content.open_blob(digest)?;
    let io = |source| {
        RegistryError::from(crate::content::ContentError::Io {
            op: "read",
            path: path.clone(),
            source,
        })
    };
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = Vec::with_capacity(len as usize);
    f.take(len).read_to_end(&mut buf).map_err(io)?;
    Ok(buf)
}

async fn read_range_async(
    content: &ContentStore,
    digest: &Digest,
    offset: u64,
    len: u64,
) -> Result<bytes::Bytes, RegistryError> {
    let c = content.clone();
    let d = digest.clone();
    tokio::task::spawn_blocking(move || read_range(&c, &d, offset, len))
        .await
        .map_err(|e| RegistryError::Task {
            op: format!("read blob {digest}"),
            reason: e.to_string(),
        })?
        .map(bytes::Bytes::from)
}

#[allow(clippy::too_many_arguments)]
async fn push_blob(
    session: Session,
    content: ContentStore,
    digest: Digest,
    size: u64,
    mount_from: Vec<String>,
    chunk: u64,
    show: bool,
    tx: mpsc::UnboundedSender<Progress>,
) -> Result<Sent, RegistryError> {
    let id = digest.short().to_string();
    let report = |p: Progress| {
        if show {
            let _ = tx.send(p);
        }
    };
    if session.has_blob(&digest).await? {
        return Ok(Sent::AlreadyThere);
    }
    let mut upload = None;
    for from in &mount_from {
        match session.mount_blob(&digest, from).await {
            Ok(None) => return Ok(Sent::Mounted(from.clone())),
            // The registry opened a normal upload instead: use it.
            Ok(Some(url)) => {
                upload = Some(url);
                break;
            }
            Err(e) => tracing::debug!(%digest, %from, error = %e, "cross-repository mount refused"),
        }
    }
    let mut url = match upload {
        Some(u) => u,
        None => session.start_upload().await?,
    };
    let total = Some(size);
    if size <= chunk {
        report(Progress {
            id: id.clone(),
            status: "Pushing".into(),
            current: 0,
            total,
        });
        let data = read_range_async(&content, &digest, 0, size).await?;
        session.finish_upload(&url, &digest, data).await?;
    } else {
        let mut offset = 0u64;
        while offset < size {
            let len = chunk.min(size - offset);
            let data = read_range_async(&content, &digest, offset, len).await?;
            url = session.upload_chunk(&url, offset, data).await?;
            offset += len;
            report(Progress {
                id: id.clone(),
                status: "Pushing".into(),
                current: offset,
                total,
            });
        }
        session
            .finish_upload(&url, &digest, bytes::Bytes::new())
            .await?;
    }
    Ok(Sent::Uploaded)
}

impl Store {
    /// Pushes the image tagged `name` to the registry its name points at,
    /// as `docker push` does. Blobs the image is known to have in another
    /// repository of the same registry (its repo digests) are mounted
    /// rather than uploaded.
    pub async fn push(
        &mut self,
        client: &RegistryClient,
        name: &str,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<PushOutcome, RegistryError> {
        let reference = Reference::parse_with_default_tag(name)?;
        let tag = match (reference.tag(), reference.digest()) {
            (Some(t), None) => t.to_string(),
            _ => {
                return Err(RegistryError::Push {
                    reference: reference.to_string(),
                    reason: "push needs a tag (name:tag), not a digest".into(),
                })
            }
        };
        let (id, _) = self.resolve(&reference.to_string())?;
        let record = self.get(&id).cloned().ok_or_else(|| RegistryError::Push {
            reference: reference.to_string(),
            reason: "the image record vanished".into(),
        })?;
        let manifest_bytes = self.content().read(&record.manifest)?;
        let mount_from: Vec<String> = record
            .repo_digests
            .iter()
            .filter_map(|rd| rd.split('@').next())
            .filter_map(|repo| Reference::parse(repo).ok())
            .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
            .map(|r| r.path().to_string())
            .collect();
        let options = Arc::new(client.options().clone());
        let session = retry::with_retries(
            &options,
            retry::is_transient_at_start,
            |m| progress(Progress::message("", m)),
            || client.session(&reference, Access::Push, &mount_from),
        )
        .await?;
        progress(Progress::message(
            "",
            format!("The push refers to repository [{}]", reference.name()),
        ));
        for l in record.layers.iter().rev() {
            progress(Progress::message(l.blob.short(), "Preparing"));
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
        let slots = Arc::new(Semaphore::new(
            client.options().max_concurrent_uploads.max(1),
        ));
        let chunk = client.options().upload_chunk_size.max(1);
        let mut tasks = JoinSet::new();
        let mut blobs: Vec<(Digest, u64, bool)> = record
            .layers
            .iter()
            .map(|l| (l.blob.clone(), l.size, true))
            .collect();
        let mut seen = std::collections::HashSet::new();
        blobs.retain(|b| seen.insert(b.0.clone()));
        blobs.push((record.id.0.clone(), record.config_size, false));
        for (digest, size, show) in blobs {
            let (session, content, mount_from, tx, slots, options) = (
                session.clone(),
                self.content().clone(),
                mount_from.clone(),
                tx.clone(),
                slots.clone(),
                options.clone(),
            );
            tasks.spawn(async move {
                let id = digest.short().to_string();
                let _slot = match slots.clone().try_acquire_owned() {
                    Ok(s) => s,
                    Err(_) => {
                        if show {
                            let _ = tx.send(Progress::message(&id, "Waiting"));
                        }
                        slots
                            .acquire_owned()
                            .await
                            .map_err(|e| RegistryError::Task {
                                op: format!("push blob {digest}"),
                                reason: e.to_string(),
                            })?
                    }
                };
                let sent = retry::with_retries(
                    &options,
                    retry::is_transient,
                    |m| {
                        if show {
                            let _ = tx.send(Progress::message(&id, m));
                        }
                    },
                    || {
                        push_blob(
                            session.clone(),
                            content.clone(),
                            digest.clone(),
                            size,
                            mount_from.clone(),
                            chunk,
                            show,
                            tx.clone(),
                        )
                    },
                )
                .await?;
                if show {
                    let status = match sent {
                        Sent::AlreadyThere => "Layer already exists".to_string(),
                        Sent::Mounted(from) => format!("Mounted from {from}"),
                        Sent::Uploaded => "Pushed".to_string(),
                    };
                    let _ = tx.send(Progress::message(&id, status));
                }
                Ok::<(), RegistryError>(())
            });
        }
        drop(tx);
        let mut first_err = None;
        loop {
            tokio::select! {
                Some(ev) = rx.recv() => progress(ev),
                Some(r) = tasks.join_next() => {
                    let r = match r {
                        Ok(r) => r,
                        Err(e) if e.is_cancelled() => Ok(()),
                        Err(e) => Err(RegistryError::Task { op: "push a blob".into(), reason: e.to_string() }),
                    };
                    if let Err(e) = r {
                        if first_err.is_none() {
                            first_err = Some(e);
                            tasks.abort_all();
                        }
                    }
                }
                else => break,
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let size = manifest_bytes.len() as u64;
        let digest = retry::with_retries(
            &options,
            retry::is_transient,
            |m| progress(Progress::message(&tag, m)),
            || session.put_manifest(&tag, &record.manifest_media_type, manifest_bytes.clone()),
        )
        .await?;
        self.add_repo_digest(&id, format!("{}@{digest}", reference.name()))?;
        progress(Progress::message(
            "",
            format!("{tag}: digest: {digest} size: {size}"),
        ));
        Ok(PushOutcome {
            reference,
            digest,
            size,
        })
    }
}
