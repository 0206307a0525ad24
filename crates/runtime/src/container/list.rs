//! `state` and `list`: what containers exist under a root and their status.

use crate::error::Result;
use crate::state::{OciState, Root};

/// The OCI state of container `id`.
pub fn state(root: &Root, id: &str) -> Result<OciState> {
    let record = root.load(id)?;
    let status = record.status(root);
    Ok(record.oci_state(status))
}

/// The OCI states of every container under `root`, by id. A record that
/// cannot be read is skipped with a warning, as runc does.
pub fn list(root: &Root) -> Result<Vec<OciState>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        match state(root, &id) {
            Ok(s) => out.push(s),
            Err(e) => tracing::warn!("skipping container {id}: {e}"),
        }
    }
    Ok(out)
}
