//! Raw JSON, read where it lies: record members found in the tap's text without a value tree,
//! and the scalar parsers (dates and times) every step shares, so one value is read the same
//! way for a key, a column and a cursor.

mod members;
mod scalars;

pub use members::find_field;
pub use scalars::parse_date_time;
