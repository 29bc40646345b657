//! Where a browser may be sent back to after login and logout.
