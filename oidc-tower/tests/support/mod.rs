//! Shared helpers of the integration tests: a real Redis server, and the layers' test bed (dev
//! provider, echo upstream, the login layer in front of the reverse proxy, forward-auth).
#![allow(dead_code, unreachable_pub)]

pub mod gzip;
pub mod layers;
pub mod redis;
pub mod redis_ha;
