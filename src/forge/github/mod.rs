//! The GitHub forge.
