//! Streaming reverse proxy.
