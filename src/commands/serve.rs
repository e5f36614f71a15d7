//! `netrun serve`: the origin alone, until Ctrl-C or SIGTERM.

use std::time::Duration;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::error::Outcome;
use crate::origin::{self, OriginConfig};
use crate::{net, shutdown};

/// How long in-flight requests get to finish after a signal.
const GRACE: Duration = Duration::from_secs(5);

pub async fn serve(args: ServeArgs) -> anyhow::Result<Outcome> {
    // Check the folder before binding: a typo in --www is an input error
    // (exit 2) whatever the state of the ports.
    origin::www_root(&args.www)?;
    let http = super::http_listener(args.http, &args.limits).await?;
    let udp = net::bind_udp(args.udp, "--udp").await?;
    let (http, ca) = super::tls_listener(http, &args.tls, "serve")?;
    let serving = http.describe();
    let scheme = if http.tls.is_some() { "https" } else { "http" };

    // Install the signal handlers before announcing the addresses, so a
    // signal sent as soon as the start line is read is never missed.
    let signal = shutdown::signal();
    tokio::pin!(signal);
    let _ = signal.as_mut().now_or_never();

    let token = CancellationToken::new();
    let config = OriginConfig {
        www: args.www,
        limits: (&args.limits).into(),
        max_age: args.max_age.0,
    };
    let origin = origin::spawn(http, udp, config, token.clone()).await?;
    outln!(
        "origin {scheme}://{}  udp {}  www {}  {serving}{}",
        origin.http_addr(),
        origin.udp_addr(),
        origin.www().display(),
        super::ca_note(ca.as_deref())
    );

    signal.await;
    tracing::info!(target: origin::LOG_TARGET, "signal received, finishing in-flight requests");
    token.cancel();
    let clean = tokio::select! {
        clean = origin.wait_for_tasks(GRACE) => clean,
        // A second Ctrl-C means "now": skip the rest of the grace period.
        _ = shutdown::signal() => false,
    };
    if !clean {
        tracing::warn!(
            target: origin::LOG_TARGET,
            grace = ?GRACE,
            "some requests were still running; they were cut off"
        );
    }
    outln!("origin stopped: {}", origin.stats());
    Ok(Outcome::Success)
}
