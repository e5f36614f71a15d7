//! The origin: static files over HTTP from `www/` plus a UDP echo service.
