//! target-s3: a Singer target that writes streams as files into S3 or a local folder.
//!
//! A record's way through the crate, one room per step (ARCHITECTURE.md):
//! [`singer`] (read lines, decode messages, BATCH files) -> [`pipeline`] (route the record to
//! its stream's open file, roll files) with [`schema`] (validate, plan columns), [`keys`]
//! (object keys) and [`formats`] (JSONL / JSON / CSV / Parquet / Avro) -> [`writer`] (compress,
//! on its own thread) -> [`destination`] (local folder or S3) -> [`ack`] (release STATE once
//! everything before it is durable). [`json`] reads raw JSON where it lies. [`config`] (with
//! its [`settings`] table) checks every setting before the first line is read; [`cli`] is the
//! binary's edge.

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
#[cfg(feature = "delta")]
pub mod table;
pub mod writer;

/// The settings table, at its old path (`crate::settings::SETTINGS`).
pub use config::settings;
