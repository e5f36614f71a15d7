//! `netrun proxy`: the caching proxy and UDP forwarder alone, until Ctrl-C.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cli::{ImpairArgs, ProxyArgs, UpstreamImpairArgs};
use crate::error::Outcome;
use crate::net;

use crate::proxy::{
    self, CacheConfig, LinkConfig, ProxyConfig, ProxyHooks, ProxyStats, UdpForwardConfig,
    UpstreamTransport,
};
use crate::tls::Trust;
use crate::units::{format_duration, ByteSize};

/// How long in-flight requests get to finish after Ctrl-C.
const GRACE: Duration = Duration::from_secs(5);

pub async fn proxy(args: ProxyArgs) -> anyhow::Result<Outcome> {
    let (tls_upstream, authority) = split_upstream(&args.upstream)?;
    let upstream_http = net::resolve(&authority, "--upstream").await?;
    let upstream_transport = if tls_upstream {
        let trust = match (&args.upstream_ca, args.upstream_insecure) {
            (Some(ca), _) => Trust::CaFile(ca.clone()),
            (None, true) => Trust::Insecure,
            (None, false) => Trust::System,
        };
        let transport = UpstreamTransport::tls(&trust, &authority, args.upstream_http2)?;
        match &args.upstream_name {
            Some(name) => transport.named(name)?,
            None => transport,
        }
    } else {
        if args.upstream_ca.is_some() || args.upstream_insecure || args.upstream_name.is_some() {
            return Err(crate::Error::input(format!(
                "--upstream-ca, --upstream-insecure and --upstream-name apply to an https:// upstream; `{}` is clear text (write https://{authority})",
                args.upstream
            ))
            .into());
        }
        UpstreamTransport {
            tls: None,
            http2: args.upstream_http2,
        }
    };
    let upstream_udp = net::resolve(&args.udp_upstream, "--udp-upstream").await?;
    let http = super::http_listener(args.http, &args.limits).await?;
    let udp = net::bind_udp(args.udp, "--udp").await?;
    let (http, ca) = super::tls_listener(http, &args.tls, "proxy")?;
    let serving = http.describe();
    let scheme = if http.tls.is_some() { "https" } else { "http" };
    let cache = (!args.no_cache).then(|| {
        let mut c = CacheConfig::new(args.cache_size.bytes(), args.cache_ttl);
        if let Some(n) = args.max_inflight {
            c.max_inflight = n.bytes();
        }
        c.policy = args.cache_policy;
        c.capacity_objects = args.cache_objects;
        c
    });
    let config = ProxyConfig {
        upstream_http,
        upstream_udp,
        cache,
        upstream_timeout: args.upstream_timeout,
        udp: UdpForwardConfig {
            max_sessions: args.udp_max_sessions.max(1),
            idle_timeout: args.udp_idle_timeout,
            delay_buffer: args.udp_delay_buffer.bytes(),
            own_thread: true,
        },
        limits: (&args.limits).into(),
        upstream_transport: upstream_transport.clone(),
    };
    let shutdown = CancellationToken::new();
    let link = LinkConfig::from(&args.impair);
    let upstream_link = LinkConfig::from((&args.upstream_impair, args.impair.seed));
    let hooks = ProxyHooks::links(link, upstream_link);
    let handle = proxy::spawn_with_hooks(http, udp, config, hooks, shutdown.clone()).await?;
    let cache_desc = match cache {
        Some(c) => {
            let objects = c
                .capacity_objects
                .map_or(String::new(), |n| format!(" {n} objects"));
            let ttl = c
                .default_ttl
                .map_or(String::new(), |t| format!(" ttl {}", format_duration(t)));
            // The default policy is not named, so the usual line stays short.
            let policy = match c.policy {
                crate::cache_policy::Policy::Lru => String::new(),
                p => format!(" {p}"),
            };
            format!("cache {}{objects}{policy}{ttl}", ByteSize(c.capacity))
        }
        None => "cache off".to_string(),
    };
    // Listening for signals before the start line is printed: a signal sent
    // as soon as it is read is then never the default kill.
    let signalled = crate::shutdown::cancelled_on_signal();
    outln!(
        "proxy {scheme}://{} -> {}  udp {} -> {}  {}  {}  {serving}{}",
        handle.http_addr(),
        upstream_text(&upstream_transport, upstream_http, &args),
        handle.udp_addr(),
        upstream_udp,
        cache_desc,
        describe_links(&link, &upstream_link),
        super::ca_note(ca.as_deref())
    );

    signalled.cancelled().await;
    tracing::info!(target: "netrun::proxy", "signal received, shutting down");
    shutdown.cancel();
    let (clean, stats) = handle.wait_with_stats(GRACE).await;
    if !clean {
        tracing::warn!(target: "netrun::proxy", "some requests were still running after {}", format_duration(GRACE));
    }
    print_stats(&stats);
    Ok(Outcome::Success)
}

/// The upstream as the start line shows it, with the resolved TLS settings:
/// `https://127.0.0.1:8443 (HTTP/2; TLS name origin.test, trusting ca.pem)`.
fn upstream_text(
    transport: &UpstreamTransport,
    addr: std::net::SocketAddr,
    args: &ProxyArgs,
) -> String {
    let http2 = if transport.http2 { "HTTP/2" } else { "" };
    let Some(tls) = &transport.tls else {
        return match http2 {
            "" => addr.to_string(),
            h => format!("{addr} ({h} by prior knowledge)"),
        };
    };
    let trust = match (&args.upstream_ca, args.upstream_insecure) {
        (Some(ca), _) => format!("trusting {}", ca.display()),
        (None, true) => "certificate not checked (--upstream-insecure)".to_string(),
        (None, false) => "trusting the system's CAs".to_string(),
    };
    // --upstream-http2 offers h2 alone (UpstreamTransport::tls).
    let alpn = match http2 {
        "" => "HTTP/2 or 1.1 by ALPN",
        _ => "HTTP/2 only, ALPN h2",
    };
    format!(
        "https://{addr} ({alpn}; TLS name {}, {trust})",
        tls.name.to_str()
    )
}

/// `--upstream`'s scheme and `host:port`: `HOST:PORT` and `http://` are
/// clear text, `https://` is TLS (port 443 when none is given, 80 for
/// `http://`). A path is refused: the proxy forwards paths as they come.
fn split_upstream(target: &str) -> Result<(bool, String), crate::Error> {
    let (tls, rest, default_port) = if let Some(rest) = target.strip_prefix("https://") {
        (true, rest, 443)
    } else if let Some(rest) = target.strip_prefix("http://") {
        (false, rest, 80)
    } else if target.contains("://") {
        return Err(crate::Error::input(format!(
            "--upstream `{target}`: only http:// and https:// upstreams are supported"
        )));
    } else {
        return Ok((false, target.to_string()));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(crate::Error::input(format!(
            "--upstream `{target}` has a path; give the scheme and HOST:PORT only (paths are forwarded as requested)"
        )));
    }
    // `host`, `[v6]` have no port; `host:port`, `[v6]:port` have one.
    let has_port = match rest.rfind(']') {
        Some(close) => rest[close..].contains(':'),
        None => rest.contains(':'),
    };
    Ok((
        tls,
        if has_port {
            rest.to_string()
        } else {
            format!("{rest}:{default_port}")
        },
    ))
}

impl From<&ImpairArgs> for LinkConfig {
    fn from(a: &ImpairArgs) -> Self {
        LinkConfig {
            delay: a.delay,
            jitter: a.jitter,
            loss_percent: a.loss,
            rate_bps: a.rate.bits_per_sec(),
            seed: a.seed,
        }
    }
}

/// The proxy ↔ origin link's knobs, seeded like the clients' link.
impl From<(&UpstreamImpairArgs, u64)> for LinkConfig {
    fn from((a, seed): (&UpstreamImpairArgs, u64)) -> Self {
        LinkConfig {
            delay: a.upstream_delay,
            jitter: a.upstream_jitter,
            loss_percent: a.upstream_loss,
            rate_bps: a.upstream_rate.bits_per_sec(),
            seed,
        }
    }
}

/// `no impairment`, or each link by its scenario name:
/// `clients_proxy delay 2ms ... proxy_origin no impairment`.
fn describe_links(clients: &LinkConfig, origin: &LinkConfig) -> String {
    if clients.is_none() && origin.is_none() {
        return "no impairment".to_string();
    }
    format!("clients_proxy {clients}  proxy_origin {origin}")
}

fn print_stats(s: &ProxyStats) {
    outln!(
        "http: {} requests, {} hits, {} misses, {} bypasses, {} coalesced, {} revalidations ({} unmodified)",
        s.requests, s.hits, s.misses, s.bypasses, s.coalesced, s.revalidations, s.revalidated_unmodified
    );
    outln!(
        "      {} bytes from cache, {} bytes from upstream, {} upstream fetches, {} upstream errors",
        s.bytes_from_cache, s.bytes_from_upstream, s.upstream_fetches, s.upstream_errors
    );
    outln!(
        "      {} upstream connections, {} upstream TLS handshakes, {} refused by HTTP/2 and sent again",
        s.upstream_connections,
        s.upstream_tls_handshakes,
        s.upstream_retries
    );
    outln!(
        "cache: {} stored, {} evicted, {} entries, {} bytes held; {} streamed past the memory bound",
        s.stored, s.evictions, s.cache_entries, s.cache_bytes, s.streamed_over_limit
    );
    outln!(
        "udp: {} datagrams ({} bytes) to upstream, {} datagrams ({} bytes) to clients",
        s.udp_datagrams_to_upstream,
        s.udp_bytes_to_upstream,
        s.udp_datagrams_to_client,
        s.udp_bytes_to_client
    );
    outln!(
        "     {} sessions opened, {} expired; dropped: {} table full, {} send buffer full, {} receive buffer full, {} send errors",
        s.udp_sessions_opened,
        s.udp_sessions_expired,
        s.udp_dropped_table_full,
        s.udp_dropped_buffer_full,
        s.udp_dropped_receive_full,
        s.udp_send_errors
    );
    outln!(
        "impairment clients_proxy: {} datagrams dropped, {} datagrams delayed ({} dropped with the delay buffer full), {} http messages delayed",
        s.udp_dropped_impairment, s.udp_delayed_impairment, s.udp_dropped_delay_full, s.http_delayed
    );
    outln!(
        "impairment proxy_origin: {} datagrams dropped, {} datagrams delayed, {} http messages delayed",
        s.origin_link_udp_dropped, s.origin_link_udp_delayed, s.origin_link_http_delayed
    );
}

#[cfg(test)]
mod tests {
    use super::split_upstream;

    #[test]
    fn upstream_urls_give_the_scheme_and_host_port() {
        let ok = |s: &str| split_upstream(s).unwrap();
        assert_eq!(ok("127.0.0.1:8000"), (false, "127.0.0.1:8000".into()));
        assert_eq!(
            ok("http://127.0.0.1:8000/"),
            (false, "127.0.0.1:8000".into())
        );
        assert_eq!(
            ok("https://localhost:8443"),
            (true, "localhost:8443".into())
        );
        assert_eq!(ok("https://localhost"), (true, "localhost:443".into()));
        assert_eq!(ok("https://[::1]"), (true, "[::1]:443".into()));
        assert_eq!(ok("https://[::1]:9"), (true, "[::1]:9".into()));
        assert!(split_upstream("ftp://x:1").is_err());
        assert!(split_upstream("https://x:1/path").is_err());
    }
}
