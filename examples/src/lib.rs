//! Runnable examples and deployment recipes for the workspace.
