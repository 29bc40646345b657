//! Keeping one provider's metadata and keys fresh, and validating tokens against them.
