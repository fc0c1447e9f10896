//! Network addresses the configuration names: CIDR blocks (`TRUSTED_PROXIES`) and the
//! client address behind trusted proxies (`X-Forwarded-For`).

use std::net::IpAddr;

/// One address block, e.g. `10.0.0.0/8` or `::1/128` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: bad prefix length"))?,
            None => max,
        };
        Ok(Self { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

pub fn parse_cidrs(list: &[String]) -> Result<Vec<Cidr>, String> {
    list.iter().filter(|s| !s.trim().is_empty()).map(|s| Cidr::parse(s)).collect()
}

/// The client's address: the peer, unless the peer is a trusted proxy; then the right-most
/// address of `X-Forwarded-For` that is not itself a trusted proxy (addresses further left
/// were written by the client and prove nothing).
pub fn client_addr(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut client = peer;
    for part in header.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            // A malformed entry: stop at what the trusted hops vouched for.
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("::ffff:127.0.0.1")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nonsense").is_err());
        assert!(parse_cidrs(&["10.0.0.0/8".into(), " 127.0.0.1/32".into()]).is_ok());
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_peers() {
        let trusted = parse_cidrs(&["10.0.0.0/8".into()]).unwrap();
        // An untrusted peer cannot choose its address.
        assert_eq!(client_addr(ip("203.0.113.9"), Some("1.2.3.4"), &trusted), ip("203.0.113.9"));
        // Through the gateway: the address the gateway saw.
        assert_eq!(client_addr(ip("10.0.0.5"), Some("198.51.100.7"), &trusted), ip("198.51.100.7"));
        // A client that sends its own header: the right-most untrusted hop wins, not its claim.
        assert_eq!(client_addr(ip("10.0.0.5"), Some("6.6.6.6, 198.51.100.7"), &trusted), ip("198.51.100.7"));
        // Two trusted hops.
        assert_eq!(client_addr(ip("10.0.0.5"), Some("198.51.100.7, 10.0.0.9"), &trusted), ip("198.51.100.7"));
        assert_eq!(client_addr(ip("10.0.0.5"), None, &trusted), ip("10.0.0.5"));
        assert_eq!(client_addr(ip("10.0.0.5"), Some("garbage"), &trusted), ip("10.0.0.5"));
    }
}
