//! The fast path for what a stream lake holds almost always: flat JSON objects (every value a
//! string, number, boolean or null), one after another, with or without newlines between them.
//!
//! Why not arrow-json alone: its tape decoder is general (nesting, any schema), so it first
//! copies every token of every field into a tape and then copies the wanted ones again into
//! arrays. For flat records a single pass that copies each wanted value once, and only skips
//! over the rest, reads the churn lake about three times as fast, and a projected scan (a key
//! and nothing else) faster still. Prep reads every raw byte of the lake, so this is the stage's
//! hot loop.
//!
//! The contract is narrow on purpose: [`decode`] returns `None` for anything it is not certain
//! to decode exactly as arrow-json would (nested values in a wanted column, escapes in keys,
//! duplicate keys, a string where a number is wanted, a number that is not an i64 for an
//! integer column, column types other than Utf8/Int64/Float64/Boolean, malformed or truncated
//! JSON), and the caller then decodes the object with arrow-json, which also isolates and
//! reports bad records. Tests compare the two decoders on the same bytes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef};

/// Bytes that end the fast scan of a string's body: the closing quote, an escape, or a control
/// character (invalid inside a JSON string).
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Decodes every object in `bytes` into batches of `schema` (at most `batch_size` rows each),
/// or `None` when the bytes need the general decoder.
pub fn decode(bytes: &[u8], schema: &SchemaRef, batch_size: usize) -> Option<Vec<RecordBatch>> {
    // Strings are copied as raw bytes below: `string_body` checks each one that holds a byte
    // above 0x7f as UTF-8, and anything outside strings must be ASCII to parse at all.
    let mut d = Decoder::new(schema, batch_size.max(1))?;
    d.run(bytes)?;
    d.flush()?;
    Some(d.out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Col(usize),
    Skip,
}

enum Column {
    Utf8 { offsets: Vec<i32>, data: Vec<u8> },
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Boolean(Vec<bool>),
}

struct Builder {
    column: Column,
    valid: Vec<bool>,
    /// How many of `valid` are false: a column with none needs no null buffer, known without
    /// scanning `valid` again.
    nulls: usize,
    /// The row this column was last set in (a key given twice in one object is not ours).
    set_in: usize,
}

struct Decoder {
    schema: SchemaRef,
    batch_size: usize,
    builders: Vec<Builder>,
    names: HashMap<Box<[u8]>, Slot>,
    /// The key seen at each position of the previous object and what it mapped to: objects
    /// from one producer list their keys in the same order, so one comparison usually finds
    /// the column.
    previous: Vec<(Box<[u8]>, Slot)>,
    rows: usize,
    out: Vec<RecordBatch>,
}

const MAX_CACHED_KEYS: usize = 4096;

impl Decoder {
    fn new(schema: &SchemaRef, batch_size: usize) -> Option<Self> {
        let mut builders = Vec::with_capacity(schema.fields().len());
        let mut names = HashMap::new();
        for (i, f) in schema.fields().iter().enumerate() {
            let column = match f.data_type() {
                DataType::Utf8 => Column::Utf8 {
                    offsets: vec![0],
                    data: Vec::new(),
                },
                DataType::Int64 => Column::Int64(Vec::new()),
                DataType::Float64 => Column::Float64(Vec::new()),
                DataType::Boolean => Column::Boolean(Vec::new()),
                _ => return None,
            };
            builders.push(Builder {
                column,
                valid: Vec::new(),
                nulls: 0,
                set_in: usize::MAX,
            });
            if names
                .insert(f.name().as_bytes().into(), Slot::Col(i))
                .is_some()
            {
                return None;
            }
        }
        Some(Self {
            schema: schema.clone(),
            batch_size,
            builders,
            names,
            previous: Vec::new(),
            rows: 0,
            out: Vec::new(),
        })
    }

    fn run(&mut self, b: &[u8]) -> Option<()> {
        let mut i = skip_ws(b, 0);
        while i < b.len() {
            if b[i] != b'{' {
                return None;
            }
            i = self.object(b, i + 1)?;
            i = skip_ws(b, i);
        }
        Some(())
    }

    /// One object, from just after its `{`; returns the position after its `}`.
    fn object(&mut self, b: &[u8], mut i: usize) -> Option<usize> {
        let row = self.rows;
        i = skip_ws(b, i);
        if *b.get(i)? == b'}' {
            i += 1;
        } else {
            let mut k = 0usize;
            loop {
                if *b.get(i)? != b'"' {
                    return None;
                }
                let (slot, ke) = match self.predicted(k, b, i + 1) {
                    Some(hit) => hit,
                    None => {
                        let (ks, ke, escaped) = string_body(b, i + 1)?;
                        if escaped {
                            return None;
                        }
                        (self.slot(k, &b[ks..ke]), ke)
                    }
                };
                i = skip_ws(b, ke + 1);
                if *b.get(i)? != b':' {
                    return None;
                }
                i = skip_ws(b, i + 1);
                i = match slot {
                    Slot::Skip => skip_value(b, i)?,
                    Slot::Col(c) => self.value(c, row, b, i)?,
                };
                k += 1;
                i = skip_ws(b, i);
                match *b.get(i)? {
                    b',' => i = skip_ws(b, i + 1),
                    b'}' => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        for builder in &mut self.builders {
            if builder.set_in != row {
                builder.push_null();
            }
        }
        self.rows += 1;
        if self.rows == self.batch_size {
            self.flush()?;
        }
        Some(i)
    }

    /// The `k`-th key of the previous object, when the key starting at `b[i..]` is the same
    /// one: its slot and closing quote's position. Keys kept in `previous` hold no quote or
    /// backslash (escaped keys are declined), so a prefix match followed by a quote is the
    /// whole key, found without scanning it.
    fn predicted(&self, k: usize, b: &[u8], i: usize) -> Option<(Slot, usize)> {
        let (name, slot) = self.previous.get(k)?;
        let end = i + name.len();
        (b.get(end) == Some(&b'"') && same_bytes(&b[i..end], name)).then_some((*slot, end))
    }

    fn slot(&mut self, k: usize, key: &[u8]) -> Slot {
        let slot = match self.names.get(key) {
            Some(s) => *s,
            None => {
                if self.names.len() < MAX_CACHED_KEYS {
                    self.names.insert(key.into(), Slot::Skip);
                }
                Slot::Skip
            }
        };
        if k < self.previous.len() {
            self.previous[k] = (key.into(), slot);
        } else if k == self.previous.len() {
            self.previous.push((key.into(), slot));
        }
        slot
    }

    /// A wanted value at `b[i..]` into column `c`; returns the position after it.
    fn value(&mut self, c: usize, row: usize, b: &[u8], i: usize) -> Option<usize> {
        let builder = &mut self.builders[c];
        if builder.set_in == row {
            return None;
        }
        builder.set_in = row;
        match *b.get(i)? {
            b'"' => {
                let Column::Utf8 { offsets, data } = &mut builder.column else {
                    return None;
                };
                let (s, e, escaped) = string_body(b, i + 1)?;
                if escaped {
                    unescape(&b[s..e], data)?;
                } else {
                    append(data, b, s, e);
                }
                offsets.push(i32::try_from(data.len()).ok()?);
                builder.valid.push(true);
                Some(e + 1)
            }
            b'n' => {
                if !b[i..].starts_with(b"null") {
                    return None;
                }
                builder.push_null();
                Some(i + 4)
            }
            b't' | b'f' => {
                let (v, len) = if b[i..].starts_with(b"true") {
                    (true, 4)
                } else if b[i..].starts_with(b"false") {
                    (false, 5)
                } else {
                    return None;
                };
                match &mut builder.column {
                    Column::Boolean(vals) => vals.push(v),
                    // arrow-json's coerce_primitive writes the literal.
                    Column::Utf8 { offsets, data } => {
                        data.extend_from_slice(&b[i..i + len]);
                        offsets.push(i32::try_from(data.len()).ok()?);
                    }
                    _ => return None,
                }
                builder.valid.push(true);
                Some(i + len)
            }
            b'-' | b'0'..=b'9' => {
                let (e, integer) = number(b, i)?;
                let text = &b[i..e];
                match &mut builder.column {
                    Column::Utf8 { offsets, data } => {
                        data.extend_from_slice(text);
                        offsets.push(i32::try_from(data.len()).ok()?);
                    }
                    Column::Int64(vals) => {
                        if !integer {
                            return None;
                        }
                        // Checked above to be ASCII digits.
                        let s = std::str::from_utf8(text).ok()?;
                        vals.push(s.parse().ok()?);
                    }
                    Column::Float64(vals) => {
                        let s = std::str::from_utf8(text).ok()?;
                        let v: f64 = s.parse().ok()?;
                        if !v.is_finite() {
                            return None;
                        }
                        vals.push(v);
                    }
                    Column::Boolean(_) => return None,
                }
                builder.valid.push(true);
                Some(e)
            }
            _ => None,
        }
    }

    /// Closes the batch in progress. `None` if Arrow refuses it (it cannot: every column got
    /// one value per row of the schema's type), so the caller falls back rather than panics.
    fn flush(&mut self) -> Option<()> {
        if self.rows == 0 {
            return Some(());
        }
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        // A query that needs no column (`count(*)`) still needs the row count.
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        let batch =
            RecordBatch::try_new_with_options(self.schema.clone(), columns, &options).ok()?;
        self.out.push(batch);
        self.rows = 0;
        for b in &mut self.builders {
            b.set_in = usize::MAX;
        }
        Some(())
    }
}

impl Builder {
    fn push_null(&mut self) {
        match &mut self.column {
            Column::Utf8 { offsets, data } => offsets.push(data.len() as i32),
            Column::Int64(v) => v.push(0),
            Column::Float64(v) => v.push(0.0),
            Column::Boolean(v) => v.push(false),
        }
        self.valid.push(false);
        self.nulls += 1;
    }

    fn finish(&mut self) -> ArrayRef {
        let valid = std::mem::take(&mut self.valid);
        let nulls = (std::mem::take(&mut self.nulls) > 0)
            .then(|| NullBuffer::new(BooleanBuffer::from(valid)));
        match &mut self.column {
            Column::Utf8 { offsets, data } => {
                let offsets = std::mem::replace(offsets, vec![0]);
                let data = std::mem::take(data);
                // Offsets only grow and every value came from a UTF-8-checked input or the
                // unescaper, so the checks of `try_new` cannot fail; `new` still runs them.
                Arc::new(StringArray::new(
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    data.into(),
                    nulls,
                ))
            }
            Column::Int64(v) => Arc::new(Int64Array::new(std::mem::take(v).into(), nulls)),
            Column::Float64(v) => Arc::new(Float64Array::new(std::mem::take(v).into(), nulls)),
            Column::Boolean(v) => Arc::new(BooleanArray::new(
                BooleanBuffer::from(std::mem::take(v)),
                nulls,
            )),
        }
    }
}

/// Appends `b[s..e]` to `out`. Most values are short: a fixed 16-byte copy (then cut back)
/// compiles to two moves where a copy of unknown length is a call to `memcpy`.
#[inline]
fn append(out: &mut Vec<u8>, b: &[u8], s: usize, e: usize) {
    let len = e - s;
    if len <= 16
        && let Some(chunk) = b.get(s..s + 16)
        && let Ok(chunk) = <&[u8; 16]>::try_from(chunk)
    {
        let keep = out.len() + len;
        out.extend_from_slice(chunk);
        out.truncate(keep);
    } else {
        out.extend_from_slice(&b[s..e]);
    }
}

/// Equality of two short slices of the same length, eight bytes at a time: keys are a few
/// bytes long, where a call to `memcmp` costs more than the comparison.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        if u64::from_ne_bytes(x.try_into().unwrap_or_default())
            != u64::from_ne_bytes(y.try_into().unwrap_or_default())
        {
            return false;
        }
    }
    ca.remainder()
        .iter()
        .zip(cb.remainder())
        .all(|(x, y)| x == y)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// A string's body from `i` (just after the opening quote): its end (the closing quote's
/// position) and whether it holds escapes. `None` when it never closes, holds a control
/// character, or is not valid UTF-8.
///
/// Eight bytes at a time: a byte-at-a-time loop leaves after a different count for every
/// value, and that mispredicted exit was half of a projected scan's time; most values end in
/// their first word, so this loop's exit is predictable. The masks also say which stop byte
/// was found, so it is not loaded again. The same words say whether any byte is above 0x7f:
/// only such a string needs a UTF-8 check, which for ASCII data saves a second pass over
/// every byte of the object.
#[inline]
fn string_body(b: &[u8], i: usize) -> Option<(usize, usize, bool)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut j = i;
    let mut escaped = false;
    let mut high = 0u64;
    let end = loop {
        let Some(word) = b.get(j..j + 8) else {
            break string_tail(b, j, &mut escaped, &mut high)?;
        };
        let x = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        // Per byte, the high bit set where the byte is zero (after the xor) or below 0x20.
        // A borrow only marks bytes above a true match, so the lowest mark of all is exact.
        // Bytes above 0x7f never match or borrow.
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let quote = zero(x ^ (ONES * b'"' as u64));
        let slash = zero(x ^ (ONES * b'\\' as u64));
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let hits = quote | slash | control;
        if hits == 0 {
            high |= x & HIGH;
            j += 8;
            continue;
        }
        let first = hits & hits.wrapping_neg();
        // The bytes before the first stop byte (`first` is its high bit).
        high |= x & HIGH & ((first >> 7) - 1);
        let at = j + (first.trailing_zeros() / 8) as usize;
        if quote & first != 0 {
            break at;
        }
        if slash & first == 0 {
            return None;
        }
        escaped = true;
        // The escaped byte is checked by `unescape` when the value is kept; it still counts
        // here, so the whole body is what gets checked as UTF-8.
        high |= u64::from(b.get(at + 1).copied().unwrap_or(0) >> 7);
        j = at + 2;
    };
    if high != 0 {
        std::str::from_utf8(&b[i..end]).ok()?;
    }
    Some((i, end, escaped))
}

/// The byte-at-a-time end of [`string_body`] for the last few bytes of the input: the closing
/// quote's position.
#[cold]
fn string_tail(b: &[u8], mut j: usize, escaped: &mut bool, high: &mut u64) -> Option<usize> {
    loop {
        while j < b.len() && !STRING_STOP[b[j] as usize] {
            *high |= u64::from(b[j] >> 7);
            j += 1;
        }
        match *b.get(j)? {
            b'"' => return Some(j),
            b'\\' => {
                *escaped = true;
                *high |= u64::from(b.get(j + 1).copied().unwrap_or(0) >> 7);
                j += 2;
            }
            _ => return None,
        }
    }
}

/// Appends the unescaped form of a string body to `out`; `None` on an invalid escape.
fn unescape(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *s.get(i + 1)?;
        i += 2;
        let ch = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(s.get(i..i + 4)?)?;
                i += 4;
                if (0xD800..0xDC00).contains(&hi) {
                    if s.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(s.get(i + 2..i + 6)?)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                } else {
                    char::from_u32(hi)?
                }
            }
            _ => return None,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    Some(())
}

fn hex4(h: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(h).ok()?;
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A JSON number at `b[i..]` (RFC 8259 grammar): its end, and whether it is an integer
/// (no fraction, no exponent).
fn number(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let digits = |b: &[u8], mut i: usize| {
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i, i - s)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    let (e, n) = digits(b, i);
    if n == 0 || (n > 1 && b[i] == b'0') {
        return None;
    }
    i = e;
    let mut integer = true;
    if b.get(i) == Some(&b'.') {
        let (e, n) = digits(b, i + 1);
        if n == 0 {
            return None;
        }
        i = e;
        integer = false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let (e, n) = digits(b, i);
        if n == 0 {
            return None;
        }
        i = e;
        integer = false;
    }
    // A number runs into the next token only through a delimiter.
    match b.get(i) {
        None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') => Some((i, integer)),
        _ => None,
    }
}

/// Skips a string's body from `i`, returning the position after its closing quote; its escapes
/// are still checked, as arrow-json would.
#[inline]
fn skipped_string(b: &[u8], i: usize) -> Option<usize> {
    let (s, e, escaped) = string_body(b, i)?;
    if escaped {
        unescape(&b[s..e], &mut Vec::new())?;
    }
    Some(e + 1)
}

/// Skips one value of a column nobody asked for, nested ones included.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skipped_string(b, i + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skipped_string(b, j + 1)? - 1;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        b'n' => b[i..].starts_with(b"null").then_some(i + 4),
        b't' => b[i..].starts_with(b"true").then_some(i + 4),
        b'f' => b[i..].starts_with(b"false").then_some(i + 5),
        b'-' | b'0'..=b'9' => number(b, i).map(|(e, _)| e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};

    fn arrow_json(bytes: &[u8], schema: &SchemaRef, batch_size: usize) -> Option<RecordBatch> {
        let out = super::super::decode_fast(bytes, schema, batch_size).ok()?;
        arrow::compute::concat_batches(schema, &out).ok()
    }

    fn ours(bytes: &[u8], schema: &SchemaRef, batch_size: usize) -> Option<RecordBatch> {
        let out = decode(bytes, schema, batch_size)?;
        assert!(out.iter().all(|b| b.num_rows() <= batch_size));
        arrow::compute::concat_batches(schema, &out).ok()
    }

    fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    fn mixed() -> SchemaRef {
        schema(&[
            ("s", DataType::Utf8),
            ("i", DataType::Int64),
            ("f", DataType::Float64),
            ("b", DataType::Boolean),
        ])
    }

    /// Both decoders give the same batch (or ours declines).
    fn agree(bytes: &[u8], schema: &SchemaRef) -> bool {
        let Some(mine) = ours(bytes, schema, 3) else {
            return false;
        };
        let theirs = arrow_json(bytes, schema, 3).expect("arrow-json decodes what we decode");
        assert_eq!(mine, theirs, "{}", String::from_utf8_lossy(bytes));
        true
    }

    #[test]
    fn flat_objects_decode_as_arrow_json_does() {
        let s = mixed();
        let cases: &[&[u8]] = &[
            br#"{"s":"a","i":1,"f":1.5,"b":true}{"s":"b","i":-2,"f":-0.25e2,"b":false}"#,
            b"{\"s\":\"x\"}\n{\"i\":7}\n\n{\"f\":3}\r\n{}\n",
            br#"  { "s" : "a" , "i" : 1 }   { "b" : null , "s" : null }"#,
            // Numbers and booleans in a string column keep their text.
            br#"{"s":12.50}{"s":-0}{"s":true}{"s":1e-7}"#,
            // Escapes, unicode and a surrogate pair.
            r#"{"s":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00 é 😀"}"#.as_bytes(),
            // Keys in another order, unknown keys with nested values skipped.
            br#"{"x":{"y":[1,{"z":"}"}]},"b":true,"s":"q"}{"s":"r","x":[],"i":3}"#,
            b"",
            b"   \n",
        ];
        for c in cases {
            assert!(agree(c, &s), "declined {}", String::from_utf8_lossy(c));
        }
    }

    #[test]
    fn batches_split_at_batch_size() {
        let s = schema(&[("s", DataType::Utf8)]);
        let bytes: Vec<u8> = (0..10)
            .flat_map(|i| format!("{{\"s\":\"v{i}\"}}\n").into_bytes())
            .collect();
        let out = decode(&bytes, &s, 4).unwrap();
        assert_eq!(
            out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        assert!(agree(&bytes, &s));
    }

    #[test]
    fn anything_unusual_is_left_to_arrow_json() {
        let s = mixed();
        let declined: &[&[u8]] = &[
            // nested value in a wanted column
            br#"{"s":{"a":1}}"#,
            br#"{"s":[1]}"#,
            // a string where a number is wanted
            br#"{"i":"5"}"#,
            // not an integer for an Int64 column
            br#"{"i":1.5}"#,
            br#"{"i":99999999999999999999}"#,
            // duplicate key
            br#"{"s":"a","s":"b"}"#,
            // escaped key
            br#"{"\u0073":"a"}"#,
            // truncated, malformed, not an object
            br#"{"s":"a"}{"s":"b""#,
            br#"{"s":"a",}"#,
            br#"{"s":"a"} x"#,
            br#"[{"s":"a"}]"#,
            br#"{"i":01}"#,
            br#"{"i":1x}"#,
            br#"{"s":"bad \x escape"}"#,
            b"{\"s\":\"raw\ttab\"}",
            br#"{"s":"\ud83d alone"}"#,
            b"{\"s\":\"\xff\"}",
            // invalid UTF-8 anywhere: a wanted value (short, long, cut-off sequence), a
            // skipped value, a key, after an escape, between objects
            b"{\"s\":\"abcdefghij\xffklmnopq\"}",
            b"{\"s\":\"\xc3\xa9\xc3\"}",
            b"{\"other\":\"\xc3(\",\"s\":\"a\"}",
            b"{\"\xfe\":1,\"s\":\"a\"}",
            b"{\"s\":\"a\\\xc3\"}",
            b"{\"s\":\"a\"}\xc2\xa0{\"s\":\"b\"}",
        ];
        for c in declined {
            assert!(
                decode(c, &s, 8).is_none(),
                "accepted {}",
                String::from_utf8_lossy(c)
            );
        }
        // Unsupported column types are declined whole.
        let list = schema(&[(
            "l",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
        )]);
        assert!(decode(b"{}", &list, 8).is_none());
    }

    #[test]
    fn string_body_agrees_with_a_byte_at_a_time_scan() {
        // The plain reading of the grammar: stop at a quote (the end), a backslash (skip the
        // next byte) or a control character (not a string).
        let slow = |b: &[u8], i: usize| -> Option<(usize, usize, bool)> {
            let (mut j, mut escaped) = (i, false);
            loop {
                match *b.get(j)? {
                    b'"' => return std::str::from_utf8(&b[i..j]).ok().map(|_| (i, j, escaped)),
                    b'\\' => {
                        escaped = true;
                        j += 2;
                    }
                    c if c < 0x20 => return None,
                    _ => j += 1,
                }
            }
        };
        // Every stop byte (and bytes beside the ranges) at every offset, after plain ASCII,
        // multi-byte UTF-8 and other stop bytes, scanned from every start.
        let fills: [&[u8]; 3] = [
            b"abcdefghijklmnopqrstu",
            "é東🚀ü".as_bytes(),
            b"a\"b\\c\x01d\"efghijklm",
        ];
        let stops = (0u8..0x21).chain([b'"', b'\\', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff]);
        for stop in stops {
            for fill in fills {
                for at in 0..fill.len() {
                    let mut b = fill.to_vec();
                    b[at] = stop;
                    for i in 0..b.len() {
                        assert_eq!(string_body(&b, i), slow(&b, i), "{b:?} from {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn no_columns_still_counts_rows() {
        let s = schema(&[]);
        let out = decode(b"{\"a\":1}\n{\"b\":\"x\"}\n{}\n", &s, 2).unwrap();
        assert_eq!(out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [2, 1]);
    }

    #[test]
    fn projection_skips_the_rest() {
        let s = schema(&[("id", DataType::Utf8)]);
        let bytes =
            br#"{"a":"x","id":"1","n":{"deep":[1,2,{"k":"v"}]},"z":false}{"id":"2","a":"\"}"}"#;
        let out = ours(bytes, &s, 8).unwrap();
        assert_eq!(out.num_rows(), 2);
        assert!(agree(bytes, &s));
    }
}
