//! The reverse proxy and forward-auth services.
