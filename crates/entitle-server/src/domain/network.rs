//! Which address a request came from. Behind a reverse proxy every connection comes from the
//! proxy, so limits and logs need the address the proxy saw; but a client can write any
//! `X-Forwarded-For` it likes, so those headers count only when a trusted proxy sent them.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(
            address
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{text:?} is not an address or CIDR range"))?,
        );
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

/// IPv4 clients of a dual-stack socket appear as `::ffff:a.b.c.d`; treat them as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reverse proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// A comma-separated list of addresses and ranges; empty trusts nobody.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client's address: the peer itself unless it is a trusted proxy, in which case the
    /// forwarding chain is walked from the nearest hop outwards, past every trusted proxy, to
    /// the first address no trusted proxy vouches for beyond. `Forwarded` (RFC 7239) wins over
    /// `X-Forwarded-For` when both are present. A malformed chain is not believed.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl Iterator<Item = &'a str>,
        x_forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let chain = match forwarded_chain(forwarded) {
            Some(chain) if !chain.is_empty() => Some(chain),
            _ => x_forwarded_for_chain(x_forwarded_for),
        };
        let Some(chain) = chain else {
            return peer;
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            client = *hop;
            if !self.trusts(*hop) {
                break;
            }
        }
        client
    }
}

/// The `for=` addresses of `Forwarded` headers, nearest last; `None` when one is unreadable.
fn forwarded_chain<'a>(headers: impl Iterator<Item = &'a str>) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for header in headers {
        for element in header.split(',') {
            let for_value = element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| value.trim())
            });
            if let Some(value) = for_value {
                chain.push(parse_node(value.trim_matches('"'))?);
            }
        }
    }
    Some(chain)
}

fn x_forwarded_for_chain<'a>(headers: impl Iterator<Item = &'a str>) -> Option<Vec<IpAddr>> {
    let mut chain = Vec::new();
    for header in headers {
        for item in header.split(',') {
            chain.push(parse_node(item.trim())?);
        }
    }
    (!chain.is_empty()).then_some(chain)
}

/// `192.0.2.1`, `192.0.2.1:443`, `[2001:db8::1]`, `[2001:db8::1]:443` or a bare IPv6 address.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_prefix('[') {
        let (address, _) = rest.split_once(']')?;
        return address.parse::<IpAddr>().ok().map(canonical);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let (address, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_they_say() {
        let range: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(range.contains(ip("10.200.3.4")));
        assert!(!range.contains(ip("11.0.0.1")));
        assert!(range.contains(ip("::ffff:10.1.1.1")), "IPv4-mapped IPv6 counts as IPv4");
        let single: Cidr = "192.0.2.7".parse().unwrap();
        assert!(single.contains(ip("192.0.2.7")) && !single.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        let everything: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let none = std::iter::empty();
        // A client that talks to us directly cannot claim another address.
        assert_eq!(
            proxies.client_address(ip("203.0.113.5"), none.clone(), ["198.51.100.1"].into_iter()),
            ip("203.0.113.5")
        );
        // Through the proxy: the address the proxy saw.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), none.clone(), ["198.51.100.1"].into_iter()),
            ip("198.51.100.1")
        );
        // A client-supplied first entry is skipped: the nearest untrusted hop wins.
        assert_eq!(
            proxies.client_address(
                ip("127.0.0.1"),
                none.clone(),
                ["6.6.6.6, 198.51.100.1, 10.1.2.3"].into_iter()
            ),
            ip("198.51.100.1")
        );
        // Several headers form one chain, in order.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), none.clone(), ["6.6.6.6", "198.51.100.2"].into_iter()),
            ip("198.51.100.2")
        );
        // Forwarded wins, with ports, quotes and IPv6.
        assert_eq!(
            proxies.client_address(
                ip("10.0.0.1"),
                ["for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https"].into_iter(),
                ["198.51.100.1"].into_iter()
            ),
            ip("2001:db8::7")
        );
        // Garbage is not believed.
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), none.clone(), ["not-an-address"].into_iter()),
            ip("127.0.0.1")
        );
        // No proxies configured: nobody's headers count.
        assert_eq!(
            TrustedProxies::default().client_address(ip("127.0.0.1"), none, ["198.51.100.1"].into_iter()),
            ip("127.0.0.1")
        );
    }
}
