//! The `/networks` API over the network service: list, inspect, create, remove, connect,
//! disconnect and prune, with dockerd's filters, errors and events.

use std::collections::HashMap;

use api_server::{ApiError, NetworkBackend};
use api_types::models::generated::{
    EndpointResource, NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse,
    NetworkDisconnectRequest, NetworkInspect, NetworkPruneResponse,
};
use api_types::models::EventMessageTypeEnum;
use api_types::query::{NetworkInspectQuery, NetworkListQuery, PruneQuery};
use monitor_protocol::{Request, Response};

use crate::networks::{NetworkRecord, DEFAULT_NETWORK};
use crate::state::{ContainerRecord, Status};
use crate::{blocking, monitor_client, Daemon};

impl Daemon {
    /// Running containers with an endpoint on `net`, found through the index of containers by
    /// network: only that network's containers are read.
    fn endpoints_on(&self, net: &NetworkRecord) -> HashMap<String, EndpointResource> {
        endpoints_of(
            net,
            self.inner
                .network_users(&net.name)
                .iter()
                .map(|c| c.record()),
        )
    }

    fn network_event(&self, action: &str, net: &NetworkRecord, container: Option<&str>) {
        let mut attrs = HashMap::new();
        attrs.insert("name".to_string(), net.name.clone());
        attrs.insert("type".to_string(), net.driver.clone());
        if let Some(c) = container {
            attrs.insert("container".to_string(), c.to_string());
        }
        self.inner
            .events
            .publish(EventMessageTypeEnum::NETWORK, action, &net.id, attrs);
    }
}

/// The endpoints `records` have on `net`: a running container's live endpoint, or, on `host`
/// and `none`, a running container in that network mode.
fn endpoints_of(
    net: &NetworkRecord,
    records: impl Iterator<Item = ContainerRecord>,
) -> HashMap<String, EndpointResource> {
    let mut out = HashMap::new();
    for r in records {
        if r.state.status != Status::Running {
            continue;
        }
        if let Some(ep) = r.net.endpoints.get(&net.name) {
            out.insert(
                r.id.clone(),
                EndpointResource {
                    name: Some(r.name.clone()),
                    endpoint_id: Some(ep.endpoint_id.clone()),
                    mac_address: Some(ep.mac.clone()),
                    ipv4_address: Some(ep.ipv4.map(|a| a.to_string()).unwrap_or_default()),
                    ipv6_address: Some(ep.ipv6.map(|a| a.to_string()).unwrap_or_default()),
                },
            );
        } else if net.driver != "bridge" {
            let mode = r.host_config.network_mode.as_deref().unwrap_or("");
            let on =
                (net.name == "host" && mode == "host") || (net.name == "none" && mode == "none");
            if on {
                out.insert(
                    r.id.clone(),
                    EndpointResource {
                        name: Some(r.name.clone()),
                        endpoint_id: Some(String::new()),
                        mac_address: Some(String::new()),
                        ipv4_address: Some(String::new()),
                        ipv6_address: Some(String::new()),
                    },
                );
            }
        }
    }
    out
}

/// Whether a record keeps `net` from being pruned: its network mode, its endpoint settings or a
/// live endpoint name it.
fn uses_network(r: &ContainerRecord, net: &NetworkRecord) -> bool {
    r.host_config.network_mode.as_deref() == Some(net.name.as_str())
        || r.endpoints_config.contains_key(&net.name)
        || r.net.endpoints.contains_key(&net.name)
}

impl NetworkBackend for Daemon {
    async fn network_list(&self, query: NetworkListQuery) -> Result<Vec<NetworkInspect>, ApiError> {
        let f = &query.filters;
        let check = |name: &str, ok: &dyn Fn(&str) -> bool| {
            let mut values = f.get(name).peekable();
            values.peek().is_none() || values.any(ok)
        };
        for v in f.get("type") {
            if v != "custom" && v != "builtin" {
                return Err(ApiError::InvalidParameter(format!(
                    "invalid filter: 'type'='{v}'"
                )));
            }
        }
        let mut out = Vec::new();
        for net in self.inner.networks.list() {
            let users = self.endpoints_on(&net);
            let dangling = !net.predefined && users.is_empty();
            let keep = check("name", &|v| net.name.contains(v))
                && check("id", &|v| net.id.starts_with(v))
                && check("driver", &|v| v == net.driver)
                && check("scope", &|v| v == "local")
                && f.labels_match("label", |k| net.labels.get(k).map(String::as_str))
                && check("type", &|v| (v == "builtin") == net.predefined)
                && check("dangling", &|v| matches!(v, "true" | "1") == dangling);
            if keep {
                out.push(net.to_api(None));
            }
        }
        Ok(out)
    }

    async fn network_inspect(
        &self,
        id: &str,
        query: NetworkInspectQuery,
    ) -> Result<NetworkInspect, ApiError> {
        if let Some(scope) = query.scope.as_deref() {
            if scope != "local" {
                return Err(ApiError::NotFound(format!("network {id} not found")));
            }
        }
        let net = self.inner.networks.find(id)?;
        let users = self.endpoints_on(&net);
        Ok(net.to_api(Some(users)))
    }

    async fn network_create(
        &self,
        body: NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse, ApiError> {
        let networks = self.inner.networks.clone();
        let net = blocking(move || networks.create(body)).await?;
        self.network_event("create", &net, None);
        Ok(NetworkCreateResponse {
            id: net.id,
            warning: String::new(),
        })
    }

    async fn network_remove(&self, id: &str) -> Result<(), ApiError> {
        let net = self.inner.networks.find(id)?;
        let users: Vec<String> = self
            .endpoints_on(&net)
            .into_values()
            .filter_map(|e| e.name)
            .collect();
        let networks = self.inner.networks.clone();
        let key = net.id.clone();
        let removed = blocking(move || networks.remove(&key, &users)).await?;
        self.network_event("destroy", &removed, None);
        Ok(())
    }

    async fn network_connect(&self, id: &str, body: NetworkConnectRequest) -> Result<(), ApiError> {
        let net = self.inner.networks.find(id)?;
        let c = self.inner.resolve(&body.container)?;
        let _op = c.op.lock().await;
        let r = c.record();
        let mode = r.host_config.network_mode.as_deref().unwrap_or("");
        if mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(ApiError::InvalidParameter(format!(
                "container cannot be disconnected from host network or connected to host network: its network mode is {mode}"
            )));
        }
        if net.driver != "bridge" {
            return Err(ApiError::InvalidParameter(format!(
                "container cannot be connected to network {}: its driver is {}",
                net.name, net.driver
            )));
        }
        let primary = if mode.is_empty() || mode == "default" {
            DEFAULT_NETWORK
        } else {
            mode
        };
        let is_primary = net.name == primary || net.id == primary;
        if (is_primary && !r.primary_disconnected)
            || (!is_primary && r.endpoints_config.contains_key(&net.name))
            || r.net.endpoints.contains_key(&net.name)
        {
            return Err(ApiError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                r.name, net.name
            )));
        }
        let settings = body.endpoint_config.clone().unwrap_or_default();
        crate::networks::refuse_unsupported_endpoint(&net.name, &settings)?;
        if r.state.status == Status::Running {
            let networks = self.inner.networks.clone();
            let (rec, n, s) = (r.clone(), net.clone(), settings.clone());
            let (ep, iface, _) = blocking(move || networks.attach_one(&rec, &n, &s)).await?;
            let socket = self.inner.socket(&r.id);
            let answer =
                monitor_client::call(&socket, &r.id, Request::Connect { interface: iface }).await;
            let failed = match answer {
                Ok(Response::Ok) => None,
                Ok(Response::Error { message }) => Some(ApiError::Internal(message)),
                Ok(other) => Some(ApiError::Internal(format!(
                    "monitor answered connect with {other:?}"
                ))),
                Err(e) => Some(e),
            };
            if let Some(e) = failed {
                self.inner.networks.release_network(&r.id, &net.id);
                return Err(e);
            }
            let record = c.update_record(|x| {
                x.endpoints_config
                    .insert(net.name.clone(), settings.clone());
                x.net.endpoints.insert(net.name.clone(), ep.clone());
                if is_primary {
                    x.primary_disconnected = false;
                }
            });
            self.inner.persist_record(&record)?;
        } else {
            let record = c.update_record(|x| {
                x.endpoints_config
                    .insert(net.name.clone(), settings.clone());
                if is_primary {
                    x.primary_disconnected = false;
                }
            });
            self.inner.persist_record(&record)?;
        }
        self.network_event("connect", &net, Some(&r.id));
        Ok(())
    }

    async fn network_disconnect(
        &self,
        id: &str,
        body: NetworkDisconnectRequest,
    ) -> Result<(), ApiError> {
        let net = self.inner.networks.find(id)?;
        let c = self.inner.resolve(&body.container)?;
        let _op = c.op.lock().await;
        let r = c.record();
        let mode = r.host_config.network_mode.as_deref().unwrap_or("");
        let primary = if mode.is_empty() || mode == "default" {
            DEFAULT_NETWORK
        } else {
            mode
        };
        let is_primary = net.name == primary || net.id == primary;
        if is_primary && !r.net.ports.is_empty() && r.state.status == Status::Running {
            return Err(ApiError::Forbidden(format!(
                "container {} publishes ports on network {}: stop it before disconnecting it",
                r.name, net.name
            )));
        }
        let connected = if is_primary {
            !r.primary_disconnected
        } else {
            r.endpoints_config.contains_key(&net.name) || r.net.endpoints.contains_key(&net.name)
        };
        if !connected {
            return Err(ApiError::Forbidden(format!(
                "container {} is not connected to network {}",
                r.id, net.name
            )));
        }
        if let Some(ep) = r
            .net
            .endpoints
            .get(&net.name)
            .filter(|_| r.state.status == Status::Running)
        {
            let socket = self.inner.socket(&r.id);
            let answer = monitor_client::call(
                &socket,
                &r.id,
                Request::Disconnect {
                    host_ifname: ep.host_ifname.clone(),
                },
            )
            .await;
            match answer {
                Ok(Response::Ok) => {}
                Ok(Response::Error { message }) if body.force != Some(true) => {
                    return Err(ApiError::Internal(message))
                }
                Err(e) if body.force != Some(true) => return Err(e),
                _ => {}
            }
            self.inner.networks.release_network(&r.id, &net.id);
        }
        let record = c.update_record(|x| {
            x.endpoints_config.remove(&net.name);
            x.net.endpoints.remove(&net.name);
            if is_primary {
                x.primary_disconnected = true;
            }
        });
        self.inner.persist_record(&record)?;
        self.network_event("disconnect", &net, Some(&r.id));
        Ok(())
    }

    async fn network_prune(&self, query: PruneQuery) -> Result<NetworkPruneResponse, ApiError> {
        let f = &query.filters;
        let until = match f.get("until").next() {
            Some(v) => Some(crate::until_seconds(v)?),
            None => None,
        };
        let mut deleted = Vec::new();
        for net in self.inner.networks.list() {
            if net.predefined {
                continue;
            }
            let used = self
                .inner
                .network_users(&net.name)
                .iter()
                .any(|c| uses_network(&c.record(), &net));
            if used {
                continue;
            }
            if let Some(limit) = until {
                let created = chrono::DateTime::parse_from_rfc3339(&net.created)
                    .map(|t| t.timestamp())
                    .unwrap_or(0);
                if created >= limit {
                    continue;
                }
            }
            let label = |k: &str| net.labels.get(k).map(String::as_str);
            let labels_ok = f.labels_match("label", label) && !f.any_label_matches("label!", label);
            if !labels_ok {
                continue;
            }
            let networks = self.inner.networks.clone();
            let key = net.id.clone();
            match blocking(move || networks.remove(&key, &[])).await {
                Ok(n) => {
                    self.network_event("destroy", &n, None);
                    deleted.push(n.name);
                }
                Err(e) => tracing::warn!("network prune: {}: {e}", net.name),
            }
        }
        Ok(NetworkPruneResponse {
            networks_deleted: Some(deleted),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::network_index::tests::record;
    use crate::containers::NetworkIndex;

    fn network(name: &str, driver: &str) -> NetworkRecord {
        NetworkRecord {
            id: format!("id-{name}"),
            name: name.to_string(),
            driver: driver.to_string(),
            created: String::new(),
            bridge: String::new(),
            subnets: Vec::new(),
            internal: false,
            ipv6: false,
            labels: Default::default(),
            options: Default::default(),
            predefined: matches!(name, "bridge" | "host" | "none"),
            attachable: false,
        }
    }

    /// List, inspect and remove read a network's containers through the index: what they show
    /// must be what a scan of every record shows, and prune must see the same users.
    #[test]
    fn the_index_finds_the_containers_a_scan_of_every_record_finds() {
        let records = vec![
            record("a", Some("bridge"), &[], &["bridge"]),
            record("b", Some("front"), &["back"], &["front", "back"]),
            record("c", Some("front"), &["back"], &[]),
            record("d", Some("host"), &[], &[]),
            record("e", Some("none"), &[], &[]),
            record("f", Some("container:a"), &[], &[]),
        ];
        let mut running = records.clone();
        for r in running
            .iter_mut()
            .filter(|r| matches!(r.id.as_str(), "d" | "e"))
        {
            r.state.status = Status::Running;
        }
        let mut index = NetworkIndex::default();
        for r in &running {
            index.register(r);
        }
        let via_index = |net: &NetworkRecord| {
            let ids = index.users(&net.name);
            endpoints_of(net, running.iter().filter(|r| ids.contains(&r.id)).cloned())
        };
        let shown = |m: &HashMap<String, EndpointResource>| {
            let mut ids: Vec<String> = m.keys().cloned().collect();
            ids.sort();
            ids
        };
        let nets = [
            network("bridge", "bridge"),
            network("front", "bridge"),
            network("back", "bridge"),
            network("host", "host"),
            network("none", "null"),
            network("unused", "bridge"),
        ];
        for net in &nets {
            let scanned = endpoints_of(net, running.iter().cloned());
            assert_eq!(via_index(net), scanned, "network {}", net.name);
            let users = index.users(&net.name);
            let by_index = running
                .iter()
                .filter(|r| users.contains(&r.id))
                .any(|r| uses_network(r, net));
            let by_scan = running.iter().any(|r| uses_network(r, net));
            assert_eq!(by_index, by_scan, "prune's view of network {}", net.name);
        }
        // The containers list and inspect show: running ones with an endpoint (or in the
        // host/none mode), not the stopped `c` configured on `front` and `back`.
        assert_eq!(shown(&via_index(&nets[0])), ["a"]);
        assert_eq!(shown(&via_index(&nets[1])), ["b"]);
        assert_eq!(shown(&via_index(&nets[2])), ["b"]);
        assert_eq!(shown(&via_index(&nets[3])), ["d"]);
        assert_eq!(shown(&via_index(&nets[4])), ["e"]);
        assert!(via_index(&nets[5]).is_empty());
        let b = &via_index(&nets[2])["b"];
        assert_eq!(b.name.as_deref(), Some("name-b"));
        assert_eq!(b.endpoint_id.as_deref(), Some("ep-b-back"));
        // `c` keeps `back` from a prune though it shows no endpoint there.
        assert!(index.users("back").contains(&"c".to_string()));
    }
}
