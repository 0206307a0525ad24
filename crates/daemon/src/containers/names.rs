//! Container names: the generated ones (`adjective_noun`), the rule a chosen name must
//! follow, and `rename`.

use api_server::ApiError;

use super::lock;
use crate::Daemon;

pub(super) const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "rapid", "sharp", "tender", "vivid", "witty", "zealous", "bold",
];
pub(super) const NOUNS: &[&str] = &[
    "anchor",
    "bollard",
    "cargo",
    "dock",
    "ferry",
    "galley",
    "harbor",
    "jetty",
    "keel",
    "lighthouse",
    "mooring",
    "pier",
    "quay",
    "rudder",
    "schooner",
    "tugboat",
    "wharf",
    "yacht",
    "buoy",
    "hull",
];

pub(super) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Daemon {
    pub(super) async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), ApiError> {
        let c = self.inner.resolve(id)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name).to_string();
        if !valid_name(&new_name) {
            return Err(ApiError::InvalidParameter(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = c.record().name;
        {
            let mut reg = lock(&self.inner.containers);
            if let Some(other) = reg.by_name.get(&new_name) {
                return Err(ApiError::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            reg.by_name.remove(&old);
            reg.by_name.insert(new_name.clone(), c.id.clone());
        }
        let record = c.update(|r| r.name = new_name.clone());
        self.inner.persist(&record)?;
        self.inner
            .event("rename", &record, &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}
