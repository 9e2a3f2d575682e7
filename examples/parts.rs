//! The parts of a run, each timed alone on one thread: the limit `scripts/bench.py --limit`
//! compares the target with (issue "Every core busy", item 3).
//!
//! `parts --input FILE --config JSON [--case NAME]`
//!
//! `--config` is the case's settings as `bench.py` writes them (`{"format": "jsonl",
//! "compression": "gzip"}`), checked by the target's own configuration code, so every default
//! (gzip level, `validate_formats`, `flattening_max_depth`) is the target's. The whole input is
//! loaded into memory first; then each part runs over all of it, best of 3 passes, and one JSON
//! line on stdout gives nanoseconds per record:
//!
//! * `envelope`: `singer::decode` of every line (SCHEMA and STATE lines included);
//! * `validate`: `StreamSchema::check` of every record against its stream's schema, compiled as
//!   the router compiles it (with the cursor from `bookmark_properties`);
//! * `compress`: the case's compressor alone (the target's gzip members, or zstd) on each
//!   stream's records joined by newlines, in the chunks the pipeline hands the writer; 0 for no
//!   compression. CSV compresses its own (shorter) rows: here the JSONL bytes stand in for them
//!   (`compress_approx`). Parquet and Avro: `null`, their limit is envelope + validate only, a
//!   lower bound on the work.
//!
//! `limit_records_per_s` = 1e9 / (envelope + validate + compress): records per second on one
//! core if the target did nothing but these parts.

use std::hint::black_box;
use std::io::Write as _;
use std::time::Instant;

use clap::Parser;
use target_s3::config::{Compression, Format, RawConfig};
use target_s3::schema::{SchemaOptions, StreamSchema};
use target_s3::singer::{Message, decode};
use target_s3::writer::gzip::GzipMembers;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc; // as the binary (src/main.rs)

/// The pipeline's chunk of encoded bytes for the writer (`MAX_CHUNK` in src/pipeline/files.rs).
const CHUNK: usize = 512 * 1024;
const PASSES: usize = 3;

/// A RECORD line's record, its stream and the schema in force for it.
struct Record<'a> {
    stream: usize,
    schema: usize,
    text: &'a str,
}

#[derive(Parser)]
struct Args {
    /// A Singer file (e.g. target/bench/input-N.singer from `gen_singer`).
    #[arg(long)]
    input: std::path::PathBuf,
    /// The case's settings, a JSON object.
    #[arg(long, default_value = "{}")]
    config: String,
    /// The case's name, echoed in the output.
    #[arg(long, default_value = "")]
    case: String,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("parts: error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let settings = serde_json::from_str(&args.config)?;
    let config = RawConfig::from_map(settings)?.validate_with(&|_| None)?;
    let options = SchemaOptions {
        validate_records: config.validate_records,
        validate_formats: config.validate_formats,
        flatten_max_depth: config.csv.max_depth,
    };
    let text = std::fs::read_to_string(&args.input)?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();

    // Untimed: every SCHEMA compiled as the router compiles it, and every record with its
    // stream's index and the index of the schema it is checked against.
    let mut streams: Vec<(String, usize)> = Vec::new(); // name, current schema
    let mut schemas: Vec<StreamSchema> = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    for line in &lines {
        match decode(line).map_err(|e| e.kind)? {
            Message::Schema { stream, schema, key_properties, bookmark_properties } => {
                let mut compiled = StreamSchema::compile(schema.get(), key_properties, options)?;
                compiled.stream = stream.as_ref().into();
                compiled.cursor = bookmark_properties.first().map(|b| b.split('.').map(str::to_string).collect());
                schemas.push(compiled);
                match streams.iter_mut().find(|(name, _)| *name == stream) {
                    Some(known) => known.1 = schemas.len() - 1,
                    None => streams.push((stream.into_owned(), schemas.len() - 1)),
                }
            }
            Message::Record { stream, record, .. } => {
                let i = streams.iter().position(|(name, _)| *name == stream).ok_or("a RECORD before its SCHEMA")?;
                records.push(Record { stream: i, schema: streams[i].1, text: record });
            }
            _ => {}
        }
    }
    let n = records.len() as f64;
    let ns_per_record = |pass: &mut dyn FnMut()| best_of(pass) / n;

    let envelope = ns_per_record(&mut || {
        for line in &lines {
            let _ = black_box(decode(black_box(line)));
        }
    });
    let mut invalid = 0;
    let validate = ns_per_record(&mut || {
        invalid = 0;
        for record in &records {
            invalid += black_box(schemas[record.schema].check(black_box(record.text))).is_err() as usize;
        }
    });
    if invalid > 0 {
        return Err(format!("{invalid} records fail their schema: the limit would be wrong").into());
    }

    let format = config.output.format;
    let compression = config.output.compression;
    let compress = match format {
        Format::Parquet | Format::Avro => None,
        _ if compression == Compression::None => Some(0.0),
        _ => {
            let files = chunks(&records, streams.len());
            Some(ns_per_record(&mut || {
                for chunks in &files {
                    compress_file(compression, chunks).expect("compressing in memory");
                }
            }))
        }
    };
    let total = envelope + validate + compress.unwrap_or(0.0);
    let note = match (format, compress) {
        (_, None) => "typed format: limit = envelope + validate only, a lower bound on the work",
        (Format::Csv, Some(_)) => "compress timed on the records' JSONL bytes, not CSV rows (approx)",
        _ => "",
    };
    let out = serde_json::json!({
        "case": args.case,
        "records": records.len(),
        "lines": lines.len(),
        "envelope_ns": round(envelope),
        "validate_ns": round(validate),
        "compress_ns": compress.map(round),
        "compress_approx": format == Format::Csv && compress.is_some_and(|c| c > 0.0),
        "limit_records_per_s": (1e9 / total).round(),
        "clock": if thread_cpu_ns().is_some() { "thread CPU time" } else { "wall time" },
        "note": note,
    });
    writeln!(std::io::stdout(), "{out}")?;
    Ok(())
}

/// The fastest of [`PASSES`] runs of `pass`, in nanoseconds of this thread's CPU time (wall
/// time where Linux's schedstat is missing): on a shared machine, time spent waiting for a core
/// is not the parts' cost.
fn best_of(pass: &mut dyn FnMut()) -> f64 {
    (0..PASSES)
        .map(|_| match thread_cpu_ns() {
            Some(before) => {
                pass();
                thread_cpu_ns().map_or(f64::NAN, |after| (after - before) as f64)
            }
            None => {
                let start = Instant::now();
                pass();
                start.elapsed().as_nanos() as f64
            }
        })
        .fold(f64::INFINITY, f64::min)
}

/// This thread's time on a CPU so far, in nanoseconds (the first field of
/// `/proc/thread-self/schedstat`, the scheduler's own count; no extra dependency).
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn round(ns: f64) -> f64 {
    (ns * 10.0).round() / 10.0
}

/// Each stream's file as the pipeline hands it to the writer: records joined by newlines, cut
/// into chunks after the record that takes a chunk to [`CHUNK`] bytes or more.
fn chunks(records: &[Record], streams: usize) -> Vec<Vec<Vec<u8>>> {
    let mut files: Vec<Vec<Vec<u8>>> = vec![vec![Vec::new()]; streams];
    for record in records {
        let file = &mut files[record.stream];
        let chunk = file.last_mut().expect("one chunk at least");
        chunk.extend_from_slice(record.text.as_bytes());
        chunk.push(b'\n');
        if chunk.len() >= CHUNK {
            file.push(Vec::new());
        }
    }
    files
}

/// Compresses one file's chunks as the writer thread does (src/writer/body.rs), dropping the
/// output as storage would take it.
fn compress_file(compression: Compression, chunks: &[Vec<u8>]) -> std::io::Result<()> {
    match compression {
        Compression::None => {}
        Compression::Gzip { level } => {
            let mut gz = GzipMembers::new(level, "part.jsonl");
            for chunk in chunks {
                gz.write(chunk)?;
                black_box(&gz.out);
                gz.out.clear();
            }
            black_box(gz.finish()?);
        }
        Compression::Zstd { level } => {
            let mut zstd = zstd::stream::write::Encoder::new(Vec::new(), level)?;
            for chunk in chunks {
                zstd.write_all(chunk)?;
                black_box(zstd.get_ref());
                zstd.get_mut().clear();
            }
            black_box(zstd.finish()?);
        }
    }
    Ok(())
}
