//! A data file's column statistics for its manifest entry, read from the footer target-s3 wrote
//! (the columns carry the table's field ids): per top-level column its compressed size, value
//! and null counts, and its lowest and highest value in Iceberg's single-value form, so readers
//! skip files a filter excludes. Bounds are left out where the footer's are not exact (a
//! truncated maximum) or their form differs from Iceberg's (decimals).

use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::statistics::Statistics;

use crate::table::store::TableStore;

/// Footer bytes fetched at first: most footers fit, a longer one costs a second read.
const FIRST_READ: u64 = 64 * 1024;

/// One data file's statistics, by field id.
#[derive(Debug, Default)]
pub struct Stats {
    pub sizes: Vec<(i32, i64)>,
    pub values: Vec<(i32, i64)>,
    pub nulls: Vec<(i32, i64)>,
    pub lower: Vec<(i32, Vec<u8>)>,
    pub upper: Vec<(i32, Vec<u8>)>,
}

/// The statistics of the Parquet file `key` (`size` bytes).
pub async fn read(store: &TableStore, key: &str, size: u64) -> Result<Stats, String> {
    let error = |e: &dyn std::fmt::Display| format!("reading the footer of {key}: {e}");
    let start = size.saturating_sub(FIRST_READ);
    let mut tail = store.get_range(key, start..size).await.map_err(|e| error(&e))?;
    if tail.len() < 8 {
        return Err(error(&"the file is shorter than a footer"));
    }
    let length = u64::from(u32::from_le_bytes(tail[tail.len() - 8..tail.len() - 4].try_into().expect("4 bytes")));
    if length + 8 > tail.len() as u64 {
        let from = size.checked_sub(length + 8).ok_or_else(|| error(&"the footer is longer than the file"))?;
        tail = store.get_range(key, from..size).await.map_err(|e| error(&e))?;
    }
    let metadata = &tail[tail.len() - 8 - length as usize..tail.len() - 8];
    let metadata = ParquetMetaDataReader::decode_metadata(metadata).map_err(|e| error(&e))?;
    Ok(from_metadata(&metadata))
}

fn from_metadata(metadata: &ParquetMetaData) -> Stats {
    let mut stats = Stats::default();
    let schema = metadata.file_metadata().schema_descr();
    for (i, column) in schema.columns().iter().enumerate() {
        let info = column.self_type().get_basic_info();
        if column.path().parts().len() != 1 || !info.has_id() {
            continue;
        }
        let id = info.id();
        let (mut size, mut values, mut nulls) = (0i64, 0i64, Some(0i64));
        let (mut low, mut high): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
        let mut bounds = true;
        for group in metadata.row_groups() {
            let chunk = group.column(i);
            size += chunk.compressed_size();
            values += chunk.num_values();
            let Some(s) = chunk.statistics() else {
                nulls = None;
                bounds = false;
                continue;
            };
            nulls = nulls.zip(s.null_count_opt()).map(|(n, c)| n + c as i64);
            match (s.min_bytes_opt(), s.max_bytes_opt()) {
                (Some(min), Some(max)) if s.max_is_exact() && comparable(s) => {
                    if low.as_deref().is_none_or(|l| less(s, min, l)) {
                        low = Some(min.to_vec());
                    }
                    if high.as_deref().is_none_or(|h| less(s, h, max)) {
                        high = Some(max.to_vec());
                    }
                }
                (None, None) => {} // only nulls in this row group
                _ => bounds = false,
            }
        }
        stats.sizes.push((id, size));
        stats.values.push((id, values));
        if let Some(n) = nulls {
            stats.nulls.push((id, n));
        }
        if bounds && let (Some(l), Some(h)) = (low, high) {
            stats.lower.push((id, l));
            stats.upper.push((id, h));
        }
    }
    stats
}

/// Whether the footer's value form is Iceberg's for this column's statistics.
fn comparable(s: &Statistics) -> bool {
    matches!(s, Statistics::Boolean(_) | Statistics::Int32(_) | Statistics::Int64(_) | Statistics::Double(_))
        || matches!(s, Statistics::ByteArray(_))
}

/// `a < b` for two plain-encoded values of `s`'s type (strings: by bytes, as UTF-8 orders).
fn less(s: &Statistics, a: &[u8], b: &[u8]) -> bool {
    fn n<const N: usize>(x: &[u8]) -> [u8; N] {
        x.try_into().unwrap_or([0; N])
    }
    match s {
        Statistics::Boolean(_) => a < b,
        Statistics::Int32(_) => i32::from_le_bytes(n(a)) < i32::from_le_bytes(n(b)),
        Statistics::Int64(_) => i64::from_le_bytes(n(a)) < i64::from_le_bytes(n(b)),
        Statistics::Double(_) => f64::from_le_bytes(n(a)) < f64::from_le_bytes(n(b)),
        _ => a < b,
    }
}
