//! Records out of the text formats feeds arrive in (NDJSON, a JSON array, CSV), whether a
//! request body or a dropped file: each record goes to a callback with its position, and a
//! malformed one stops the reading with a refusal naming where it is.

use std::io::{BufRead, Read};

use bright_engine::ingest_api::{BodyFormat, IngestRefusal, Position};

use crate::transforms::{CsvRecord, Fields, JsonRecord, csv_columns};

/// Takes one record and its position; an error stops the reading.
pub type Add<'a> = &'a mut dyn FnMut(Position, &dyn Fields) -> Result<(), IngestRefusal>;

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The content, or the callback's refusal.
    #[error(transparent)]
    Refused(#[from] IngestRefusal),
    /// Reading the input itself failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A refusal of the record at `position`, naming `field` when one is at fault.
pub fn bad(position: Position, field: Option<&str>, reason: impl Into<String>) -> IngestRefusal {
    IngestRefusal::BadRecord {
        position,
        field: field.map(str::to_string),
        reason: reason.into(),
    }
}

/// Passes every record of `input`, written as `format`, to `add`.
pub fn read_records(format: BodyFormat, input: impl BufRead, add: Add) -> Result<(), ReadError> {
    match format {
        BodyFormat::Ndjson => read_ndjson(input, add),
        BodyFormat::Json => Ok(read_json(input, add)?),
        BodyFormat::Csv => Ok(read_csv(input, add)?),
    }
}

fn read_ndjson(mut input: impl BufRead, add: Add) -> Result<(), ReadError> {
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let position = Position::Line(number);
        // A line checked as UTF-8 once, in one pass, is read without checking each string of
        // it again; a line that is not UTF-8 is read as bytes, for the reader's own account
        // of where it goes wrong.
        let object: Result<JsonRecord, _> = match std::str::from_utf8(&line) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(&line),
        };
        let object = object.map_err(|e| bad(position, None, format!("not a JSON object ({e})")))?;
        add(position, &object)?;
    }
}

/// A JSON array of objects, or one object (read whole: large inputs should be NDJSON or CSV).
fn read_json(input: impl Read, add: Add) -> Result<(), IngestRefusal> {
    let value: serde_json::Value = serde_json::from_reader(input).map_err(|e| {
        bad(
            Position::Line(e.line().max(1)),
            None,
            format!("not JSON ({e})"),
        )
    })?;
    let elements = match value {
        serde_json::Value::Array(elements) => elements,
        object @ serde_json::Value::Object(_) => vec![object],
        _ => {
            return Err(bad(
                Position::Element(1),
                None,
                "expected an array of objects or one object",
            ));
        }
    };
    for (i, element) in elements.iter().enumerate() {
        let position = Position::Element(i + 1);
        let object = element
            .as_object()
            .ok_or_else(|| bad(position, None, "not a JSON object"))?;
        add(position, object)?;
    }
    Ok(())
}

/// CSV with a header line. Extracts come with BOMs, quoted fields, padding and blank lines:
/// the reader skips blank lines, and the header and fields are trimmed.
fn read_csv(input: impl Read, add: Add) -> Result<(), IngestRefusal> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader
        .byte_headers()
        .map_err(|e| bad(Position::Line(1), None, format!("no CSV header ({e})")))?;
    let columns = csv_columns(header);
    let mut record = csv::ByteRecord::new();
    loop {
        let line = usize::try_from(reader.position().line()).unwrap_or(0);
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record
                    .position()
                    .map_or(line, |p| usize::try_from(p.line()).unwrap_or(line));
                add(
                    Position::Line(line),
                    &CsvRecord {
                        columns: &columns,
                        record: &record,
                    },
                )?;
            }
            Err(e) => {
                let line = e
                    .position()
                    .map_or(line, |p| usize::try_from(p.line()).unwrap_or(line));
                return Err(bad(Position::Line(line), None, format!("bad CSV ({e})")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each NDJSON record's `name` field, or the refusal.
    fn names(body: &[u8]) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        read_records(BodyFormat::Ndjson, body, &mut |_, record| {
            let name = record
                .get("name")
                .map_err(|e| bad(Position::Line(0), None, e))?;
            out.push(name.map(|n| n.into_owned()).unwrap_or_default());
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn ndjson_lines_read_as_text_and_a_line_not_utf8_is_refused_by_its_number() {
        let body = "{\"name\":\"Zo\u{eb} \u{1F3E5}\"}\n\n{\"name\":\"caf\\u00e9 \\\"A\\\"\"}\n";
        assert_eq!(
            names(body.as_bytes()).expect("reads"),
            ["Zo\u{eb} \u{1F3E5}", "caf\u{e9} \"A\""]
        );
        // Windows-1252 "café" in the third line: not UTF-8, so not JSON text.
        let mut body = b"{\"name\":\"a\"}\n{\"name\":\"b\"}\n{\"name\":\"caf".to_vec();
        body.extend_from_slice(&[0xE9, b'"', b'}', b'\n']);
        let refused = names(&body).expect_err("refused");
        assert!(
            refused.contains("line 3") && refused.contains("not a JSON object"),
            "{refused}"
        );
    }
}
