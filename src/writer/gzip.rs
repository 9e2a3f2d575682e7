//! `compression: gzip` as a multi-member gzip file, each member compressed whole by libdeflate.
//!
//! Why members: libdeflate compresses a whole buffer in one call, ~1.5x faster than zlib's
//! streaming deflate at the same level and about the same ratio (issue #25 measured 152 MB/s
//! against zlib-rs's 98 MB/s at level 6). A gzip file may be a series of members (RFC 1952
//! 2.2); gzip, zcat, Python's gzip, pyarrow, DuckDB, polars and Spark read them all as one
//! stream (`scripts/readers.py` checks each on files of several members), as does our own BATCH
//! reader (`MultiGzDecoder`).
//!
//! Why no buffering here: the pipeline already hands each file's bytes over in chunks of
//! 64-512 KiB (`files.rs`), so every chunk becomes its member(s) at once and an open file holds
//! nothing on this thread between chunks. Collecting fixed-size members instead would hold up to
//! a member of uncompressed bytes per open file, and hundreds of partitions can be open.

use crate::formats::deflate::deflate;

/// The largest member: a bigger write is split. The pipeline's chunks (at most 512 KiB and a
/// record) are one member each; the ratio barely changes beyond a few hundred KiB, since
/// deflate only looks 32 KiB back.
pub const MEMBER: usize = 1024 * 1024;

/// A gzip file being written: members go into `out` as bytes arrive.
pub struct GzipMembers {
    level: u32,
    member: usize,
    /// The first member's header, with the inner file name (FNAME); `None` once written.
    first_header: Option<Vec<u8>>,
    /// Compressed bytes not taken yet.
    pub out: Vec<u8>,
}

impl GzipMembers {
    /// `name`: the inner file name the first member's header records, as `gzip` does (readers
    /// such as singer-io's tap-s3-csv require it). `level`: 0 (store) to 9, libdeflate's levels
    /// of the same numbers (its 1-9 trade speed for size like zlib's; 10-12 are not offered).
    pub fn new(level: u32, name: &str) -> GzipMembers {
        GzipMembers::with_member_size(level, name, MEMBER)
    }

    /// As [`GzipMembers::new`], with members of at most `member` bytes (tests use small ones).
    pub fn with_member_size(level: u32, name: &str, member: usize) -> GzipMembers {
        let mut header = header(level, true);
        header.extend(name.bytes().filter(|&b| b != 0));
        header.push(0);
        GzipMembers { level: level.min(9), member: member.max(1), first_header: Some(header), out: Vec::new() }
    }

    /// Compresses `data` into members of at most the member size (none for empty `data`).
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        for piece in data.chunks(self.member) {
            self.write_member(piece)?;
        }
        Ok(())
    }

    /// The last bytes: a file with no data is still a gzip file (one empty member).
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        if self.first_header.is_some() {
            self.write_member(&[])?;
        }
        Ok(self.out)
    }

    fn write_member(&mut self, data: &[u8]) -> std::io::Result<()> {
        let header = self.next_header();
        member(&header, self.level, data, &mut self.out)
    }

    fn next_header(&mut self) -> Vec<u8> {
        self.first_header.take().unwrap_or_else(|| header(self.level, false))
    }

    /// The members of `data` as a job to run on any thread ([`Members::run`]); its output is
    /// this file's next bytes, so it must reach storage before the file's later ones.
    pub fn job(&mut self, data: Vec<u8>) -> Members {
        // No data, no member: the header stays for the next one (or `finish`'s empty member).
        let first_header = if data.is_empty() { Vec::new() } else { self.next_header() };
        Members { level: self.level, member: self.member, first_header, data }
    }
}

/// The gzip members of one chunk of a file, compressed away from the file (see
/// [`GzipMembers::job`]): members are independent, so chunks of one file can be compressed at
/// once on several threads and their bytes put in order afterwards.
pub struct Members {
    level: u32,
    member: usize,
    first_header: Vec<u8>,
    pub data: Vec<u8>,
}

impl Members {
    /// The members' bytes, appended to `out`.
    pub fn run(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut pieces = self.data.chunks(self.member);
        if let Some(first) = pieces.next() {
            member(&self.first_header, self.level, first, out)?;
        }
        for piece in pieces {
            member(&header(self.level, false), self.level, piece, out)?;
        }
        Ok(())
    }
}

/// One member: header, deflate, CRC-32 and size.
fn member(header: &[u8], level: u32, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    out.extend_from_slice(header);
    deflate(level, data, out)?;
    out.extend_from_slice(&libdeflater::crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(())
}

/// A member's 10-byte header as flate2's `GzBuilder` wrote it before (so the first member's
/// header is byte for byte what it was): no modification time, OS "unknown" (255), XFL 2 for the
/// slowest level and 4 for the fastest, FNAME following when `named`.
fn header(level: u32, named: bool) -> Vec<u8> {
    let xfl = match level {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    };
    let flags = if named { 0x08 } else { 0 };
    vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, xfl, 255]
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use proptest::prelude::*;

    use super::*;

    fn decoded(gz: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut back).unwrap();
        back
    }

    /// Members in a gzip file: each decoded alone by a single-member decoder.
    fn members(gz: &[u8]) -> usize {
        let mut rest = gz;
        let mut n = 0;
        while !rest.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(rest);
            std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
            rest = decoder.into_inner();
            n += 1;
        }
        n
    }

    /// The inner file name in the first member's header.
    fn first_name(gz: &[u8]) -> Option<Vec<u8>> {
        let mut decoder = flate2::bufread::GzDecoder::new(gz);
        std::io::copy(&mut decoder, &mut std::io::sink()).unwrap();
        decoder.header().and_then(|h| h.filename()).map(<[u8]>::to_vec)
    }

    /// Bytes that compress (repeated words) or do not (noise), to exercise both block kinds.
    fn content(len: usize, seed: u64, noisy: bool) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                const WORDS: &[u8] = b"{\"id\":1,\"name\":\"abc\"}\n";
                if noisy { x as u8 } else { WORDS[(i + (x % 3) as usize) % WORDS.len()] }
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        /// Whatever the writes (empty, smaller than, exactly at or across member boundaries),
        /// the file decodes to their concatenation, with one member per started member size.
        #[test]
        fn members_decode_to_the_input(
            member in 1usize..64,
            writes in proptest::collection::vec((0usize..4, 0usize..200), 0..8),
            level in 0u32..10,
            seed in any::<u64>(),
            noisy in any::<bool>(),
            pooled in any::<u8>(),
        ) {
            let mut gz = GzipMembers::with_member_size(level, "a.jsonl", member);
            let mut input = Vec::new();
            let mut expected_members = 0;
            for (i, (kind, n)) in writes.into_iter().enumerate() {
                // 0: empty, 1: exactly one member, 2: whole members, 3: any length.
                let len = match kind { 0 => 0, 1 => member, 2 => member * (n % 4), _ => n };
                let data = content(len, seed.wrapping_add(i as u64), noisy);
                if pooled >> (i % 8) & 1 == 1 {
                    // As the writer's pool does: a job, its output appended in order.
                    let job = gz.job(data.clone());
                    job.run(&mut gz.out).unwrap();
                } else {
                    gz.write(&data).unwrap();
                }
                expected_members += len.div_ceil(member);
                input.extend(data);
            }
            let out = gz.finish().unwrap();
            prop_assert_eq!(decoded(&out), input);
            prop_assert_eq!(members(&out), expected_members.max(1));
            prop_assert_eq!(first_name(&out), Some(b"a.jsonl".to_vec()));
        }
    }

    #[test]
    fn full_size_members_split_at_the_boundary() {
        for len in [0, 1, MEMBER - 1, MEMBER, MEMBER + 1, 2 * MEMBER] {
            let data = content(len, len as u64, false);
            let mut gz = GzipMembers::new(6, "x.csv");
            gz.write(&data).unwrap();
            let out = gz.finish().unwrap();
            assert_eq!(decoded(&out), data, "{len} bytes");
            assert_eq!(members(&out), len.div_ceil(MEMBER).max(1), "{len} bytes");
        }
    }

    #[test]
    fn the_first_header_is_what_flate2_wrote() {
        for level in [0, 1, 6, 9] {
            let ours = GzipMembers::new(level, "a-00000.csv").finish().unwrap();
            let mut flate =
                flate2::GzBuilder::new().filename("a-00000.csv").write(Vec::new(), flate2::Compression::new(level));
            std::io::Write::write_all(&mut flate, b"").unwrap();
            let flate = flate.finish().unwrap();
            let name_end = 10 + "a-00000.csv".len() + 1;
            assert_eq!(ours[..name_end], flate[..name_end], "level {level}");
        }
    }
}
