//! "Latest record per key", done inside the scan (`latest_by` on an input).
//!
//! A stream of updates ("customer 42 again, with new values") is read as a table of current
//! state: of the records sharing a key, only the one that arrived last is kept. In SQL that is
//! a window (`ROW_NUMBER() OVER (PARTITION BY key ORDER BY arrival DESC) = 1`) or an anti
//! join, and both hold or hash every row's key twice over: DataFusion builds the join's
//! 5M-row table on one core, then probes and copies every row (a third of the churn job's
//! CPU time at 5M records, measured). The scan can do it in one pass instead, because it
//! knows the arrival order: it walks the objects newest first, and each object's rows last
//! to first, so the first time a key is met is its latest record and any later meeting is a
//! stale one. That needs only the set of keys met so far, and no second look at any row.
//!
//! Keys are compared after trimming spaces, as SQL `TRIM` does, so `" 42"` and `"42"` are
//! one customer. Rows whose key is NULL or blank are all kept: they name no record to
//! update, and a job filters them itself if it wants to.

use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::DataType;
use hashbrown::HashTable;

/// Every key met so far, its bytes in one arena. An entry packs the key's offset (40 bits)
/// and length (24 bits), 8 bytes per key, about a third of what a `HashSet<String>` costs.
pub struct KeySet {
    table: HashTable<u64>,
    arena: Vec<u8>,
    hasher: foldhash::fast::FixedState,
}

const LEN_BITS: u32 = 24;
const MAX_LEN: usize = (1 << LEN_BITS) - 1;

impl Default for KeySet {
    fn default() -> Self {
        Self::new()
    }
}

impl KeySet {
    pub fn new() -> Self {
        Self {
            table: HashTable::new(),
            arena: Vec::new(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Called once the first object's keys are in: makes room for the whole scan's keys, at
    /// that object's keys per byte, so the table is not rebuilt as it grows (each rebuild
    /// rehashes every key from the arena, in random order: 3.8% of the churn job's samples).
    pub fn size_for_scan(&mut self, first_object_bytes: u64, scan_bytes: u64) {
        if self.is_empty() {
            return;
        }
        let per_byte = self.len() as f64 / first_object_bytes.max(1) as f64;
        let keys = ((per_byte * scan_bytes as f64 * 1.05) as usize).min(1 << 30);
        let key_len = self.arena.len() / self.len();
        self.reserve(keys, key_len);
    }

    /// Makes room for `keys` more keys of about `key_len` bytes each.
    pub fn reserve(&mut self, keys: usize, key_len: usize) {
        let arena = &self.arena;
        let hasher = &self.hasher;
        self.table
            .reserve(keys, |&e| hasher.hash_one(Self::key(arena, e)));
        self.arena.reserve(keys.saturating_mul(key_len));
    }

    fn key(arena: &[u8], entry: u64) -> &[u8] {
        let start = (entry >> LEN_BITS) as usize;
        &arena[start..start + (entry as usize & MAX_LEN)]
    }

    /// Adds `key`; true when it was not there yet. Keys are at most 16 MiB (the length field).
    pub fn insert(&mut self, key: &[u8]) -> bool {
        assert!(key.len() <= MAX_LEN, "key of {} bytes", key.len());
        let hash = self.hasher.hash_one(key);
        let arena = &self.arena;
        let hasher = &self.hasher;
        match self.table.entry(
            hash,
            |&e| Self::key(arena, e) == key,
            |&e| hasher.hash_one(Self::key(arena, e)),
        ) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                let entry = ((self.arena.len() as u64) << LEN_BITS) | key.len() as u64;
                slot.insert(entry);
                self.arena.extend_from_slice(key);
                true
            }
        }
    }
}

/// A column's values as the bytes keys are compared by, `None` for NULL.
enum KeyColumn<'a> {
    Utf8(&'a arrow::array::StringArray),
    LargeUtf8(&'a arrow::array::LargeStringArray),
    View(&'a arrow::array::StringViewArray),
    /// Anything else, cast to text first (numbers, dates: one type per column, so equal
    /// values give equal text).
    Cast(arrow::array::StringArray),
}

impl<'a> KeyColumn<'a> {
    fn new(column: &'a ArrayRef) -> Result<Self, arrow::error::ArrowError> {
        Ok(match column.data_type() {
            DataType::Utf8 => Self::Utf8(column.as_string::<i32>()),
            DataType::LargeUtf8 => Self::LargeUtf8(column.as_string::<i64>()),
            DataType::Utf8View => Self::View(column.as_string_view()),
            _ => {
                let cast = arrow::compute::cast(column, &DataType::Utf8)?;
                Self::Cast(cast.as_string::<i32>().clone())
            }
        })
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        self.get_str(i).map(str::as_bytes)
    }

    /// Row `i`'s key, spaces trimmed; `None` for NULL.
    fn get_str(&self, i: usize) -> Option<&str> {
        let (valid, v) = match self {
            Self::Utf8(a) => (a.is_valid(i), a.value(i)),
            Self::LargeUtf8(a) => (a.is_valid(i), a.value(i)),
            Self::View(a) => (a.is_valid(i), a.value(i)),
            Self::Cast(a) => (a.is_valid(i), a.value(i)),
        };
        valid.then(|| v.trim_matches(' '))
    }
}

/// A key column's values as they are compared (text, spaces trimmed; NULL stays NULL): the
/// key a split scan's groups are merged by.
pub fn compared_keys(column: &ArrayRef) -> Result<ArrayRef, arrow::error::ArrowError> {
    let keys = KeyColumn::new(column)?;
    let values = (0..column.len()).map(|i| keys.get_str(i));
    Ok(Arc::new(arrow::array::StringArray::from_iter(values)))
}

/// Which rows of one object's batches are the latest of their key, given `seen`: the keys of
/// every newer object. Walks the object's rows last to first and adds their keys to `seen`.
/// One entry per batch; `None` when every row of that batch is kept.
pub fn mark_latest(
    seen: &mut KeySet,
    batches: &[RecordBatch],
    key_column: usize,
) -> Result<Vec<Option<BooleanArray>>, arrow::error::ArrowError> {
    let mut masks = vec![None; batches.len()];
    for (b, batch) in batches.iter().enumerate().rev() {
        let column = batch.column(key_column);
        let keys = KeyColumn::new(column)?;
        let n = batch.num_rows();
        let mut keep: Option<Vec<bool>> = None;
        for i in (0..n).rev() {
            let Some(key) = keys.get(i) else { continue };
            if key.len() > MAX_LEN {
                return Err(arrow::error::ArrowError::InvalidArgumentError(format!(
                    "a key of {} bytes: latest_by keys are at most 16 MiB",
                    key.len()
                )));
            }
            if key.is_empty() || seen.insert(key) {
                continue;
            }
            keep.get_or_insert_with(|| vec![true; n])[i] = false;
        }
        masks[b] = keep.map(BooleanArray::from);
    }
    Ok(masks)
}

/// `batch` without the rows `mask` drops (as is when there is no mask).
pub fn apply(
    batch: RecordBatch,
    mask: Option<&BooleanArray>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    match mask {
        None => Ok(batch),
        Some(m) => filter_record_batch(&batch, m),
    }
}

/// A shared key set for one scan.
pub type SharedKeySet = Arc<parking_lot::Mutex<KeySet>>;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn key_set_holds_each_key_once() {
        let mut s = KeySet::new();
        assert!(s.insert(b"a"));
        assert!(s.insert(b"ab"));
        assert!(s.insert(b""));
        assert!(!s.insert(b"a"));
        assert!(!s.insert(b"ab"));
        // Enough keys to make the table grow several times; each is found afterwards.
        for i in 0..100_000u32 {
            assert!(s.insert(format!("k{i}").as_bytes()));
        }
        for i in 0..100_000u32 {
            assert!(!s.insert(format!("k{i}").as_bytes()));
        }
        assert_eq!(s.len(), 100_003);
        // Sized for a scan ten times the keys so far: no rebuild while they go in.
        s.size_for_scan(1_000, 10_000);
        let capacity = s.table.capacity();
        assert!(capacity >= 1_000_030, "{capacity}");
        for i in 0..900_000u32 {
            s.insert(format!("m{i}").as_bytes());
        }
        assert_eq!(s.table.capacity(), capacity);
    }

    fn batch(keys: Vec<Option<&str>>, first: i64) -> RecordBatch {
        let n = keys.len() as i64;
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Utf8, true),
                Field::new("v", DataType::Int64, false),
            ])),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from_iter_values(first..first + n)),
            ],
        )
        .unwrap()
    }

    fn kept(batches: &[RecordBatch], masks: &[Option<BooleanArray>]) -> Vec<i64> {
        let mut out = Vec::new();
        for (b, m) in batches.iter().zip(masks) {
            let b = apply(b.clone(), m.as_ref()).unwrap();
            out.extend(
                b.column(1)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values(),
            );
        }
        out
    }

    #[test]
    fn the_last_of_each_key_wins_across_batches_and_objects() {
        let mut seen = KeySet::new();
        // The newer object, read first: "b" twice in it, the later one (row 2) wins.
        let newer = vec![
            batch(vec![Some("b"), Some("c")], 100),
            batch(vec![Some(" b ")], 102),
        ];
        let m = mark_latest(&mut seen, &newer, 0).unwrap();
        assert!(m[1].is_none());
        assert_eq!(kept(&newer, &m), vec![101, 102]);
        // The older object: "a" is new; "b", "c" are stale; NULL and blank keys stay.
        let older = vec![
            batch(vec![Some("a"), Some("b"), None], 0),
            batch(vec![Some("  "), Some("c"), Some("a ")], 3),
        ];
        let m = mark_latest(&mut seen, &older, 0).unwrap();
        assert_eq!(kept(&older, &m), vec![2, 3, 5]);
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn number_keys_are_compared_by_value() {
        let mut seen = KeySet::new();
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![
                Some(7),
                None,
                Some(7),
                Some(8),
            ]))],
        )
        .unwrap();
        let m = mark_latest(&mut seen, std::slice::from_ref(&b), 0).unwrap();
        let keep = m[0].as_ref().unwrap();
        assert_eq!(
            keep.iter().map(|v| v.unwrap()).collect::<Vec<_>>(),
            vec![false, true, true, true]
        );
    }
}
