//! The client's address behind reverse proxies: `Forwarded` (RFC 7239) or `X-Forwarded-For`
//! is believed only when the connection comes from a configured trusted proxy, and only as far
//! back as the chain of trusted proxies goes, so a client cannot pick its own address for rate
//! limits and the audit log.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue};
use ipnet::IpNet;

/// The networks whose connections may say who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From addresses (`10.0.0.7`) and networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("trusted_proxies: {entry:?} is neither an IP address nor a network"))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client a request on a connection from `peer` is for: the nearest address in the
    /// forwarding chain that is not a trusted proxy. A hop that cannot be read (`unknown`, an
    /// obfuscated name) ends the walk at the proxy that reported it.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        for hop in forwarded_for(headers).into_iter().rev() {
            let Some(hop) = hop else { break };
            client = hop.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// How the client reached the registry, for URLs Berth hands out: `https` when Berth
/// terminates TLS; else what a trusted proxy said (`X-Forwarded-Proto`, or `proto=` in
/// `Forwarded`); else `http`. Left in `X-Forwarded-Proto` for handlers (a client's own is
/// replaced, so handlers can believe it).
pub fn settle_scheme(proxies: &TrustedProxies, peer: IpAddr, tls: bool, headers: &mut HeaderMap) {
    let from_proxy = || {
        let forwarded_proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).map(str::to_owned);
        forwarded_proto
            .or_else(|| {
                let first = headers.get("forwarded")?.to_str().ok()?.split(',').next()?.to_owned();
                first.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("proto").then(|| value.trim().trim_matches('"').to_owned())
                })
            })
            .is_some_and(|proto| proto.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
    };
    let https = tls || (proxies.trusts(peer.to_canonical()) && from_proxy());
    headers.insert("x-forwarded-proto", HeaderValue::from_static(if https { "https" } else { "http" }));
}

/// The addresses the proxies reported, the client's first: from `Forwarded` when a proxy
/// sent one, else from `X-Forwarded-For`.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<_> = headers.get_all("forwarded").iter().collect();
    if !forwarded.is_empty() {
        return forwarded
            .into_iter()
            .flat_map(|value| value.to_str().unwrap_or("").split(','))
            .filter(|element| !element.trim().is_empty())
            .map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| node_address(value.trim().trim_matches('"')))?
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("").split(','))
        .map(|hop| node_address(hop.trim()))
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
/// `[2001:db8::1]:4711`.
fn node_address(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| node.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn headers_from_untrusted_peers_are_ignored() {
        let none = TrustedProxies::default();
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")]);
        assert_eq!(none.client_of(ip("203.0.113.9"), &spoofed), ip("203.0.113.9"));
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("parses");
        assert_eq!(proxies.client_of(ip("203.0.113.9"), &spoofed), ip("203.0.113.9"));
    }

    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.1"]).expect("parses");
        // The client claims 6.6.6.6 itself; the edge proxy (10.0.0.2) saw it come from 198.51.100.7.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7"), ("x-forwarded-for", "10.0.0.2")]);
        assert_eq!(proxies.client_of(ip("192.168.1.1"), &chain), ip("198.51.100.7"));
        // Only trusted hops: the earliest one is the client.
        let internal = headers(&[("x-forwarded-for", "10.1.1.1, 10.0.0.2")]);
        assert_eq!(proxies.client_of(ip("10.0.0.3"), &internal), ip("10.1.1.1"));
        // No header: the proxy itself.
        assert_eq!(proxies.client_of(ip("10.0.0.3"), &HeaderMap::new()), ip("10.0.0.3"));
        // An unreadable hop ends the walk at the proxy that reported it.
        let garbled = headers(&[("x-forwarded-for", "6.6.6.6, not-an-ip, 10.0.0.2")]);
        assert_eq!(proxies.client_of(ip("10.0.0.3"), &garbled), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_takes_every_node_form() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "fd00::/8"]).expect("parses");
        let both = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=\"[2001:db8::17]:4711\";proto=https, For=10.0.0.5:80"),
            ("forwarded", "by=10.0.0.9;for=fd00::3"),
        ]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &both), ip("2001:db8::17"));
        let hidden = headers(&[("forwarded", "for=198.51.100.7, for=_hidden, for=10.0.0.5")]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &hidden), ip("10.0.0.5"));
        // IPv4 peers on a dual-stack socket are matched as IPv4.
        assert_eq!(
            proxies.client_of(ip("::ffff:10.0.0.1"), &headers(&[("forwarded", "for=192.0.2.60")])),
            ip("192.0.2.60")
        );
    }

    #[test]
    fn the_scheme_is_https_under_tls_or_on_a_trusted_proxys_word() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("parses");
        let scheme = |peer: &str, tls: bool, pairs: &[(&'static str, &'static str)]| {
            let mut map = headers(pairs);
            settle_scheme(&proxies, ip(peer), tls, &mut map);
            map.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        assert_eq!(scheme("203.0.113.9", true, &[]).as_deref(), Some("https"));
        assert_eq!(scheme("203.0.113.9", false, &[("x-forwarded-proto", "https")]).as_deref(), Some("http"));
        assert_eq!(scheme("10.0.0.2", false, &[("x-forwarded-proto", "https")]).as_deref(), Some("https"));
        assert_eq!(scheme("10.0.0.2", false, &[("forwarded", "for=1.2.3.4;proto=https")]).as_deref(), Some("https"));
        assert_eq!(scheme("10.0.0.2", false, &[("x-forwarded-proto", "http")]).as_deref(), Some("http"));
        assert_eq!(scheme("10.0.0.2", false, &[]).as_deref(), Some("http"));
    }

    #[test]
    fn entries_must_be_addresses_or_networks() {
        assert!(TrustedProxies::parse(&["10.0.0.1", "10.0.0.0/8", " fd00::/8 "]).is_ok());
        let refused = TrustedProxies::parse(&["10.0.0.0/33"]).expect_err("refused");
        assert!(refused.contains("\"10.0.0.0/33\""), "{refused}");
        assert!(TrustedProxies::parse(&["proxy.example.com"]).is_err());
    }
}
