//! The outbound policy: which hosts a request may name and which addresses it may reach.
//!
//! Two checks, both pure (no I/O here): [`FetchPolicy::check_url`] on every URL a request
//! visits (the first and each redirect's), and [`FetchPolicy::check_address`] on every
//! address the client may connect to (an IP literal in the URL, or each address DNS
//! returned). Addresses that are not public unicast (loopback, private, link-local, ...)
//! are refused unless `fetch.allowed_networks` lists them; cloud metadata addresses only
//! when an entry names exactly them. Every refusal names the rule that refused it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use reqwest::Url;

use crate::config::FetchConfig;

/// A request the policy refused; the message names the rule (`fetch.allowed_hosts`, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("fetch refused: {0}")]
pub struct Refused(pub String);

/// The parsed `[fetch]` host and address rules.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    hosts: HostRules,
    allowed_networks: Vec<IpNet>,
}

#[derive(Clone, Debug)]
enum HostRules {
    Any,
    /// Exact names (lower case, no trailing dot; addresses in their canonical text) and
    /// `*.` suffixes, kept as `.example.com`.
    Listed {
        exact: Vec<String>,
        suffixes: Vec<String>,
    },
}

impl FetchPolicy {
    /// Parses the rules of `config`; an entry that could never match is an error naming
    /// the field and the entry.
    pub fn new(config: &FetchConfig) -> anyhow::Result<Self> {
        let mut exact = Vec::new();
        let mut suffixes = Vec::new();
        let mut any = false;
        for entry in &config.allowed_hosts {
            let bad = |why: &str| {
                anyhow::anyhow!(
                    "fetch.allowed_hosts: {entry:?} {why}: write \"*\", a host name or address, or \"*.example.com\""
                )
            };
            if entry == "*" {
                any = true;
            } else if let Some(suffix) = entry.strip_prefix("*.") {
                if !is_host_name(suffix) {
                    return Err(bad("is not a host name pattern"));
                }
                suffixes.push(format!(".{}", normalize_name(suffix)));
            } else if let Some(ip) = parse_ip_literal(entry) {
                exact.push(ip.to_string());
            } else if is_host_name(entry) {
                exact.push(normalize_name(entry));
            } else {
                return Err(bad("is not a host name"));
            }
        }
        let hosts = if any {
            HostRules::Any
        } else {
            HostRules::Listed { exact, suffixes }
        };
        let mut allowed_networks = Vec::new();
        for entry in &config.allowed_networks {
            let network = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "fetch.allowed_networks: {entry:?} is not an address or a network: write \"10.1.0.0/16\", \"127.0.0.1/32\" or \"::1\""
                    )
                })?;
            allowed_networks.push(network.trunc());
        }
        Ok(Self {
            hosts,
            allowed_networks,
        })
    }

    /// Checks a URL before anything is sent to it (the first URL and every redirect's):
    /// http or https, no credentials, a host `fetch.allowed_hosts` allows, and, when the
    /// host is an address, an address the policy allows. A host name's addresses are
    /// checked when it is resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(Refused(format!(
                    "{other}: URLs are not allowed: only http and https"
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused(
                "the URL carries credentials (user:password@host): send them in an Authorization header instead".into(),
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => HostName::Name(normalize_name(name)),
            Some(url::Host::Ipv4(ip)) => HostName::Address(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => HostName::Address(IpAddr::V6(ip)),
            None => return Err(Refused(format!("the URL {url} has no host"))),
        };
        let text = match &host {
            HostName::Name(name) => name.clone(),
            HostName::Address(ip) => ip.to_string(),
        };
        if !self.host_allowed(&text) {
            return Err(Refused(format!("{text} is not in fetch.allowed_hosts")));
        }
        match host {
            HostName::Address(ip) => self
                .check_address(ip)
                .map_err(|denied| Refused(denied.to_string())),
            HostName::Name(_) => Ok(()),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        match &self.hosts {
            HostRules::Any => true,
            HostRules::Listed { exact, suffixes } => {
                exact.iter().any(|entry| entry == host)
                    || suffixes
                        .iter()
                        .any(|suffix| host.ends_with(suffix.as_str()))
            }
        }
    }

    /// Whether the client may connect to `ip`: a public address, or one that
    /// `fetch.allowed_networks` lists.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), AddressDenied> {
        // `::ffff:10.0.0.1` reaches 10.0.0.1: judge (and allow) it as that address.
        let ip = ip.to_canonical();
        let Some(class) = classify(ip) else {
            return Ok(());
        };
        let listed = if class == AddressClass::Metadata {
            self.allowed_networks.iter().any(|network| {
                network.prefix_len() == network.max_prefix_len() && network.addr() == ip
            })
        } else {
            self.allowed_networks
                .iter()
                .any(|network| network.contains(&ip))
        };
        if listed {
            Ok(())
        } else {
            Err(AddressDenied { ip, class })
        }
    }
}

enum HostName {
    Name(String),
    Address(IpAddr),
}

/// An address the policy refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressDenied {
    pub ip: IpAddr,
    pub class: AddressClass,
}

impl AddressDenied {
    /// The rule to change to allow it.
    fn rule(&self) -> &'static str {
        match self.class {
            AddressClass::Metadata => "fetch.allowed_networks must name it exactly to allow it",
            _ => "fetch.allowed_networks",
        }
    }

    /// `localhost resolves to 127.0.0.1, a loopback address (fetch.allowed_networks)`.
    pub fn resolved_from(&self, name: &str) -> Refused {
        Refused(format!(
            "{name} resolves to {}, {} ({})",
            self.ip,
            self.class.describe(),
            self.rule()
        ))
    }
}

impl std::fmt::Display for AddressDenied {
    /// `10.0.0.1 is a private address (fetch.allowed_networks)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {} ({})",
            self.ip,
            self.class.describe(),
            self.rule()
        )
    }
}

/// Why an address is not public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    /// RFC 1918, and IPv6 site-local and local-use NAT64.
    Private,
    LinkLocal,
    UniqueLocal,
    /// 100.64.0.0/10, the carrier-grade NAT shared space.
    SharedCgnat,
    Broadcast,
    Multicast,
    Documentation,
    Benchmarking,
    /// A cloud provider's instance metadata service.
    Metadata,
    /// Any other special-purpose range (IANA's registries), or outside IPv6's global
    /// unicast space.
    Reserved,
    /// An IPv6 address that embeds an IPv4 one (IPv4-compatible, NAT64, 6to4) that is not
    /// public.
    EmbedsIpv4(Ipv4Addr, Box<AddressClass>),
}

impl AddressClass {
    pub fn describe(&self) -> String {
        match self {
            AddressClass::Unspecified => "an unspecified address".into(),
            AddressClass::Loopback => "a loopback address".into(),
            AddressClass::Private => "a private address".into(),
            AddressClass::LinkLocal => "a link-local address".into(),
            AddressClass::UniqueLocal => "a unique-local address".into(),
            AddressClass::SharedCgnat => "a shared (CGNAT) address".into(),
            AddressClass::Broadcast => "a broadcast address".into(),
            AddressClass::Multicast => "a multicast address".into(),
            AddressClass::Documentation => "a documentation address".into(),
            AddressClass::Benchmarking => "a benchmarking address".into(),
            AddressClass::Metadata => "a cloud metadata address".into(),
            AddressClass::Reserved => "a reserved address".into(),
            AddressClass::EmbedsIpv4(v4, class) => {
                format!("an IPv6 form of {v4}, {}", class.describe())
            }
        }
    }
}

/// Instance metadata services (AWS, GCP, Azure, OpenStack: 169.254.169.254; Oracle:
/// 192.0.0.192; Alibaba: 100.100.100.200; AWS over IPv6: fd00:ec2::254).
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(192, 0, 0, 192),
    Ipv4Addr::new(100, 100, 100, 200),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// The class of a non-public address, or `None` for a public unicast one. IPv4-mapped
/// addresses are expected in their IPv4 form ([`IpAddr::to_canonical`]).
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    if METADATA_V4.contains(&ip) {
        return Some(Metadata);
    }
    let class = if in_v4(ip, [0, 0, 0, 0], 8) {
        Unspecified
    } else if in_v4(ip, [127, 0, 0, 0], 8) {
        Loopback
    } else if in_v4(ip, [10, 0, 0, 0], 8)
        || in_v4(ip, [172, 16, 0, 0], 12)
        || in_v4(ip, [192, 168, 0, 0], 16)
    {
        Private
    } else if in_v4(ip, [169, 254, 0, 0], 16) {
        LinkLocal
    } else if in_v4(ip, [100, 64, 0, 0], 10) {
        SharedCgnat
    } else if ip == Ipv4Addr::BROADCAST {
        Broadcast
    } else if in_v4(ip, [224, 0, 0, 0], 4) {
        Multicast
    } else if in_v4(ip, [192, 0, 2, 0], 24)
        || in_v4(ip, [198, 51, 100, 0], 24)
        || in_v4(ip, [203, 0, 113, 0], 24)
    {
        Documentation
    } else if in_v4(ip, [198, 18, 0, 0], 15) {
        Benchmarking
    } else if in_v4(ip, [192, 0, 0, 0], 24)
        || in_v4(ip, [192, 88, 99, 0], 24)
        || in_v4(ip, [240, 0, 0, 0], 4)
    {
        // IETF protocol assignments, the deprecated 6to4 relay anycast, and 240/4.
        Reserved
    } else {
        return None;
    };
    Some(class)
}

fn in_v6(ip: Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(network)) & mask
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    if METADATA_V6.contains(&ip) {
        return Some(Metadata);
    }
    let bits = u128::from(ip);
    // Forms that carry an IPv4 address: judged by it. (IPv4-mapped ones arrive already
    // converted by `to_canonical`.)
    let embedded = if ip == Ipv6Addr::UNSPECIFIED {
        return Some(Unspecified);
    } else if ip == Ipv6Addr::LOCALHOST {
        return Some(Loopback);
    } else if in_v6(ip, [0; 8], 96) || in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) {
        // IPv4-compatible (deprecated) and IPv4-mapped.
        Some(Ipv4Addr::from(bits as u32))
    } else if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        // NAT64's well-known prefix.
        Some(Ipv4Addr::from(bits as u32))
    } else if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        // 6to4: the IPv4 address follows the prefix.
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    };
    if let Some(v4) = embedded {
        return classify_v4(v4).map(|class| EmbedsIpv4(v4, Box::new(class)));
    }
    let class = if in_v6(ip, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10) {
        LinkLocal
    } else if in_v6(ip, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7) {
        UniqueLocal
    } else if in_v6(ip, [0xfec0, 0, 0, 0, 0, 0, 0, 0], 10)
        || in_v6(ip, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
    {
        // Deprecated site-local, and local-use NAT64.
        Private
    } else if in_v6(ip, [0xff00, 0, 0, 0, 0, 0, 0, 0], 8) {
        Multicast
    } else if in_v6(ip, [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32)
        || in_v6(ip, [0x3fff, 0, 0, 0, 0, 0, 0, 0], 20)
    {
        Documentation
    } else if in_v6(ip, [0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48) {
        Benchmarking
    } else if in_v6(ip, [0x2001, 0, 0, 0, 0, 0, 0, 0], 23)
        || in_v6(ip, [0x100, 0, 0, 0, 0, 0, 0, 0], 64)
        || in_v6(ip, [0x5f00, 0, 0, 0, 0, 0, 0, 0], 16)
        || !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
    {
        // IETF protocol assignments (Teredo among them), discard-only, SRv6, and
        // everything outside global unicast 2000::/3.
        Reserved
    } else {
        return None;
    };
    Some(class)
}

/// `[::1]` or `::1` or `10.0.0.1` as written in the config.
fn parse_ip_literal(text: &str) -> Option<IpAddr> {
    let inner = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    inner.parse().ok()
}

fn is_host_name(text: &str) -> bool {
    let text = text.strip_suffix('.').unwrap_or(text);
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Lower case, without the trailing dot of a fully qualified name.
fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], networks: &[&str]) -> FetchPolicy {
        FetchPolicy::new(&FetchConfig {
            allowed_hosts: hosts.iter().map(|host| host.to_string()).collect(),
            allowed_networks: networks.iter().map(|net| net.to_string()).collect(),
            ..FetchConfig::default()
        })
        .unwrap()
    }

    fn class_of(text: &str) -> Option<AddressClass> {
        classify(text.parse::<IpAddr>().unwrap().to_canonical())
    }

    #[test]
    fn public_addresses_are_allowed() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ] {
            assert_eq!(class_of(public), None, "{public}");
        }
    }

    #[test]
    fn special_ipv4_ranges_are_classified() {
        use AddressClass::*;
        for (ip, class) in [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.1.1", LinkLocal),
            ("169.254.169.254", Metadata),
            ("100.100.100.200", Metadata),
            ("192.0.0.192", Metadata),
            ("100.64.0.1", SharedCgnat),
            ("100.127.255.255", SharedCgnat),
            ("255.255.255.255", Broadcast),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.1", Benchmarking),
            ("192.0.0.8", Reserved),
            ("240.0.0.1", Reserved),
        ] {
            assert_eq!(class_of(ip), Some(class), "{ip}");
        }
    }

    #[test]
    fn special_ipv6_ranges_are_classified() {
        use AddressClass::*;
        for (ip, class) in [
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fd00:ec2::254", Metadata),
            ("fec0::1", Private),
            ("64:ff9b:1::1", Private),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("2001:2::1", Benchmarking),
            ("2001::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
        ] {
            assert_eq!(class_of(ip), Some(class), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        // IPv4-mapped: converted to the IPv4 address itself.
        assert_eq!(class_of("::ffff:127.0.0.1"), Some(AddressClass::Loopback));
        assert_eq!(
            class_of("::ffff:169.254.169.254"),
            Some(AddressClass::Metadata)
        );
        assert_eq!(class_of("::ffff:8.8.8.8"), None);
        for (ip, v4) in [
            ("::127.0.0.1", "127.0.0.1"),
            ("::10.0.0.1", "10.0.0.1"),
            ("64:ff9b::a00:1", "10.0.0.1"),
            ("64:ff9b::7f00:1", "127.0.0.1"),
            ("2002:7f00:1::1", "127.0.0.1"),
            ("2002:a9fe:a9fe::", "169.254.169.254"),
        ] {
            let class = class_of(ip).unwrap_or_else(|| panic!("{ip} should be refused"));
            match class {
                AddressClass::EmbedsIpv4(embedded, _) => {
                    assert_eq!(embedded.to_string(), v4, "{ip}")
                }
                other => panic!("{ip}: {other:?}"),
            }
        }
        assert_eq!(class_of("64:ff9b::808:808"), None);
        assert_eq!(class_of("2002:808:808::1"), None);
    }

    #[test]
    fn refusals_name_the_address_its_class_and_the_rule() {
        let policy = policy(&["*"], &[]);
        let refused = |ip: &str| {
            policy
                .check_address(ip.parse().unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("10.0.0.1"),
            "10.0.0.1 is a private address (fetch.allowed_networks)"
        );
        assert_eq!(
            refused("::ffff:127.0.0.1"),
            "127.0.0.1 is a loopback address (fetch.allowed_networks)"
        );
        assert_eq!(
            refused("169.254.169.254"),
            "169.254.169.254 is a cloud metadata address (fetch.allowed_networks must name it exactly to allow it)"
        );
        assert_eq!(
            refused("::127.0.0.1"),
            "::7f00:1 is an IPv6 form of 127.0.0.1, a loopback address (fetch.allowed_networks)"
        );
    }

    #[test]
    fn allowed_networks_open_exactly_what_they_contain() {
        let policy = policy(&["*"], &["127.0.0.1/32", "10.1.0.0/16", "::1"]);
        let allowed = |ip: &str| policy.check_address(ip.parse().unwrap()).is_ok();
        assert!(allowed("127.0.0.1"));
        assert!(allowed("::ffff:127.0.0.1"));
        assert!(!allowed("127.0.0.2"));
        assert!(allowed("10.1.200.3"));
        assert!(!allowed("10.2.0.1"));
        assert!(allowed("::1"));
        assert!(!allowed("fe80::1"));
        assert!(allowed("8.8.8.8"));
    }

    #[test]
    fn metadata_addresses_need_an_entry_naming_exactly_them() {
        let broad = policy(&["*"], &["169.254.0.0/16", "fd00::/8"]);
        assert!(broad.check_address("169.254.1.1".parse().unwrap()).is_ok());
        assert!(
            broad
                .check_address("169.254.169.254".parse().unwrap())
                .is_err()
        );
        assert!(
            broad
                .check_address("fd00:ec2::254".parse().unwrap())
                .is_err()
        );
        let exact = policy(&["*"], &["169.254.169.254/32", "fd00:ec2::254"]);
        assert!(
            exact
                .check_address("169.254.169.254".parse().unwrap())
                .is_ok()
        );
        assert!(
            exact
                .check_address("fd00:ec2::254".parse().unwrap())
                .is_ok()
        );
    }

    fn check(policy: &FetchPolicy, url: &str) -> Result<(), String> {
        let url = Url::parse(url).map_err(|err| err.to_string())?;
        policy
            .check_url(&url)
            .map_err(|refused| refused.to_string())
    }

    #[test]
    fn every_spelling_of_a_loopback_address_is_refused() {
        let policy = policy(&["*"], &[]);
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://017700000001/",
            "http://127.0.0.1.:8080/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "https://user@127.0.0.1/",
        ] {
            let err = check(&policy, url).unwrap_err();
            assert!(
                err.contains("loopback address") || err.contains("credentials"),
                "{url}: {err}"
            );
        }
        // Userinfo does not hide the real host.
        let err = check(&policy, "http://api.example.com@10.0.0.1/").unwrap_err();
        assert!(err.contains("credentials"), "{err}");
        let err = check(&policy, "http://0.0.0.0:80/").unwrap_err();
        assert!(err.contains("unspecified"), "{err}");
    }

    #[test]
    fn only_http_and_https_are_allowed() {
        let policy = policy(&["*"], &[]);
        assert!(check(&policy, "https://example.com/").is_ok());
        assert!(check(&policy, "http://example.com:8080/x?y").is_ok());
        for url in ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"] {
            let err = check(&policy, url).unwrap_err();
            assert!(err.contains("only http and https"), "{url}: {err}");
        }
    }

    #[test]
    fn the_host_allowlist_matches_names_suffixes_and_addresses() {
        let policy = policy(
            &[
                "api.example.com",
                "*.svc.example.org",
                "203.0.113.7",
                "[::1]",
            ],
            &["::1"],
        );
        assert!(check(&policy, "https://api.example.com/x").is_ok());
        assert!(check(&policy, "https://API.Example.com./x").is_ok());
        assert!(check(&policy, "https://a.svc.example.org/").is_ok());
        assert!(check(&policy, "https://a.b.svc.example.org/").is_ok());
        assert!(check(&policy, "http://[::1]:9/").is_ok());
        for (url, host) in [
            ("https://svc.example.org/", "svc.example.org"),
            ("https://example.com/", "example.com"),
            (
                "https://api.example.com.evil.net/",
                "api.example.com.evil.net",
            ),
            ("https://evilsvc.example.org/", "evilsvc.example.org"),
        ] {
            assert_eq!(
                check(&policy, url).unwrap_err(),
                format!("fetch refused: {host} is not in fetch.allowed_hosts"),
                "{url}"
            );
        }
        // An allowed host is still held to the address rules.
        let err = check(&policy, "http://203.0.113.7/").unwrap_err();
        assert!(err.contains("documentation address"), "{err}");
    }
}
