//! `invalid_records: dead_letter`: records that break their schema go to the stream's
//! dead-letter files instead of stopping the run.

use serde_json::value::RawValue;

use super::files::RecordContext;
use super::{Error, InputErrorKind, Run};

impl Run<'_, '_> {
    /// `invalid_records: dead_letter`: the record goes, with its input line, stream and the
    /// validator's message, to the stream's dead-letter files instead of stopping the run.
    pub(super) fn reject(&mut self, name: &str, record: &str, why: &InputErrorKind) -> Result<(), Error> {
        let line = self.line;
        let batch = match &self.batch_at {
            Some(at) => format!(r#","batch_file":{},"batch_line":{}"#, serde_json::Value::from(&*at.url), at.line),
            None => String::new(),
        };
        let text = format!(
            r#"{{"line":{line}{batch},"stream":{},"error":{},"record":{}}}"#,
            serde_json::Value::from(name),
            serde_json::Value::from(why.to_string()),
            record
        );
        let rejected =
            RawValue::from_string(text).map_err(|e| self.input_error(Some(name), InputErrorKind::Json(e)))?;
        let Some(spec) = self.router.rejects(name) else {
            return Err(self.input_error(Some(name), InputErrorKind::Invalid(why.to_string())));
        };
        let spec = spec.clone();
        let context = RecordContext { line, time_extracted: None, version: None, received_at: &self.received_at };
        let written = self.files.write(&spec, "", rejected.get(), None, &context, &mut self.ack);
        self.finisher.totals.rejected += 1;
        self.drain_closed(written)
    }
}
