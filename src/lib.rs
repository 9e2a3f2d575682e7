//! target-s3: a Singer target that writes streams as files into S3 or a local folder.
//!
//! A record's way through the crate, one module per step:
//! [`singer`] (read lines, decode messages) -> [`schema`] (validate, plan columns) ->
//! [`pipeline`] (route to the stream's open file, roll files) with [`template`] (object keys) ->
//! [`encode`] (JSONL / JSON / CSV bytes; Parquet and Avro via `typed`) -> [`writer`] (compress, on its own thread) -> [`storage`]
//! (local folder or S3) -> [`ack`] (release STATE once everything before it is durable).
//! [`config`] (with its [`settings`] table) checks every setting before the first line is read;
//! [`cli`] is the binary's edge.

pub mod ack;
pub mod cli;
pub mod config;
pub mod destination;
pub mod error;
pub mod formats;
pub mod json;
pub mod keys;
pub mod pipeline;
pub mod schema;
pub mod singer;
pub mod writer;

/// The settings table, at its old path (`crate::settings::SETTINGS`).
pub use config::settings;
