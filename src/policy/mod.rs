//! `.github/deploy.yml`: the Deliverybot format, a typed model, a loader
//! whose errors carry file, line and column, and template rendering.
//!
//! **Architecture invariant:** no I/O here; the caller reads the file.
