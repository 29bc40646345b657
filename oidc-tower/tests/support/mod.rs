//! Shared helpers of the integration tests: a real Redis server (and highly available ones),
//! servers started on picked ports, and the layers' test bed (dev provider, echo upstream, the
//! login layer in front of the reverse proxy, forward-auth). The discovery document of the small
//! providers some tests serve themselves is `oidc_dev_provider::minimal_discovery_document`.
#![allow(dead_code, unreachable_pub)]

pub mod gzip;
pub mod layers;
pub mod ports;
pub mod redis;
pub mod redis_ha;
