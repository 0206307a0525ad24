//! Where a new network's subnet comes from when the user names none: dockerd's default
//! address pools, and its `--default-address-pool base=CIDR,size=N` syntax.

use ipnet::IpNet;

/// A `--default-address-pool` value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid address pool {input:?}: {reason} (expected base=CIDR,size=PREFIXLEN)")]
pub struct PoolError {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

/// dockerd's default pools: `172.17.0.0/16` to `172.31.0.0/16`, each one /16 network, then
/// `192.168.0.0/16` split into /20s.
pub fn default_pools() -> Vec<(IpNet, u8)> {
    let mut pools: Vec<(IpNet, u8)> = (17..=31u8)
        .map(|b| {
            let net = IpNet::new(std::net::Ipv4Addr::new(172, b, 0, 0).into(), 16);
            (net.unwrap_or_default(), 16)
        })
        .collect();
    if let Ok(net) = "192.168.0.0/16".parse() {
        pools.push((net, 20));
    }
    pools
}

/// The first subnet of the pools (in order, each split into subnets of its size) that
/// overlaps none of `in_use` (the host's routes and the other networks). A default route
/// (`/0`) overlaps nothing for this purpose, as in dockerd: every subnet would clash with it.
pub fn choose_subnet(pools: &[(IpNet, u8)], in_use: &[IpNet]) -> Option<IpNet> {
    let in_use: Vec<&IpNet> = in_use.iter().filter(|n| n.prefix_len() > 0).collect();
    for (base, size) in pools {
        let Ok(subnets) = base.subnets(*size) else {
            continue;
        };
        for candidate in subnets {
            if !in_use.iter().any(|used| overlaps(&candidate, used)) {
                return Some(candidate);
            }
        }
    }
    None
}

/// Whether two networks share an address (one contains the other's first address).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Parses dockerd's `base=172.30.0.0/16,size=24`. Host bits in the base are dropped, as
/// dockerd's parser does.
pub fn parse_pool(s: &str) -> Result<(IpNet, u8), PoolError> {
    let err = |reason: String| PoolError {
        input: s.to_string(),
        reason,
    };
    let mut base = None;
    let mut size = None;
    for field in s.split(',') {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| err(format!("field {field:?} is not key=value")))?;
        match key.trim() {
            "base" => {
                let net: IpNet = value
                    .trim()
                    .parse()
                    .map_err(|e| err(format!("base {value:?}: {e}")))?;
                base = Some(net.trunc());
            }
            "size" => {
                let n: u8 = value
                    .trim()
                    .parse()
                    .map_err(|e| err(format!("size {value:?}: {e}")))?;
                size = Some(n);
            }
            other => return Err(err(format!("unknown key {other:?}"))),
        }
    }
    let base = base.ok_or_else(|| err("no base".into()))?;
    let size = size.ok_or_else(|| err("no size".into()))?;
    if size < base.prefix_len() || size > base.max_prefix_len() {
        return Err(err(format!(
            "size {size} must lie between the base's prefix length {} and {}",
            base.prefix_len(),
            base.max_prefix_len()
        )));
    }
    Ok((base, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test network")
    }

    #[test]
    fn default_pools_are_dockerds() {
        let pools = default_pools();
        assert_eq!(pools.len(), 16);
        assert_eq!(pools[0], (net("172.17.0.0/16"), 16));
        assert_eq!(pools[14], (net("172.31.0.0/16"), 16));
        assert_eq!(pools[15], (net("192.168.0.0/16"), 20));
    }

    #[test]
    fn first_free_subnet_is_chosen() {
        let pools = default_pools();
        assert_eq!(choose_subnet(&pools, &[]), Some(net("172.17.0.0/16")));
        let used = [
            net("0.0.0.0/0"),
            net("172.17.0.0/16"),
            net("172.18.5.0/24"),
            net("10.0.0.0/8"),
        ];
        assert_eq!(choose_subnet(&pools, &used), Some(net("172.19.0.0/16")));
        // A route that covers a whole pool pushes the choice past it.
        let used = [net("172.16.0.0/12")];
        assert_eq!(choose_subnet(&pools, &used), Some(net("192.168.0.0/20")));
        let used = [net("172.16.0.0/12"), net("192.168.1.0/24")];
        assert_eq!(choose_subnet(&pools, &used), Some(net("192.168.16.0/20")));
        let used = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(choose_subnet(&pools, &used), None);
    }

    #[test]
    fn v6_pools_work_without_enumerating() {
        let pools = [(net("fd00::/8"), 64)];
        let used = [net("fd00::/64"), net("fd00:0:0:1::/64"), net("::/0")];
        assert_eq!(choose_subnet(&pools, &used), Some(net("fd00:0:0:2::/64")));
    }

    #[test]
    fn pools_parse_as_dockerd_writes_them() {
        assert_eq!(
            parse_pool("base=172.30.0.0/16,size=24").expect("parse"),
            (net("172.30.0.0/16"), 24)
        );
        assert_eq!(
            parse_pool("size=24, base=10.10.1.0/16").expect("parse"),
            (net("10.10.0.0/16"), 24)
        );
        assert!(parse_pool("base=172.30.0.0/16").is_err());
        assert!(parse_pool("base=172.30.0.0/16,size=8").is_err());
        assert!(parse_pool("base=172.30.0.0/16,size=33").is_err());
        assert!(parse_pool("base=nope,size=24").is_err());
        assert!(parse_pool("base=172.30.0.0/16,size=24,color=red").is_err());
        let e = parse_pool("bogus").expect_err("bogus");
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
