//! IP address management for one network, kept in a JSON file that survives a daemon
//! restart.
//!
//! Every change is written to a temporary file, flushed to disk and renamed over the old one
//! (then the directory is synced), so a kill -9 at any moment leaves a file that loads: the old
//! state or the new. Addresses are handed out as dockerd does: the next free one after the
//! last handed out, wrapping at the end, so an address just freed is not given again at once
//! (a stale ARP entry or connection would reach the wrong container). Only handed-out
//! addresses are stored, never a bitmap of the subnet, so a v6 /64 costs no more than a v4
//! /24. Not thread-safe by itself: berthd keeps one `Ipam` per network behind a lock.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What can go wrong managing a network's addresses.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The state file could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: read, write, sync, rename.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not valid JSON of the expected shape.
    #[error("parse IPAM state {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The file belongs to another subnet than the one the network was opened with.
    #[error("IPAM state {} is for subnet {stored}, not {wanted}", path.display())]
    SubnetMismatch {
        /// The file.
        path: PathBuf,
        /// The subnet in the file.
        stored: IpNet,
        /// The subnet asked for.
        wanted: IpNet,
    },
    /// The gateway or range does not fit the subnet.
    #[error("subnet {subnet}: {reason}")]
    InvalidConfig {
        /// The subnet.
        subnet: IpNet,
        /// What does not fit.
        reason: String,
    },
    /// The address wanted is handed out already.
    #[error("address {addr} is already in use by {owner}")]
    InUse {
        /// The address.
        addr: IpAddr,
        /// Who holds it.
        owner: String,
    },
    /// The address wanted is outside the subnet, or is its network, broadcast or gateway
    /// address.
    #[error("address {addr} cannot be handed out in subnet {subnet}: {reason}")]
    NotAvailable {
        /// The address.
        addr: IpAddr,
        /// The network's subnet.
        subnet: IpNet,
        /// Why not.
        reason: &'static str,
    },
    /// Every address of the subnet (or range) is handed out.
    #[error("no free address left in {pool}")]
    Exhausted {
        /// The subnet or range that is full.
        pool: IpNet,
    },
}

/// What the file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    /// The layout of this file, for a later change of it.
    #[serde(default = "layout")]
    version: u32,
    subnet: IpNet,
    gateway: IpAddr,
    #[serde(default)]
    range: Option<IpNet>,
    /// The address handed out last: the search for a free one starts after it.
    #[serde(default)]
    last: Option<IpAddr>,
    /// Address to owner (a container or endpoint ID).
    #[serde(default)]
    allocations: BTreeMap<IpAddr, String>,
}

/// The addresses of one network.
#[derive(Debug)]
pub struct Ipam {
    path: PathBuf,
    state: State,
    /// First and last address that `allocate` may choose by itself, as numbers.
    lo: u128,
    hi: u128,
    /// The network and (v4) broadcast addresses, never handed out.
    network: u128,
    broadcast: Option<u128>,
}

impl Ipam {
    /// Opens the network's state at `path`, creating the file when missing. Refuses a file
    /// whose subnet differs from `subnet`. `range` (dockerd's `--ip-range`) limits the
    /// addresses chosen automatically; an address asked for by name may lie anywhere in
    /// the subnet, as in dockerd.
    pub fn open(
        path: &Path,
        subnet: IpNet,
        gateway: IpAddr,
        range: Option<IpNet>,
    ) -> Result<Ipam, IpamError> {
        let subnet = subnet.trunc();
        let range = range.map(|r| r.trunc());
        let invalid = |reason: String| IpamError::InvalidConfig { subnet, reason };
        if !subnet.contains(&gateway) {
            return Err(invalid(format!("gateway {gateway} lies outside it")));
        }
        if let Some(r) = range {
            if !subnet.contains(&r) {
                return Err(invalid(format!("range {r} lies outside it")));
            }
        }
        let network = to_num(subnet.network());
        let broadcast = match subnet {
            IpNet::V4(n) if n.prefix_len() < 31 => Some(u128::from(u32::from(n.broadcast()))),
            _ => None,
        };
        let pool = range.unwrap_or(subnet);
        let lo = to_num(pool.network()).max(network.saturating_add(1));
        let hi = to_num(pool.broadcast());
        let hi = match broadcast {
            Some(b) if hi >= b => b - 1,
            _ => hi,
        };

        let loaded = match std::fs::read(path) {
            Ok(bytes) => {
                let state: State =
                    serde_json::from_slice(&bytes).map_err(|source| IpamError::Parse {
                        path: path.to_path_buf(),
                        source,
                    })?;
                if state.version > LAYOUT {
                    return Err(IpamError::InvalidConfig {
                        subnet,
                        reason: format!(
                            "{} has layout {}, newer than this berth understands ({LAYOUT})",
                            path.display(),
                            state.version
                        ),
                    });
                }
                if state.subnet != subnet {
                    return Err(IpamError::SubnetMismatch {
                        path: path.to_path_buf(),
                        stored: state.subnet,
                        wanted: subnet,
                    });
                }
                Some(state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(IpamError::Io {
                    op: "read",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let fresh = loaded.is_none();
        if fresh {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| IpamError::Io {
                    op: "create directory",
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
        }
        let mut state = loaded.unwrap_or(State {
            version: LAYOUT,
            subnet,
            gateway,
            range,
            last: None,
            allocations: BTreeMap::new(),
        });
        let changed = state.gateway != gateway || state.range != range;
        state.gateway = gateway;
        state.range = range;
        let ipam = Ipam {
            path: path.to_path_buf(),
            state,
            lo,
            hi,
            network,
            broadcast,
        };
        if fresh || changed {
            ipam.save()?;
        }
        Ok(ipam)
    }

    /// Hands out an address to `owner`: `want` when given (refused when taken, outside the
    /// subnet, or the network, broadcast or gateway address), else the next free one after
    /// the last handed out, wrapping.
    pub fn allocate(&mut self, owner: &str, want: Option<IpAddr>) -> Result<IpAddr, IpamError> {
        let addr = match want {
            Some(addr) => {
                self.check_wanted(addr)?;
                addr
            }
            None => {
                let start = match self.state.last.map(to_num) {
                    Some(last) if last >= self.lo && last < self.hi => last + 1,
                    _ => self.lo,
                };
                let found = self.first_free(start, self.hi).or_else(|| {
                    if start > self.lo {
                        self.first_free(self.lo, start - 1)
                    } else {
                        None
                    }
                });
                match found {
                    Some(n) => self.addr_of(n),
                    None => {
                        return Err(IpamError::Exhausted {
                            pool: self.state.range.unwrap_or(self.state.subnet),
                        })
                    }
                }
            }
        };
        let before = self.state.last;
        self.state.allocations.insert(addr, owner.to_string());
        if want.is_none() {
            self.state.last = Some(addr);
        }
        if let Err(e) = self.save() {
            self.state.allocations.remove(&addr);
            self.state.last = before;
            return Err(e);
        }
        Ok(addr)
    }

    /// Gives `addr` back; an address not handed out counts as released.
    pub fn release(&mut self, addr: IpAddr) -> Result<(), IpamError> {
        let Some(owner) = self.state.allocations.remove(&addr) else {
            return Ok(());
        };
        if let Err(e) = self.save() {
            self.state.allocations.insert(addr, owner);
            return Err(e);
        }
        Ok(())
    }

    /// Gives back every address `owner` holds and returns them.
    pub fn release_owner(&mut self, owner: &str) -> Result<Vec<IpAddr>, IpamError> {
        let freed: Vec<IpAddr> = self
            .state
            .allocations
            .iter()
            .filter(|(_, o)| o.as_str() == owner)
            .map(|(a, _)| *a)
            .collect();
        if freed.is_empty() {
            return Ok(freed);
        }
        for a in &freed {
            self.state.allocations.remove(a);
        }
        if let Err(e) = self.save() {
            for a in &freed {
                self.state.allocations.insert(*a, owner.to_string());
            }
            return Err(e);
        }
        Ok(freed)
    }

    /// Every handed-out address with its owner, in address order.
    pub fn allocations(&self) -> Vec<(IpAddr, String)> {
        self.state
            .allocations
            .iter()
            .map(|(a, o)| (*a, o.clone()))
            .collect()
    }

    /// The network's subnet.
    pub fn subnet(&self) -> IpNet {
        self.state.subnet
    }

    /// The network's gateway.
    pub fn gateway(&self) -> IpAddr {
        self.state.gateway
    }

    fn check_wanted(&self, addr: IpAddr) -> Result<(), IpamError> {
        let subnet = self.state.subnet;
        let refuse = |reason| IpamError::NotAvailable {
            addr,
            subnet,
            reason,
        };
        if !subnet.contains(&addr) {
            return Err(refuse("it lies outside the subnet"));
        }
        let n = to_num(addr);
        if n == self.network {
            return Err(refuse("it is the network address"));
        }
        if Some(n) == self.broadcast {
            return Err(refuse("it is the broadcast address"));
        }
        if addr == self.state.gateway {
            return Err(refuse("it is the gateway"));
        }
        if let Some(owner) = self.state.allocations.get(&addr) {
            return Err(IpamError::InUse {
                addr,
                owner: owner.clone(),
            });
        }
        Ok(())
    }

    /// The lowest address in `[from, to]` that is neither handed out nor the gateway. Walks
    /// the handed-out addresses of that span in order, never the span itself.
    fn first_free(&self, from: u128, to: u128) -> Option<u128> {
        if from > to {
            return None;
        }
        let gateway = to_num(self.state.gateway);
        let mut taken = self
            .state
            .allocations
            .range(self.addr_of(from)..=self.addr_of(to))
            .map(|(a, _)| to_num(*a))
            .peekable();
        let mut candidate = from;
        loop {
            while taken.next_if(|t| *t < candidate).is_some() {}
            if candidate == gateway || taken.peek() == Some(&candidate) {
                if candidate == to {
                    return None;
                }
                candidate += 1;
                continue;
            }
            return Some(candidate);
        }
    }

    fn addr_of(&self, n: u128) -> IpAddr {
        match self.state.subnet {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    }

    /// Writes the state: temporary file, rename. Not fsynced: this is on every container
    /// start and exit (an fsync here cost ~7 ms, more than the whole start), and the state only
    /// matters while containers run. A killed process cannot lose a completed rename; a power
    /// loss also ends every container, so whatever state survives it is released as stale.
    fn save(&self) -> Result<(), IpamError> {
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| IpamError::Io { op, path, source }
        };
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        let json = serde_json::to_vec_pretty(&self.state).map_err(|source| IpamError::Parse {
            path: self.path.clone(),
            source,
        })?;
        let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(&json).map_err(io("write", &tmp))?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(io("rename into place", &self.path))?;
        Ok(())
    }
}

const LAYOUT: u32 = 1;

fn layout() -> u32 {
    LAYOUT
}

fn to_num(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("test network")
    }

    fn open(dir: &tempfile::TempDir, subnet: &str, gw: &str, range: Option<&str>) -> Ipam {
        Ipam::open(
            &dir.path().join("network").join("net.json"),
            net(subnet),
            ip(gw),
            range.map(net),
        )
        .expect("open ipam")
    }

    #[test]
    fn hands_out_addresses_in_order_skipping_the_gateway() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(&dir, "10.1.0.0/24", "10.1.0.1", None);
        assert_eq!(ipam.allocate("a", None).expect("a"), ip("10.1.0.2"));
        assert_eq!(ipam.allocate("b", None).expect("b"), ip("10.1.0.3"));
        let dir2 = tempfile::tempdir().expect("tempdir");
        let mut mid = open(&dir2, "10.2.0.0/24", "10.2.0.3", None);
        assert_eq!(mid.allocate("a", None).expect("a"), ip("10.2.0.1"));
        assert_eq!(mid.allocate("b", None).expect("b"), ip("10.2.0.2"));
        assert_eq!(mid.allocate("c", None).expect("c"), ip("10.2.0.4"));
    }

    #[test]
    fn a_freed_address_is_not_reused_at_once_and_the_search_wraps() {
        let dir = tempfile::tempdir().expect("tempdir");
        // /29: .0 network, .1 gateway, .2-.6 usable, .7 broadcast.
        let mut ipam = open(&dir, "10.3.0.0/29", "10.3.0.1", None);
        let got: Vec<IpAddr> = (0..5)
            .map(|i| ipam.allocate(&format!("c{i}"), None).expect("allocate"))
            .collect();
        assert_eq!(got[0], ip("10.3.0.2"));
        assert_eq!(got[4], ip("10.3.0.6"));
        match ipam.allocate("late", None) {
            Err(IpamError::Exhausted { pool }) => assert_eq!(pool, net("10.3.0.0/29")),
            other => panic!("expected Exhausted, got {other:?}"),
        }
        ipam.release(ip("10.3.0.3")).expect("release");
        ipam.release(ip("10.3.0.5")).expect("release");
        // After .6 the search wraps to the start: .3 first, then .5.
        assert_eq!(ipam.allocate("d", None).expect("d"), ip("10.3.0.3"));
        assert_eq!(ipam.allocate("e", None).expect("e"), ip("10.3.0.5"));
    }

    #[test]
    fn freed_addresses_wait_for_the_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(&dir, "10.4.0.0/24", "10.4.0.1", None);
        let a = ipam.allocate("a", None).expect("a");
        ipam.allocate("b", None).expect("b");
        ipam.release(a).expect("release");
        assert_eq!(ipam.allocate("c", None).expect("c"), ip("10.4.0.4"));
    }

    #[test]
    fn wanted_addresses_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(&dir, "10.5.0.0/24", "10.5.0.1", Some("10.5.0.128/25"));
        assert_eq!(
            ipam.allocate("a", Some(ip("10.5.0.9"))).expect("want"),
            ip("10.5.0.9")
        );
        match ipam.allocate("b", Some(ip("10.5.0.9"))) {
            Err(IpamError::InUse { addr, owner }) => {
                assert_eq!(addr, ip("10.5.0.9"));
                assert_eq!(owner, "a");
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        for bad in ["10.6.0.9", "10.5.0.0", "10.5.0.255", "10.5.0.1", "fd00::1"] {
            assert!(
                matches!(
                    ipam.allocate("b", Some(ip(bad))),
                    Err(IpamError::NotAvailable { .. })
                ),
                "{bad} must be refused"
            );
        }
        // Automatic choice stays inside the range; a wanted address did not move the cursor.
        assert_eq!(ipam.allocate("c", None).expect("c"), ip("10.5.0.128"));
    }

    #[test]
    fn a_range_bounds_the_automatic_choice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(&dir, "10.7.0.0/24", "10.7.0.1", Some("10.7.0.252/30"));
        let got: Vec<IpAddr> = (0..3)
            .map(|i| ipam.allocate(&format!("c{i}"), None).expect("allocate"))
            .collect();
        // .255 is the broadcast address of the subnet.
        assert_eq!(
            got,
            vec![ip("10.7.0.252"), ip("10.7.0.253"), ip("10.7.0.254")]
        );
        assert!(matches!(
            ipam.allocate("x", None),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut ipam = open(&dir, "10.8.0.0/24", "10.8.0.1", None);
            ipam.allocate("a", None).expect("a");
            ipam.allocate("b", None).expect("b");
            ipam.allocate("a", Some(ip("10.8.0.50"))).expect("a again");
        }
        let mut ipam = open(&dir, "10.8.0.0/24", "10.8.0.1", None);
        assert_eq!(
            ipam.allocations(),
            vec![
                (ip("10.8.0.2"), "a".to_string()),
                (ip("10.8.0.3"), "b".to_string()),
                (ip("10.8.0.50"), "a".to_string()),
            ]
        );
        assert_eq!(ipam.allocate("c", None).expect("c"), ip("10.8.0.4"));
        let mut freed = ipam.release_owner("a").expect("release owner");
        freed.sort();
        assert_eq!(freed, vec![ip("10.8.0.2"), ip("10.8.0.50")]);
        let ipam = open(&dir, "10.8.0.0/24", "10.8.0.1", None);
        assert_eq!(ipam.allocations().len(), 2);
        assert!(!dir.path().join("network").join("net.json.tmp").exists());
    }

    #[test]
    fn a_file_for_another_subnet_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(open(&dir, "10.9.0.0/24", "10.9.0.1", None));
        let err = Ipam::open(
            &dir.path().join("network").join("net.json"),
            net("10.10.0.0/24"),
            ip("10.10.0.1"),
            None,
        )
        .expect_err("subnet differs");
        assert!(matches!(err, IpamError::SubnetMismatch { .. }), "{err}");
        assert!(err.to_string().contains("10.9.0.0/24"), "{err}");
    }

    #[test]
    fn a_file_of_a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(open(&dir, "10.13.0.0/24", "10.13.0.1", None));
        let path = dir.path().join("network").join("net.json");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\"version\": 1"), "{text}");
        std::fs::write(&path, text.replace("\"version\": 1", "\"version\": 9")).expect("write");
        let err = Ipam::open(&path, net("10.13.0.0/24"), ip("10.13.0.1"), None)
            .expect_err("newer layout");
        assert!(err.to_string().contains("layout 9"), "{err}");
    }

    #[test]
    fn a_torn_temporary_file_does_not_matter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(&dir, "10.11.0.0/24", "10.11.0.1", None);
        ipam.allocate("a", None).expect("a");
        // What a kill -9 between create and rename leaves behind.
        std::fs::write(dir.path().join("network").join("net.json.tmp"), b"{\"subn").expect("write");
        let mut ipam = open(&dir, "10.11.0.0/24", "10.11.0.1", None);
        assert_eq!(ipam.allocations().len(), 1);
        ipam.allocate("b", None).expect("b");
    }

    #[test]
    fn v6_subnets_work_without_enumerating() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(&dir, "fd42:1::/64", "fd42:1::1", None);
        assert_eq!(ipam.allocate("a", None).expect("a"), ip("fd42:1::2"));
        assert_eq!(
            ipam.allocate("b", Some(ip("fd42:1::ffff:ffff:ffff:ffff")))
                .expect("the last address is usable in v6"),
            ip("fd42:1::ffff:ffff:ffff:ffff")
        );
        assert_eq!(ipam.allocate("c", None).expect("c"), ip("fd42:1::3"));
        assert!(matches!(
            ipam.allocate("d", Some(ip("fd42:1::"))),
            Err(IpamError::NotAvailable { .. })
        ));
        // A tiny v6 subnet fills up and wraps like a v4 one.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut small = open(&dir, "fd42:2::/126", "fd42:2::1", None);
        assert_eq!(small.allocate("a", None).expect("a"), ip("fd42:2::2"));
        assert_eq!(small.allocate("b", None).expect("b"), ip("fd42:2::3"));
        assert!(matches!(
            small.allocate("c", None),
            Err(IpamError::Exhausted { .. })
        ));
        small.release(ip("fd42:2::2")).expect("release");
        assert_eq!(small.allocate("c", None).expect("c"), ip("fd42:2::2"));
    }

    #[test]
    fn a_full_subnet_is_exhausted_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(&dir, "10.12.0.0/25", "10.12.0.1", None);
        let mut n = 0;
        let start = std::time::Instant::now();
        while ipam.allocate(&format!("c{n}"), None).is_ok() {
            n += 1;
        }
        eprintln!(
            "allocate (with its fsync): {:?} on average",
            start.elapsed() / (n + 1)
        );
        // 128 addresses less network, broadcast and gateway.
        assert_eq!(n, 125);
    }
}
