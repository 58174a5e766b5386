//! Who is asking: the client address used as a rate-limit key.
//!
//! The peer address is the client, unless the peer is a configured trusted proxy; then the
//! right-most `X-Forwarded-For` hop that is not itself a trusted proxy is the client (hops to
//! the left of it were written by the client and can be forged). IPv6 clients are keyed by
//! their /64, since one subscriber usually holds a whole /64.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};

/// A rate-limit key for a client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(pub(crate) IpAddr);

/// The client key of a request (its extensions and headers), given the trusted proxies.
pub(crate) fn client_key(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> ClientKey {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let mut client = peer;
    if trusted.contains(&peer) {
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if trusted.contains(&ip) => continue,
                Ok(ip) => {
                    client = ip;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    ClientKey(prefix(client))
}

fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn key(r: &Request<()>, trusted: &[IpAddr]) -> ClientKey {
        client_key(r.extensions(), r.headers(), trusted)
    }

    fn req(peer: &str, xff: Option<&str>) -> Request<()> {
        let mut b = Request::builder();
        if let Some(x) = xff {
            b = b.header("x-forwarded-for", x);
        }
        let mut r = b.body(()).unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        r
    }

    #[test]
    fn forwarded_for_is_only_trusted_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let ip = |s: &str| ClientKey(s.parse().unwrap());
        assert_eq!(
            key(&req("1.2.3.4:5", Some("9.9.9.9")), &[proxy]),
            ip("1.2.3.4")
        );
        assert_eq!(
            key(&req("10.0.0.1:5", Some("6.6.6.6, 9.9.9.9")), &[proxy]),
            ip("9.9.9.9")
        );
        assert_eq!(
            key(&req("10.0.0.1:5", Some("9.9.9.9, 10.0.0.1")), &[proxy]),
            ip("9.9.9.9")
        );
        assert_eq!(key(&req("10.0.0.1:5", None), &[proxy]), ip("10.0.0.1"));
        assert_eq!(
            key(&req("[2001:db8:1:2:3:4:5:6]:5", None), &[]),
            ip("2001:db8:1:2::")
        );
        assert_eq!(key(&req("[::ffff:1.2.3.4]:5", None), &[]), ip("1.2.3.4"));
    }
}
