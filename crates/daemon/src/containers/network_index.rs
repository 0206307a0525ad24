//! The index from a network to the containers on it, so `/networks` list, inspect, remove and
//! prune read only that network's containers instead of every record.
//!
//! A container is on a network when its record names it: as its `--network` (network mode),
//! in its endpoint settings (create's `NetworkingConfig`, `docker network connect`), or as a
//! live endpoint while it runs. Each [`Container`] keeps its entry in step: registered when the
//! container is (at create, and for every record loaded when berthd opens, which rebuilds the
//! index), changed by every record update that attaches or detaches an endpoint, dropped when
//! the container leaves the registry.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{lock, Container};
use crate::state::ContainerRecord;
use crate::Inner;

/// Containers by the networks their records name (network names as records keep them).
#[derive(Debug, Default)]
pub(crate) struct NetworkIndex {
    by_network: HashMap<String, BTreeSet<String>>,
    by_container: HashMap<String, BTreeSet<String>>,
}

impl NetworkIndex {
    /// The networks a record names: its network mode, its endpoint settings' keys and its live
    /// endpoints' keys.
    pub(crate) fn networks_of(r: &ContainerRecord) -> BTreeSet<String> {
        r.host_config
            .network_mode
            .iter()
            .chain(r.endpoints_config.keys())
            .chain(r.net.endpoints.keys())
            .cloned()
            .collect()
    }

    /// Adds a container that has joined the registry, on the networks `r` names.
    pub(crate) fn register(&mut self, r: &ContainerRecord) {
        self.by_container.insert(r.id.clone(), BTreeSet::new());
        self.update(&r.id, Self::networks_of(r));
    }

    /// Moves a registered container to `networks`; a container no longer registered (an
    /// update racing its removal) stays out.
    pub(crate) fn update(&mut self, id: &str, networks: BTreeSet<String>) {
        let Some(old) = self.by_container.get_mut(id) else {
            return;
        };
        if *old == networks {
            return;
        }
        for gone in old.difference(&networks) {
            if let Some(ids) = self.by_network.get_mut(gone) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_network.remove(gone);
                }
            }
        }
        for added in networks.difference(old) {
            self.by_network
                .entry(added.clone())
                .or_default()
                .insert(id.to_string());
        }
        *old = networks;
    }

    /// Drops a container that has left the registry.
    pub(crate) fn forget(&mut self, id: &str) {
        self.update(id, BTreeSet::new());
        self.by_container.remove(id);
    }

    /// The IDs of the containers whose records name `network`.
    pub(crate) fn users(&self, network: &str) -> Vec<String> {
        self.by_network
            .get(network)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Inner {
    /// The containers whose records name `network` (by its name), from the index: as many
    /// lookups as the network has containers.
    pub(crate) fn network_users(&self, network: &str) -> Vec<Arc<Container>> {
        let ids = lock(&self.network_index).users(network);
        let reg = lock(&self.containers);
        ids.iter()
            .filter_map(|id| reg.by_id.get(id).cloned())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::networks::EndpointState;
    use crate::state::{RunState, Status};

    /// A record of container `id` with network mode `mode`, endpoint settings for `configured`
    /// and, when `running`, a live endpoint on each of `live`.
    pub(crate) fn record(
        id: &str,
        mode: Option<&str>,
        configured: &[&str],
        live: &[&str],
    ) -> ContainerRecord {
        let mut r = ContainerRecord {
            id: id.to_string(),
            name: format!("name-{id}"),
            created: String::new(),
            image: "busybox".into(),
            image_id: String::new(),
            path: "sh".into(),
            args: Vec::new(),
            config: Default::default(),
            host_config: api_types::models::HostConfig {
                network_mode: mode.map(str::to_string),
                ..Default::default()
            },
            rootfs: monitor_protocol::RootfsMount {
                typ: "overlay".into(),
                source: "overlay".into(),
                options: Vec::new(),
            },
            state: RunState::default(),
            restart_count: 0,
            manually_stopped: false,
            endpoints_config: configured
                .iter()
                .map(|n| (n.to_string(), Default::default()))
                .collect(),
            net: Default::default(),
            primary_disconnected: false,
            mounts: Vec::new(),
        };
        if !live.is_empty() {
            r.state.status = Status::Running;
            r.state.pid = 4242;
        }
        for n in live {
            r.net.endpoints.insert(
                n.to_string(),
                EndpointState {
                    network_id: format!("id-{n}"),
                    endpoint_id: format!("ep-{id}-{n}"),
                    ..Default::default()
                },
            );
        }
        r
    }

    #[test]
    fn a_record_is_on_its_mode_its_settings_and_its_live_endpoints() {
        let r = record("a", Some("bridge"), &["front"], &["bridge", "back"]);
        let nets: Vec<String> = NetworkIndex::networks_of(&r).into_iter().collect();
        assert_eq!(nets, ["back", "bridge", "front"]);
        let host = record("h", Some("host"), &[], &[]);
        assert_eq!(
            NetworkIndex::networks_of(&host)
                .into_iter()
                .collect::<Vec<_>>(),
            ["host"]
        );
    }

    #[test]
    fn attach_detach_and_removal_keep_the_index_in_step() {
        let mut ix = NetworkIndex::default();
        let a = record("a", Some("bridge"), &[], &[]);
        let b = record("b", Some("front"), &["back"], &[]);
        ix.register(&a);
        ix.register(&b);
        assert_eq!(ix.users("bridge"), ["a"]);
        assert_eq!(ix.users("front"), ["b"]);
        assert_eq!(ix.users("back"), ["b"]);
        assert!(ix.users("other").is_empty());

        // `a` starts on the default bridge and is connected to `back`.
        let started = record("a", Some("bridge"), &["back"], &["bridge", "back"]);
        ix.update("a", NetworkIndex::networks_of(&started));
        assert_eq!(ix.users("back"), ["a", "b"]);
        assert_eq!(ix.users("bridge"), ["a"]);

        // `b` is disconnected from `back`.
        let b2 = record("b", Some("front"), &[], &[]);
        ix.update("b", NetworkIndex::networks_of(&b2));
        assert_eq!(ix.users("back"), ["a"]);

        // `a` is removed; a late update of its record (a background task that still holds
        // it) does not bring it back.
        ix.forget("a");
        ix.update("a", NetworkIndex::networks_of(&started));
        assert!(ix.users("back").is_empty());
        assert!(ix.users("bridge").is_empty());
        assert_eq!(ix.users("front"), ["b"]);
        assert!(
            !ix.by_network.contains_key("back"),
            "empty sets are dropped"
        );
        assert!(!ix.by_container.contains_key("a"));
    }

    #[test]
    fn rebuilt_from_records_the_index_matches_a_scan_of_them() {
        let records = vec![
            record("a", Some("bridge"), &[], &["bridge"]),
            record("b", Some("front"), &["back"], &["front", "back"]),
            record("c", Some("front"), &[], &[]),
            record("d", Some("host"), &[], &[]),
            record("e", Some("container:a"), &[], &[]),
        ];
        let mut ix = NetworkIndex::default();
        for r in &records {
            ix.register(r);
        }
        for net in ["bridge", "front", "back", "host", "none", "unused"] {
            let scanned: Vec<String> = records
                .iter()
                .filter(|r| {
                    r.host_config.network_mode.as_deref() == Some(net)
                        || r.endpoints_config.contains_key(net)
                        || r.net.endpoints.contains_key(net)
                })
                .map(|r| r.id.clone())
                .collect();
            assert_eq!(ix.users(net), scanned, "network {net}");
        }
    }
}
