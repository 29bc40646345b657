//! Shared helpers of the integration tests: a real Redis server, the layers' test bed (dev
//! provider, echo upstream, the login layer in front of the reverse proxy, forward-auth), and
//! the discovery document of the small providers some tests serve themselves.
#![allow(dead_code, unreachable_pub)]

pub mod discovery;
pub mod gzip;
pub mod layers;
pub mod ports;
pub mod redis;
pub mod redis_ha;
