//! Delivery from the embedded store into a local lake, checked object by object: exactly once,
//! per-shard order, prefixes, dynamic partitions, formats, compression, error records and
//! replay of an interrupted flush.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use millrace_delivery::checkpoint::{Checkpoint, checkpoint_dir};
use millrace_delivery::config::{ColumnType, Layout, SchemaColumn};
use millrace_delivery::{Compression, Delivery, DeliveryConfig, Format, RunMode};
use millrace_io::EmbeddedSource;
use millrace_lake::{Lake, S3Options};
use millrace_stream::{PutInput, Store, StoreOptions, StreamHandle, StreamMode};

const CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/telco-customer-churn.csv"
);

/// The shared CSV as the reference producer sent it: one JSON object of strings per row.
fn churn_records() -> Vec<(String, String)> {
    let mut r = csv_reader();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            let obj: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.to_owned(), serde_json::Value::String(v.to_owned())))
                .collect();
            (row[0].to_owned(), serde_json::to_string(&obj).unwrap())
        })
        .collect()
}

fn csv_reader() -> csv::Reader<std::fs::File> {
    csv::Reader::from_path(CSV).expect("shared CSV beside the repo")
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    stream: Arc<StreamHandle>,
    lake: Lake,
    state: std::path::PathBuf,
}

fn fixture(shards: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("data"), StoreOptions::default()).unwrap());
    let stream = store
        .create(
            "churn",
            StreamMode::Provisioned,
            Some(shards),
            24,
            Default::default(),
        )
        .unwrap();
    let lake = Lake::open(
        dir.path().join("lake").to_str().unwrap(),
        &S3Options::default(),
    )
    .unwrap();
    let state = dir.path().join("state");
    Fixture {
        _dir: dir,
        store,
        stream,
        lake,
        state,
    }
}

async fn put(stream: &StreamHandle, records: &[(String, String)]) -> Vec<(u32, String)> {
    let inputs = records
        .iter()
        .map(|(k, v)| PutInput {
            partition_key: k.clone(),
            explicit_hash_key: None,
            data: Bytes::from(v.clone()),
        })
        .collect();
    stream
        .put(inputs)
        .await
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            (r.shard, r.sequence.to_string())
        })
        .collect()
}

async fn deliver(f: &Fixture, cfg: DeliveryConfig) -> Arc<Delivery> {
    let source = Arc::new(EmbeddedSource::new(f.stream.clone()));
    let d = Arc::new(Delivery::new(cfg, f.lake.clone(), source, &f.state).unwrap());
    let (_tx, rx) = tokio::sync::watch::channel(false);
    d.clone().run(RunMode::UntilCaughtUp, rx).await.unwrap();
    d
}

/// Runs a reshard (a blocking store call) off the async threads.
async fn reshard(f: &Fixture, change: impl FnOnce(&Store) + Send + 'static) {
    let store = f.store.clone();
    tokio::task::spawn_blocking(move || change(&store))
        .await
        .unwrap();
}

fn config(interval: u64) -> DeliveryConfig {
    let mut c = DeliveryConfig::new("churn-lake", "churn");
    c.buffer_interval_secs = interval;
    c
}

async fn read_all(lake: &Lake, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (key, _) in lake.list(prefix).await.unwrap() {
        out.push((key.clone(), lake.get(&key).await.unwrap().to_vec()));
    }
    out
}

/// Parses `<prefix><name>-<shard>-<first>-<last><ext>` into (shard, first seq).
fn object_range(key: &str) -> (String, String) {
    let file = key.rsplit('/').next().unwrap();
    let rest = file.strip_prefix("churn-lake-").unwrap();
    let shard = rest[..20].to_owned();
    let first = rest[21..].split('-').next().unwrap().to_owned();
    (shard, first)
}

#[tokio::test]
async fn ndjson_lake_holds_every_record_once_in_shard_order() {
    let f = fixture(4);
    let records = churn_records();
    assert_eq!(records.len(), 7043);
    let acks = put(&f.stream, &records).await;
    deliver(&f, config(1)).await;

    let objects = read_all(&f.lake, "raw/churn/").await;
    assert!(!objects.is_empty());
    let mut per_shard: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    for (key, body) in &objects {
        // raw/churn/YYYY/MM/DD/HH/<name>-<shard>-<first>-<last>.json
        let parts: Vec<_> = key.split('/').collect();
        assert_eq!(parts.len(), 7, "{key}");
        assert_eq!(parts[2].len(), 4);
        assert!(
            parts[3].len() == 2 && parts[4].len() == 2 && parts[5].len() == 2,
            "{key}"
        );
        assert!(key.ends_with(".json"));
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let (shard, first) = object_range(key);
        per_shard.entry(shard).or_default().push((first, lines));
    }
    // Exactly once, byte-identical.
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for objs in per_shard.values() {
        for (_, lines) in objs {
            for l in lines {
                *delivered.entry(l.clone()).or_default() += 1;
            }
        }
    }
    assert_eq!(delivered.len(), records.len());
    assert!(delivered.values().all(|&n| n == 1));
    for (_, json) in &records {
        assert_eq!(delivered.get(json), Some(&1));
    }
    // Per-shard order: objects ordered by first sequence, lines in put order.
    for (shard_idx, (shard, objs)) in per_shard.iter_mut().enumerate() {
        objs.sort_by(|a, b| a.0.cmp(&b.0));
        let lines: Vec<&String> = objs.iter().flat_map(|(_, l)| l).collect();
        let expected: Vec<&String> = records
            .iter()
            .zip(&acks)
            .filter(|(_, (s, _))| *s as usize == shard_idx)
            .map(|((_, j), _)| j)
            .collect();
        assert_eq!(lines, expected, "{shard}");
    }
    // Checkpoints point at each shard's last record.
    let cps = checkpoint_dir(&f.state, "churn-lake").all();
    assert_eq!(cps.len(), 4);
    for (shard, cp) in cps {
        let last = acks
            .iter()
            .filter(|(s, _)| format!("shardId-{s:012}") == shard)
            .map(|(_, q)| q.clone())
            .max()
            .unwrap();
        assert_eq!(cp.delivered, Some(last));
        assert_eq!(cp.pending, None);
    }
    // A second run delivers nothing new.
    let d = deliver(&f, config(1)).await;
    assert_eq!(d.metrics().snapshot(0).records, 0);
    assert_eq!(read_all(&f.lake, "raw/").await.len(), objects.len());
    drop(f.store);
}

#[tokio::test]
async fn dynamic_partitioning_by_contract_in_hive_layout() {
    let f = fixture(2);
    let records = churn_records();
    put(&f.stream, &records).await;
    let mut cfg = config(1);
    cfg.partitioning
        .insert("contract".into(), ".Contract".into());
    cfg.layout = Layout::Hive;
    deliver(&f, cfg).await;

    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (_, json) in &records {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        *expected
            .entry(v["Contract"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(expected.len(), 3);
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for (key, body) in read_all(&f.lake, "raw/churn/").await {
        let part = key.split('/').nth(2).unwrap();
        let value = part
            .strip_prefix("contract=")
            .expect("hive partition folder");
        assert!(key.contains("/year=") && key.contains("/hour="), "{key}");
        for line in String::from_utf8(body).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["Contract"], value, "record in the wrong partition");
            *got.entry(value.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn dynamic_partitioning_by_a_jq_query() {
    let f = fixture(2);
    let mut records = churn_records();
    records.push(("k".to_owned(), r#"{"customerID":"no-contract"}"#.to_owned()));
    put(&f.stream, &records).await;
    let mut cfg = config(1);
    cfg.partition_query =
        Some(r#"{contract: .Contract | ascii_downcase | gsub(" "; "-"), unused: 1}"#.into());
    cfg.prefix = Some("raw/churn/contract=!{partitionKeyFromQuery:contract}/".into());
    cfg.validate("delivery[0]").unwrap();
    let d = deliver(&f, cfg).await;
    assert_eq!(d.metrics().snapshot(0).error_records, 1);

    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (_, json) in &records[..records.len() - 1] {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let folder = v["Contract"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .replace(' ', "-");
        *expected.entry(folder).or_default() += 1;
    }
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ["month-to-month", "one-year", "two-year"]
    );
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for (key, body) in read_all(&f.lake, "raw/churn/").await {
        let value = key
            .split('/')
            .nth(2)
            .unwrap()
            .strip_prefix("contract=")
            .unwrap();
        for line in String::from_utf8(body).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                v["Contract"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .replace(' ', "-"),
                value
            );
            *got.entry(value.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(got, expected);
    let errors = read_all(&f.lake, "errors/churn-lake/partitioning-failed/").await;
    assert_eq!(errors.len(), 1);
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8(errors[0].1.clone()).unwrap().trim()).unwrap();
    assert_eq!(
        line["errorCode"],
        "DynamicPartitioning.MetadataExtractionFailed"
    );
    assert!(
        line["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("jq error:"),
        "{line}"
    );
}

#[tokio::test]
async fn parquet_with_declared_schema_reads_back_typed() {
    use arrow::array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let f = fixture(2);
    let records = churn_records();
    put(&f.stream, &records).await;
    let mut cfg = config(60);
    cfg.format = Format::Parquet;
    cfg.compression = Compression::Zstd;
    cfg.schema = vec![
        SchemaColumn {
            name: "customerID".into(),
            kind: ColumnType::String,
        },
        SchemaColumn {
            name: "tenure".into(),
            kind: ColumnType::Int64,
        },
        SchemaColumn {
            name: "TotalCharges".into(),
            kind: ColumnType::Float64,
        },
        SchemaColumn {
            name: "Churn".into(),
            kind: ColumnType::String,
        },
    ];
    deliver(&f, cfg).await;
    let mut rows = 0;
    let mut tenure_sum = 0i64;
    let mut total_nulls = 0;
    let mut ids = std::collections::HashSet::new();
    for (key, body) in read_all(&f.lake, "raw/churn/").await {
        assert!(key.ends_with(".parquet"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(body))
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            assert_eq!(
                schema.field(1).data_type(),
                &arrow::datatypes::DataType::Int64
            );
            let id = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            let tenure = batch
                .column(1)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap();
            let total = batch
                .column(2)
                .as_any()
                .downcast_ref::<arrow::array::Float64Array>()
                .unwrap();
            for i in 0..batch.num_rows() {
                ids.insert(id.value(i).to_owned());
                tenure_sum += tenure.value(i);
                if total.is_null(i) {
                    total_nulls += 1;
                }
            }
            rows += batch.num_rows();
        }
    }
    let expected_tenure: i64 = records
        .iter()
        .map(|(_, j)| {
            let v: serde_json::Value = serde_json::from_str(j).unwrap();
            v["tenure"].as_str().unwrap().parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(rows, 7043);
    assert_eq!(ids.len(), 7043);
    assert_eq!(tenure_sum, expected_tenure);
    assert_eq!(total_nulls, 11, "the 11 blank TotalCharges become nulls");
}

#[tokio::test]
async fn bad_records_go_to_the_error_prefix_with_their_reason() {
    let f = fixture(1);
    let good1 = r#"{"customerID":"a","tenure":"5"}"#.to_owned();
    let good2 = r#"{"customerID":"b","tenure":"7"}"#.to_owned();
    let batch = vec![
        ("k".to_owned(), good1.clone()),
        ("k".to_owned(), "not json at all".to_owned()),
        (
            "k".to_owned(),
            r#"{"customerID":"c","tenure":"many"}"#.to_owned(),
        ),
        (
            "k".to_owned(),
            format!(
                "{{\"customerID\":\"d\",\"pad\":\"{}\"}}",
                "x".repeat(1024 * 1024 - 40)
            ),
        ),
        ("k".to_owned(), good2.clone()),
    ];
    put(&f.stream, &batch).await;
    let mut cfg = config(0);
    cfg.format = Format::Parquet;
    cfg.schema = vec![
        SchemaColumn {
            name: "customerID".into(),
            kind: ColumnType::String,
        },
        SchemaColumn {
            name: "tenure".into(),
            kind: ColumnType::Int64,
        },
    ];
    let d = deliver(&f, cfg).await;
    let snap = d.metrics().snapshot(0);
    assert_eq!(snap.records, 2);
    assert_eq!(snap.error_records, 3);
    let errors = read_all(&f.lake, "errors/churn-lake/").await;
    let mut kinds = BTreeMap::new();
    for (key, body) in &errors {
        for line in String::from_utf8(body.clone()).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let kind = v["errorCode"].as_str().unwrap().to_owned();
            assert!(
                key.starts_with(&format!("errors/churn-lake/{kind}/")),
                "{key}"
            );
            assert!(v["rawData"].as_str().unwrap().len() > 4);
            assert!(v["sequenceNumber"].as_str().unwrap().len() == 56);
            kinds.insert(kind, v["errorMessage"].as_str().unwrap().to_owned());
        }
    }
    assert!(kinds["invalid-json"].contains("not JSON"));
    assert!(kinds["format-conversion-failed"].contains("tenure"));
    assert!(kinds["record-too-large"].contains("exceeds"));
}

#[tokio::test]
async fn an_error_lake_takes_the_error_objects_and_only_them() {
    let f = fixture(1);
    let errors_dir = f.state.with_file_name("errors-lake");
    let errors = Lake::open(errors_dir.to_str().unwrap(), &S3Options::default()).unwrap();
    let batch = vec![
        ("k".to_owned(), r#"{"customerID":"a"}"#.to_owned()),
        ("k".to_owned(), "not json".to_owned()),
    ];
    put(&f.stream, &batch).await;
    let source = Arc::new(EmbeddedSource::new(f.stream.clone()));
    let d = Arc::new(
        Delivery::new(config(0), f.lake.clone(), source, &f.state)
            .unwrap()
            .with_error_lake(errors.clone()),
    );
    let (_tx, rx) = tokio::sync::watch::channel(false);
    d.clone().run(RunMode::UntilCaughtUp, rx).await.unwrap();
    let in_errors = read_all(&errors, "").await;
    assert_eq!(in_errors.len(), 1, "{in_errors:?}");
    assert!(
        in_errors[0]
            .0
            .starts_with("errors/churn-lake/invalid-json/")
    );
    let in_lake = read_all(&f.lake, "").await;
    assert_eq!(in_lake.len(), 1, "only the data object: {in_lake:?}");
    assert!(!in_lake[0].0.starts_with("errors/"));
}

#[tokio::test]
async fn compression_and_concat_keep_the_bytes() {
    let f = fixture(1);
    let records: Vec<_> = (0..300)
        .map(|i| {
            (
                "k".to_owned(),
                format!("{{\"i\":{i},\"s\":\"{}\"}}", "y".repeat(i % 17)),
            )
        })
        .collect();
    put(&f.stream, &records).await;
    let concat_expected: Vec<u8> = records.iter().flat_map(|(_, j)| j.bytes()).collect();
    let ndjson_expected: Vec<u8> = records
        .iter()
        .flat_map(|(_, j)| format!("{j}\n").into_bytes())
        .collect();
    for (format, compression, name) in [
        (Format::Ndjson, Compression::Gzip, "g"),
        (Format::Ndjson, Compression::Zstd, "z"),
        (Format::Concat, Compression::None, "c"),
    ] {
        let mut cfg = DeliveryConfig::new(name, "churn");
        cfg.prefix = Some(format!("{name}/"));
        cfg.format = format;
        cfg.compression = compression;
        deliver(&f, cfg).await;
        let mut all = Vec::new();
        for (key, body) in read_all(&f.lake, &format!("{name}/")).await {
            let plain = match compression {
                Compression::Gzip => {
                    assert!(key.ends_with(".json.gz"));
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&body[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                }
                Compression::Zstd => {
                    assert!(key.ends_with(".json.zst"));
                    zstd::decode_all(&body[..]).unwrap()
                }
                _ => body,
            };
            all.extend(plain);
        }
        let expected = if format == Format::Concat {
            &concat_expected
        } else {
            &ndjson_expected
        };
        assert_eq!(&all, expected, "{name}");
    }
}

#[tokio::test]
async fn an_interrupted_flush_is_rewritten_not_duplicated() {
    let f = fixture(1);
    let records: Vec<_> = (0..100)
        .map(|i| ("k".to_owned(), format!("{{\"i\":{i}}}")))
        .collect();
    let acks = put(&f.stream, &records).await;
    // Simulate a crash after the intent was recorded and one object was (partly) written: the
    // checkpoint says records 0..=59 are pending; the lake has a stale object for 0..=59.
    let shard = "shardId-000000000000";
    let cps = checkpoint_dir(&f.state, "churn-lake");
    cps.store(
        shard,
        &Checkpoint {
            delivered: None,
            pending: Some(acks[59].1.clone()),
            ended: false,
        },
    )
    .unwrap();
    let cfg = config(60);
    let stale_key = format!(
        "{}churn-lake-{shard}-{}-{}.json",
        // The prefix the delivery will render for these records.
        {
            let arrival = f
                .stream
                .shard(0)
                .unwrap()
                .read(0, 1, usize::MAX)
                .unwrap()
                .records[0]
                .arrival_ms;
            let t = millrace_delivery::prefix::Template::parse(&cfg.prefix_template()).unwrap();
            t.render(arrival, &BTreeMap::new(), "")
        },
        acks[0].1,
        acks[59].1
    );
    f.lake
        .put(&stale_key, Bytes::from_static(b"{\"i\":0}\n"))
        .await
        .unwrap();
    deliver(&f, cfg).await;
    let mut lines = Vec::new();
    let objects = read_all(&f.lake, "raw/").await;
    for (_, body) in &objects {
        lines.extend(
            String::from_utf8(body.clone())
                .unwrap()
                .lines()
                .map(str::to_owned),
        );
    }
    let expected: Vec<String> = records.iter().map(|(_, j)| j.clone()).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    let mut exp_sorted = expected.clone();
    exp_sorted.sort();
    assert_eq!(sorted, exp_sorted, "every record exactly once");
    assert!(
        objects.iter().any(|(k, _)| *k == stale_key),
        "the replay rewrote the same object"
    );
}

/// A split and a merge between deliveries, and one while a forever delivery runs: every record
/// is delivered once, and each key's records keep their order across parent and child
/// objects (children are read only after their parents ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_follow_parents_into_children_across_reshards() {
    let f = fixture(2);
    // 13 keys, so each key has hundreds of records whose order must hold.
    let records: Vec<(String, String)> = (0..7000)
        .map(|i| {
            let k = format!("k{}", i % 13);
            let v = serde_json::json!({"k": k, "i": i}).to_string();
            (k, v)
        })
        .collect();
    let (a, rest) = records.split_at(2000);
    let (b, c) = rest.split_at(2500);
    put(&f.stream, a).await;
    deliver(&f, config(1)).await;
    reshard(&f, |s| {
        s.split_shard("churn", "shardId-000000000000", 1 << 126)
            .unwrap()
    })
    .await;
    put(&f.stream, b).await;
    reshard(&f, |s| {
        s.merge_shards("churn", "shardId-000000000003", "shardId-000000000001")
            .unwrap()
    })
    .await;
    // A forever delivery picks up the children a reshard adds while it runs.
    let source = Arc::new(EmbeddedSource::new(f.stream.clone()));
    let d = Arc::new(Delivery::new(config(1), f.lake.clone(), source, &f.state).unwrap());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(d.clone().run(RunMode::Forever, rx));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    reshard(&f, |s| {
        s.update_shard_count("churn", 4).unwrap();
    })
    .await;
    put(&f.stream, c).await;
    let want = records.len() as u64;
    for _ in 0..200 {
        if d.metrics()
            .records
            .load(std::sync::atomic::Ordering::Relaxed)
            >= want - 2000
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tx.send(true).unwrap();
    running.await.unwrap().unwrap();

    // Every record once; per key, in put order (object keys sort by shard then first sequence,
    // so order objects by lineage: a parent's shard index is below its children's).
    let objects = read_all(&f.lake, "raw/churn/").await;
    let mut by_shard: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (key, body) in &objects {
        let lines = String::from_utf8(body.clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        by_shard.insert(object_range(key), lines);
    }
    let delivered: Vec<String> = by_shard.into_values().flatten().collect();
    assert_eq!(delivered.len(), records.len(), "every record once");
    let ids: std::collections::HashSet<&String> = delivered.iter().collect();
    assert_eq!(ids.len(), records.len());
    let mut per_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in &delivered {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        per_key
            .entry(v["k"].as_str().unwrap().to_owned())
            .or_default()
            .push(line.clone());
    }
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &records {
        expected.entry(k.clone()).or_default().push(v.clone());
    }
    assert_eq!(per_key, expected);
    // The closed shards' checkpoints record their end.
    let cps = checkpoint_dir(&f.state, "churn-lake");
    assert!(cps.load("shardId-000000000000").unwrap().ended);
    assert!(cps.load("shardId-000000000001").unwrap().ended);
}
