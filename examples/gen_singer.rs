//! Deterministic generator of realistic Singer input for benchmarks and large tests.
//!
//! `cargo run --release --example gen_singer -- RECORDS > input.singer`
//!
//! Three streams (users, orders, events) in round-robin, records of about 300-450 bytes with
//! integers, floats, booleans, nullable fields, ISO date-times (with and without offsets),
//! strings with commas, quotes and unicode, a nested object and an array; a STATE every 10,000
//! records. The same RECORDS always gives the same bytes.

use std::io::{BufWriter, Write};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self, out: &mut String, len: usize) {
        for _ in 0..len {
            out.push((b'a' + self.below(26) as u8) as char);
        }
    }
}

const NAMES: &[&str] =
    &["Ana María", "Björk", "李雷", "O'Brien, Pat", "Zoë \\\"Z\\\" Quinn", "Søren", "Ивана", "Renée"];
const CITIES: &[&str] = &["São Paulo", "Zürich", "東京", "Kraków", "New York, NY", "Montréal"];

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let out = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, out.lock());
    let schemas = [
        r#"{"type":"SCHEMA","stream":"users","key_properties":["id"],"bookmark_properties":["updated_at"],"schema":{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"name":{"type":"string"},"email":{"type":["null","string"]},"score":{"type":"number"},"active":{"type":"boolean"},"address":{"type":["null","object"],"properties":{"city":{"type":"string"},"zip":{"type":["null","string"]},"lat":{"type":"number"},"lon":{"type":"number"}}},"tags":{"type":"array","items":{"type":"string"}},"bio":{"type":["null","string"]},"updated_at":{"type":"string","format":"date-time"}}}}"#,
        r#"{"type":"SCHEMA","stream":"orders","key_properties":["order_id"],"bookmark_properties":["created_at"],"schema":{"type":"object","required":["order_id"],"properties":{"order_id":{"type":"string"},"user_id":{"type":"integer"},"amount":{"type":"number"},"currency":{"type":"string"},"paid":{"type":"boolean"},"items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer"},"price":{"type":"number"}}}},"note":{"type":["null","string"]},"shipping":{"type":"object","properties":{"method":{"type":"string"},"city":{"type":"string"}}},"created_at":{"type":"string","format":"date-time"}}}}"#,
        r#"{"type":"SCHEMA","stream":"events","key_properties":["event_id"],"bookmark_properties":["ts"],"schema":{"type":"object","required":["event_id"],"properties":{"event_id":{"type":"integer"},"kind":{"type":"string"},"user_id":{"type":["null","integer"]},"value":{"type":["null","number"]},"ok":{"type":"boolean"},"context":{"type":"object","properties":{"ip":{"type":"string"},"agent":{"type":"string"},"page":{"type":"string"}}},"labels":{"type":"array","items":{"type":"string"}},"ts":{"type":"string","format":"date-time"}}}}"#,
    ];
    for s in schemas {
        writeln!(out, "{s}").unwrap();
    }
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut line = String::with_capacity(1024);
    let mut text = String::new();
    for i in 0..n {
        line.clear();
        text.clear();
        let day = 1 + i % 28;
        let (h, m, s) = (rng.below(24), rng.below(60), rng.below(60));
        match i % 3 {
            0 => {
                let len = 40 + rng.below(60) as usize;
                rng.word(&mut text, len);
                let name = NAMES[rng.below(NAMES.len() as u64) as usize];
                let email = if rng.below(5) == 0 { "null".to_string() } else { format!("\"user{i}@example.com\"") };
                let address = if rng.below(7) == 0 {
                    "null".to_string()
                } else {
                    format!(
                        "{{\"city\":\"{}\",\"zip\":\"{:05}\",\"lat\":{:.5},\"lon\":{:.5}}}",
                        CITIES[rng.below(CITIES.len() as u64) as usize],
                        rng.below(100_000),
                        rng.below(180_000) as f64 / 1000.0 - 90.0,
                        rng.below(360_000) as f64 / 1000.0 - 180.0
                    )
                };
                let tz = if i % 2 == 0 { "Z" } else { "" };
                line.push_str(&format!(
                    "{{\"type\":\"RECORD\",\"stream\":\"users\",\"record\":{{\"id\":{i},\"name\":\"{name}\",\"email\":{email},\"score\":{:.3},\"active\":{},\"address\":{address},\"tags\":[\"vip\",\"beta\"],\"bio\":\"{text}, \\\"quoted\\\" – ok\",\"updated_at\":\"2026-11-{day:02}T{h:02}:{m:02}:{s:02}{tz}\"}},\"time_extracted\":\"2026-11-22T03:00:00Z\"}}",
                    rng.below(1_000_000) as f64 / 997.0,
                    rng.below(2) == 0
                ));
            }
            1 => {
                let len = 20 + rng.below(40) as usize;
                rng.word(&mut text, len);
                let items: Vec<String> = (0..1 + rng.below(3))
                    .map(|j| {
                        format!(
                            "{{\"sku\":\"sku-{}\",\"qty\":{},\"price\":{:.2}}}",
                            rng.below(10_000),
                            j + 1,
                            rng.below(100_000) as f64 / 100.0
                        )
                    })
                    .collect();
                let note = if rng.below(2) == 0 { "null".to_string() } else { format!("\"{text}, gift ✓\"") };
                line.push_str(&format!(
                    "{{\"type\":\"RECORD\",\"stream\":\"orders\",\"record\":{{\"order_id\":\"o-{i:010}\",\"user_id\":{},\"amount\":{:.2},\"currency\":\"EUR\",\"paid\":{},\"items\":[{}],\"note\":{note},\"shipping\":{{\"method\":\"express\",\"city\":\"{}\"}},\"created_at\":\"2026-11-{day:02}T{h:02}:{m:02}:{s:02}+01:00\"}}}}",
                    rng.below(1_000_000),
                    rng.below(10_000_000) as f64 / 100.0,
                    rng.below(2) == 0,
                    items.join(","),
                    CITIES[rng.below(CITIES.len() as u64) as usize],
                ));
            }
            _ => {
                let len = 30 + rng.below(50) as usize;
                rng.word(&mut text, len);
                let user = if rng.below(4) == 0 { "null".to_string() } else { rng.below(1_000_000).to_string() };
                let value = if rng.below(3) == 0 {
                    "null".to_string()
                } else {
                    format!("{:.4}", rng.below(1_000_000) as f64 / 7.0)
                };
                line.push_str(&format!(
                    "{{\"type\":\"RECORD\",\"stream\":\"events\",\"record\":{{\"event_id\":{i},\"kind\":\"page_view\",\"user_id\":{user},\"value\":{value},\"ok\":true,\"context\":{{\"ip\":\"10.{}.{}.{}\",\"agent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"page\":\"/p/{text}\"}},\"labels\":[\"a\",\"b,c\"],\"ts\":\"2026-11-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z\"}}}}",
                    rng.below(256), rng.below(256), rng.below(256), rng.below(1000)
                ));
            }
        }
        out.write_all(line.as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
        if i % 10_000 == 9_999 {
            writeln!(out, "{{\"type\":\"STATE\",\"value\":{{\"bookmarks\":{{\"position\":{i}}}}}}}").unwrap();
        }
    }
    out.flush().unwrap();
}
