//! HTTP/2 rules the proxy's upstream client and the workloads' client
//! share: which failed requests the server refused before processing them,
//! and so may be sent again (RFC 9113 §8.7). Reads error chains only.

use std::error::Error;

/// Whether `e` (or an error in its chain) says the HTTP/2 server refused
/// the request unprocessed: the stream was above the last stream id of a
/// graceful GOAWAY (NO_ERROR, as a server sends when it reaches its
/// keep-alive limit, or the request was started on a connection that had
/// already received it), or the server reset it with REFUSED_STREAM. A
/// GOAWAY with an error code is not counted: h2 reports it on processed
/// streams too.
pub fn refused_unprocessed(e: &(dyn Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && match h2.reason() {
                    Some(h2::Reason::REFUSED_STREAM) => true,
                    Some(h2::Reason::NO_ERROR) => h2.is_go_away(),
                    _ => false,
                };
        }
        source = s.source();
    }
    false
}

/// Whether `e` (or an error in its chain) is hyper's "canceled": the client
/// gave the request back before putting it on the wire, because the
/// connection it was given was going away ("connection was not ready",
/// "connection closed"). hyper-util's pool sends such a request again by
/// itself only when the connection had been used before; a new one that
/// received a GOAWAY at once leaves it to the caller.
pub fn canceled_unsent(e: &(dyn Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return h.is_canceled();
        }
        source = s.source();
    }
    false
}
