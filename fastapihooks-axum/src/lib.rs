//! axum
