//! The caching HTTP reverse proxy and the UDP forwarder.
