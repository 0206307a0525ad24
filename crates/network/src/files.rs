//! The name files every container gets: `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`.
//!
//! The text matches what dockerd 28 writes for the same input (moby's `libnetwork/etchosts`,
//! `libnetwork/internal/resolvconf` and `libnetwork/sandbox_dns_unix.go`), because images and
//! scripts grep these files and users compare them across engines. Only the leading "Generated
//! by Docker Engine" header is left out; the trailing comment that says where the nameservers
//! came from is kept in dockerd's exact form.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a name file could not be made from the user's input.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// An `--add-host` value without a name and a separator.
    #[error("--add-host {value:?}: expected NAME:ADDRESS or NAME=ADDRESS")]
    ExtraHostFormat {
        /// The value as the user gave it.
        value: String,
    },
    /// An `--add-host` value whose address part is not an IP address.
    #[error("--add-host {value:?}: {address:?} is not an IP address")]
    ExtraHostAddress {
        /// The value as the user gave it.
        value: String,
        /// The part after the separator, brackets removed.
        address: String,
    },
}

/// The address part of an `--add-host` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraHostAddr {
    /// A literal address.
    Ip(IpAddr),
    /// The special value `host-gateway`: the caller substitutes the host's address as the
    /// daemon is configured to see it (`--host-gateway-ip`, else the default bridge's gateway).
    HostGateway,
}

/// The `--add-host` value that stands for the host's gateway address.
pub const HOST_GATEWAY: &str = "host-gateway";

/// Parses one `--add-host` value: `NAME:ADDR` or `NAME=ADDR`, the address optionally in
/// brackets (`NAME=[::1]`), or `host-gateway` in place of the address.
pub fn parse_extra_host(value: &str) -> Result<(String, ExtraHostAddr), FilesError> {
    // '=' first, so that an IPv6 address after ':' need not be bracketed (the docker CLI's
    // rule); with ':' only the first one separates, for the same reason.
    let (name, addr) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .ok_or_else(|| FilesError::ExtraHostFormat {
            value: value.to_owned(),
        })?;
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(FilesError::ExtraHostFormat {
            value: value.to_owned(),
        });
    }
    if addr == HOST_GATEWAY {
        return Ok((name.to_owned(), ExtraHostAddr::HostGateway));
    }
    let addr = addr.trim();
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip = bare
        .parse::<IpAddr>()
        .map_err(|_| FilesError::ExtraHostAddress {
            value: value.to_owned(),
            address: bare.to_owned(),
        })?;
    Ok((name.to_owned(), ExtraHostAddr::Ip(ip)))
}

/// The text of `/etc/hostname`.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// The text of a container's `/etc/hosts`, as dockerd 28 writes it: the loopback entries (the
/// IPv6 block only when the container has IPv6), the `--add-host` entries, then one line per
/// address of the container naming its hostname. Without IPv6, IPv6 entries are left out.
pub fn hosts(
    hostname: &str,
    domainname: Option<&str>,
    addrs: &[IpAddr],
    extra: &[(String, IpAddr)],
    ipv6: bool,
) -> String {
    let mut out = String::new();
    let mut line = |ip: IpAddr, names: &str| {
        if ipv6 || ip.is_ipv4() {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{ip}\t{names}");
        }
    };
    line(IpAddr::V4(Ipv4Addr::LOCALHOST), "localhost");
    line(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        "localhost ip6-localhost ip6-loopback",
    );
    line(
        IpAddr::V6(Ipv6Addr::new(0xfe00, 0, 0, 0, 0, 0, 0, 0)),
        "ip6-localnet",
    );
    line(
        IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)),
        "ip6-mcastprefix",
    );
    line(
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
        "ip6-allnodes",
    );
    line(
        IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2)),
        "ip6-allrouters",
    );
    for (name, ip) in extra {
        line(*ip, name);
    }
    if !hostname.is_empty() {
        // The FQDN first, then the bare name when there is a dot: a hostname may itself be an
        // FQDN, or be split across hostname and domainname.
        let mut names = hostname.to_owned();
        if let Some(domain) = domainname.filter(|d| !d.is_empty()) {
            names.push('.');
            names.push_str(domain);
        }
        if let Some((short, _)) = names.split_once('.') {
            let short = short.to_owned();
            names.push(' ');
            names.push_str(&short);
        }
        for ip in addrs {
            line(*ip, &names);
        }
    }
    out
}

/// A parsed `resolv.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` addresses, in order.
    pub nameservers: Vec<IpAddr>,
    /// The domains of the last `search` (or `domain`) line.
    pub search: Vec<String>,
    /// Every `options` value, in order.
    pub options: Vec<String>,
    /// Lines with a directive this parser does not know, kept verbatim.
    pub other: Vec<String>,
    /// `nameserver` values that are not IP addresses (a zone suffix such as `%eth0` counts).
    pub invalid_nameservers: Vec<String>,
}

impl ResolvConf {
    /// Parses a `resolv.conf` as the libc resolver reads it; comments and blank lines go.
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let Some(directive) = fields.next() else {
                continue;
            };
            if directive.starts_with('#') || directive.starts_with(';') {
                continue;
            }
            let args: Vec<&str> = fields.collect();
            match directive {
                "nameserver" => {
                    if let Some(value) = args.first() {
                        match value.parse::<IpAddr>() {
                            Ok(ip) => rc.nameservers.push(ip),
                            Err(_) => rc.invalid_nameservers.push((*value).to_owned()),
                        }
                    }
                }
                // `domain` is the old spelling of `search`; the last line of either wins.
                "search" | "domain" => {
                    if !args.is_empty() {
                        rc.search = args.iter().map(|s| (*s).to_owned()).collect();
                    }
                }
                "options" => rc.options.extend(args.iter().map(|s| (*s).to_owned())),
                _ => rc.other.push(line.to_owned()),
            }
        }
        rc
    }

    fn has_option(&self, name: &str) -> bool {
        self.options
            .iter()
            .any(|o| o.split_once(':').map_or(o.as_str(), |(k, _)| k) == name)
    }
}

/// dockerd's fallback nameservers (Google Public DNS), used when the host has none that a
/// container on the default bridge can reach.
const DEFAULT_NAMESERVERS_V4: [Ipv4Addr; 2] =
    [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];
const DEFAULT_NAMESERVERS_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888),
    Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8844),
];

/// The text of a container's `/etc/resolv.conf`, as dockerd 28 writes it.
///
/// `host_path` and `host_text` are the host's file (named in the trailing comment). `dns`,
/// `search` and `options` are `--dns`, `--dns-search` and `--dns-option`: each, when not empty,
/// replaces that part of the host's file (`--dns-search .` means no search domains).
///
/// With `embedded` (a user-defined network) the only nameserver is the embedded server, the
/// replaced ones are listed as its upstreams in the comment, and `ndots:0` is added unless a
/// valid `ndots` is already set. Without it (the default bridge), loopback nameservers, which
/// only work in the host's namespace, are dropped, and so are IPv6 ones unless `ipv6`; if none
/// is left, dockerd's fallback public servers are used. Neither applies to `--dns` values.
pub fn resolv_conf(
    host_path: &str,
    host_text: &str,
    embedded: Option<IpAddr>,
    dns: &[IpAddr],
    search: &[String],
    options: &[String],
    ipv6: bool,
) -> String {
    let mut rc = ResolvConf::parse(host_text);
    let mut ndots_from = rc.has_option("ndots").then_some("host");
    let mut overrides = Vec::new();
    if !dns.is_empty() {
        rc.nameservers = dns.to_vec();
        overrides.push("nameservers");
    }
    if !search.is_empty() {
        rc.search = search.iter().filter(|s| *s != ".").cloned().collect();
        overrides.push("search");
    }
    if !options.is_empty() {
        rc.options = options.to_vec();
        ndots_from = rc.has_option("ndots").then_some("override");
        overrides.push("options");
    }
    let ns_override = !dns.is_empty();

    let mut warnings = Vec::new();
    let mut upstreams = Vec::new();
    let transform = match embedded {
        Some(server) => {
            // Nameservers from the host's file are reached from the host's namespace (where the
            // embedded server runs); dockerd marks them so.
            upstreams = rc
                .nameservers
                .iter()
                .map(|ns| {
                    if ns_override {
                        ns.to_string()
                    } else {
                        format!("host({ns})")
                    }
                })
                .collect();
            rc.nameservers = vec![server];
            // An ndots value the resolver cannot read would be ignored; replace it.
            rc.options.retain(|o| match o.split_once(':') {
                Some(("ndots", v)) => v.parse::<u32>().is_ok(),
                _ => true,
            });
            if !rc.has_option("ndots") {
                rc.options.push("ndots:0".to_owned());
                ndots_from = Some("internal");
            }
            if upstreams.is_empty() {
                warnings.push("NO EXTERNAL NAMESERVERS DEFINED");
            }
            "internal resolver"
        }
        None => {
            if !ns_override {
                rc.nameservers
                    .retain(|ns| !ns.to_canonical().is_loopback() && (ipv6 || ns.is_ipv4()));
                if rc.nameservers.is_empty() {
                    rc.nameservers
                        .extend(DEFAULT_NAMESERVERS_V4.iter().map(|a| IpAddr::V4(*a)));
                    if ipv6 {
                        rc.nameservers
                            .extend(DEFAULT_NAMESERVERS_V6.iter().map(|a| IpAddr::V6(*a)));
                    }
                    warnings.push("Used default nameservers.");
                }
            }
            "legacy"
        }
    };

    let mut out = String::new();
    // Writing to a String cannot fail.
    for ns in &rc.nameservers {
        let _ = writeln!(out, "nameserver {ns}");
    }
    if !rc.search.is_empty() {
        let _ = writeln!(out, "search {}", rc.search.join(" "));
    }
    if !rc.options.is_empty() {
        let _ = writeln!(out, "options {}", rc.options.join(" "));
    }
    for line in &rc.other {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "# Based on host file: '{host_path}' ({transform})");
    for warning in warnings {
        let _ = writeln!(out, "# {warning}");
    }
    if !upstreams.is_empty() {
        let _ = writeln!(out, "# ExtServers: [{}]", upstreams.join(" "));
    }
    if !rc.invalid_nameservers.is_empty() {
        let _ = writeln!(
            out,
            "# Invalid nameservers: [{}]",
            rc.invalid_nameservers.join(" ")
        );
    }
    let _ = writeln!(out, "# Overrides: [{}]", overrides.join(" "));
    if let Some(from) = ndots_from {
        let _ = writeln!(out, "# Option ndots from: {from}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    // Expected texts below are what moby v28.5.2 produces for the same input: its
    // libnetwork/etchosts/etchosts_test.go (TestBuildDefault, TestBuildNoIPv6, TestUpdate) and
    // the record layout of libnetwork/sandbox_dns_unix.go (makeHostsRecs).
    #[test]
    fn hosts_default_ipv6() {
        assert_eq!(
            hosts("", None, &[], &[], true),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
        );
    }

    #[test]
    fn hosts_no_ipv6_drops_ipv6_entries() {
        let extra = vec![
            ("another.example".to_owned(), ip("fdbb:c59c:d015::3")),
            ("another.example".to_owned(), ip("10.11.12.13")),
        ];
        assert_eq!(
            hosts("", None, &[], &extra, false),
            "127.0.0.1\tlocalhost\n10.11.12.13\tanother.example\n"
        );
        assert_eq!(
            hosts("abc", None, &[ip("172.18.0.2"), ip("fd00::2")], &[], false),
            "127.0.0.1\tlocalhost\n172.18.0.2\tabc\n"
        );
    }

    #[test]
    fn hosts_own_addresses_after_extra_hosts() {
        let extra = vec![("db".to_owned(), ip("10.0.0.5"))];
        let text = hosts(
            "testhostname",
            Some("testdomainname"),
            &[ip("10.11.12.13"), ip("fd00::d")],
            &extra,
            true,
        );
        assert!(text.ends_with(
            "ff02::2\tip6-allrouters\n10.0.0.5\tdb\n10.11.12.13\ttesthostname.testdomainname testhostname\nfd00::d\ttesthostname.testdomainname testhostname\n"
        ));
        // A hostname that is itself an FQDN also gets its first label.
        assert!(
            hosts("web.example.com", None, &[ip("10.0.0.2")], &[], false)
                .ends_with("10.0.0.2\tweb.example.com web\n")
        );
        assert!(hosts("web", Some(""), &[ip("10.0.0.2")], &[], false).ends_with("10.0.0.2\tweb\n"));
    }

    #[test]
    fn hostname_is_one_line() {
        assert_eq!(hostname_file("abc123"), "abc123\n");
    }

    #[test]
    fn extra_host_forms() {
        let parse = |s| parse_extra_host(s).expect("valid --add-host");
        assert_eq!(
            parse("db:10.0.0.5"),
            ("db".to_owned(), ExtraHostAddr::Ip(ip("10.0.0.5")))
        );
        assert_eq!(
            parse("db=10.0.0.5"),
            ("db".to_owned(), ExtraHostAddr::Ip(ip("10.0.0.5")))
        );
        assert_eq!(
            parse("v6:::1"),
            ("v6".to_owned(), ExtraHostAddr::Ip(ip("::1")))
        );
        assert_eq!(
            parse("v6=[fd00::1]"),
            ("v6".to_owned(), ExtraHostAddr::Ip(ip("fd00::1")))
        );
        assert_eq!(
            parse("v6:[fd00::1]"),
            ("v6".to_owned(), ExtraHostAddr::Ip(ip("fd00::1")))
        );
        assert_eq!(
            parse("gw:host-gateway"),
            ("gw".to_owned(), ExtraHostAddr::HostGateway)
        );
        assert!(matches!(
            parse_extra_host("nohost"),
            Err(FilesError::ExtraHostFormat { .. })
        ));
        assert!(matches!(
            parse_extra_host(":10.0.0.1"),
            Err(FilesError::ExtraHostFormat { .. })
        ));
        assert!(matches!(
            parse_extra_host("db:not-an-ip"),
            Err(FilesError::ExtraHostAddress { .. })
        ));
        assert!(matches!(
            parse_extra_host("db=[10.0.0.1"),
            Err(FilesError::ExtraHostAddress { .. })
        ));
    }

    // Expected texts below are the golden files of moby v28.5.2,
    // libnetwork/internal/resolvconf/testdata/TestRCTransformForLegacyNw/*.golden and
    // TestRCTransformForIntNS/*.golden, without dockerd's leading header.
    const HOST: &str = "/etc/resolv.conf";

    #[test]
    fn legacy_keeps_routable_nameservers() {
        let host = "nameserver 10.0.0.1\nnameserver fdb6:b8fe:b528::1\n";
        assert_eq!(
            resolv_conf(HOST, host, None, &[], &[], &[], false),
            "nameserver 10.0.0.1\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: []\n"
        );
        assert_eq!(
            resolv_conf(HOST, host, None, &[], &[], &[], true),
            "nameserver 10.0.0.1\nnameserver fdb6:b8fe:b528::1\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: []\n"
        );
    }

    #[test]
    fn legacy_replaces_loopback_with_defaults() {
        let host = "nameserver 127.0.0.53\n";
        assert_eq!(
            resolv_conf(HOST, host, None, &[], &[], &[], false),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Used default nameservers.\n# Overrides: []\n"
        );
        assert_eq!(
            resolv_conf(HOST, host, None, &[], &[], &[], true),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Used default nameservers.\n# Overrides: []\n"
        );
        // An IPv6 nameserver is kept when the container has IPv6, and the defaults are not
        // needed then.
        let host = "nameserver 127.0.0.53\nnameserver fd3e:2d1a:1f5a::1\n";
        assert_eq!(
            resolv_conf(HOST, host, None, &[], &[], &[], true),
            "nameserver fd3e:2d1a:1f5a::1\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: []\n"
        );
    }

    #[test]
    fn legacy_override_nameservers_kept_as_given() {
        assert_eq!(
            resolv_conf(
                HOST,
                "nameserver 10.0.0.1\n",
                None,
                &[ip("127.0.0.1"), ip("::1")],
                &[],
                &[],
                false
            ),
            "nameserver 127.0.0.1\nnameserver ::1\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: [nameservers]\n"
        );
    }

    #[test]
    fn embedded_server_replaces_nameservers() {
        assert_eq!(
            resolv_conf(
                HOST,
                "nameserver 10.0.0.1\nnameserver fdb6:b8fe:b528::1\n",
                Some(ip("127.0.0.11")),
                &[],
                &[],
                &[],
                true
            ),
            "nameserver 127.0.0.11\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(10.0.0.1) host(fdb6:b8fe:b528::1)]\n# Overrides: []\n# Option ndots from: internal\n"
        );
        assert_eq!(
            resolv_conf(HOST, "", Some(ip("127.0.0.11")), &[], &[], &[], false),
            "nameserver 127.0.0.11\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# NO EXTERNAL NAMESERVERS DEFINED\n# Overrides: []\n# Option ndots from: internal\n"
        );
        assert_eq!(
            resolv_conf(
                HOST,
                "nameserver 127.0.0.53\n",
                Some(ip("127.0.0.11")),
                &[ip("127.0.0.53")],
                &[],
                &[],
                false
            ),
            "nameserver 127.0.0.11\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [127.0.0.53]\n# Overrides: [nameservers]\n# Option ndots from: internal\n"
        );
    }

    #[test]
    fn embedded_server_keeps_valid_ndots() {
        // TestRCTransformForIntNS "ndots present and required" and "ndots host, override and
        // required".
        let host = "nameserver 127.0.0.53\noptions ndots:1\n";
        assert_eq!(
            resolv_conf(HOST, host, Some(ip("127.0.0.11")), &[], &[], &[], false),
            "nameserver 127.0.0.11\noptions ndots:1\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(127.0.0.53)]\n# Overrides: []\n# Option ndots from: host\n"
        );
        assert_eq!(
            resolv_conf(
                HOST,
                host,
                Some(ip("127.0.0.11")),
                &[],
                &[],
                &["ndots:2".to_owned()],
                false
            ),
            "nameserver 127.0.0.11\noptions ndots:2\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(127.0.0.53)]\n# Overrides: [options]\n# Option ndots from: override\n"
        );
        // TestRCTransformForIntNS "Extra required options": the host's options stay in order.
        let host = "nameserver 127.0.0.53\noptions trust-ad\n";
        assert_eq!(
            resolv_conf(HOST, host, Some(ip("127.0.0.11")), &[], &[], &[], false),
            "nameserver 127.0.0.11\noptions trust-ad ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(127.0.0.53)]\n# Overrides: []\n# Option ndots from: internal\n"
        );
    }

    #[test]
    fn search_and_options_overrides() {
        // TestRCModify "Overrides" in legacy form.
        let host = "nameserver 1.2.3.4\nsearch invalid\noptions ndots:0\n";
        assert_eq!(
            resolv_conf(
                HOST,
                host,
                None,
                &[ip("2.3.4.5"), ip("fdba:acdd:587c::53")],
                &["com".to_owned(), "invalid".to_owned(), "example".to_owned()],
                &[
                    "ndots:1".to_owned(),
                    "edns0".to_owned(),
                    "trust-ad".to_owned()
                ],
                true
            ),
            "nameserver 2.3.4.5\nnameserver fdba:acdd:587c::53\nsearch com invalid example\noptions ndots:1 edns0 trust-ad\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: [nameservers search options]\n# Option ndots from: override\n"
        );
        // `--dns-search .` clears the host's search domains.
        let text = resolv_conf(
            HOST,
            "nameserver 10.0.0.1\nsearch example.com\n",
            None,
            &[],
            &[".".to_owned()],
            &[],
            false,
        );
        assert_eq!(
            text,
            "nameserver 10.0.0.1\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Overrides: [search]\n"
        );
    }

    #[test]
    fn unknown_directives_and_invalid_nameservers() {
        // TestRCUnknownDirectives and TestRCInvalidNS.
        let host = "nameserver 10.0.0.1\noptions ndots:1\nsomething unexpected\nnameserver 1.2.3.4.5\n# comment\n; comment\nunrecognised thing\n";
        assert_eq!(
            resolv_conf(HOST, host, None, &[], &[], &[], false),
            "nameserver 10.0.0.1\noptions ndots:1\nsomething unexpected\nunrecognised thing\n\n# Based on host file: '/etc/resolv.conf' (legacy)\n# Invalid nameservers: [1.2.3.4.5]\n# Overrides: []\n# Option ndots from: host\n"
        );
    }

    #[test]
    fn parse_keeps_last_search_line() {
        let rc = ResolvConf::parse("domain a.example\nsearch b.example c.example\n");
        assert_eq!(rc.search, vec!["b.example", "c.example"]);
    }
}
