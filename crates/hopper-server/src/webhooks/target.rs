//! Where a delivery may go. A webhook URL is chosen by a namespace's admin, so without a check
//! a tenant could make the server post to addresses only it can reach: loopback services, the
//! private network, a cloud's metadata endpoint. Unless `allow_private_targets` is set, the
//! host is resolved before each delivery, every address must be public, and the connection
//! goes to the address that was checked (no second lookup an attacker's DNS could answer
//! differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a delivery cannot go to its URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a URL with a host.
    #[error("the webhook URL is not usable: {0}")]
    BadUrl(String),
    /// The host does not resolve (may be temporary).
    #[error("cannot resolve {0}")]
    Unresolved(String),
    /// The host resolves to an address that is not public.
    #[error("{host} resolves to {addr}, which is not a public address")]
    Private {
        /// The URL's host.
        host: String,
        /// The offending address.
        addr: IpAddr,
    },
}

/// Resolves `url`'s host and checks its addresses; answers the host and the address to
/// connect to.
pub async fn resolve(
    url: &reqwest::Url,
    allow_private: bool,
) -> Result<(String, SocketAddr), TargetError> {
    let host = url
        .host_str()
        .ok_or_else(|| TargetError::BadUrl("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| TargetError::BadUrl("no port".into()))?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| TargetError::Unresolved(host.clone()))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| TargetError::Unresolved(host.clone()))?;
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(TargetError::Private {
            host,
            addr: bad.ip(),
        });
    }
    Ok((host, first))
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // "This network", 0.0.0.0/8.
        || a == 0)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7 and link-local fe80::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[tokio::test]
    async fn a_loopback_target_is_refused_unless_allowed() {
        let url = reqwest::Url::parse("http://127.0.0.1:9/hook").expect("url");
        assert!(matches!(
            resolve(&url, false).await,
            Err(TargetError::Private { .. })
        ));
        let (host, addr) = resolve(&url, true).await.expect("allowed");
        assert_eq!((host.as_str(), addr.port()), ("127.0.0.1", 9));
    }
}
