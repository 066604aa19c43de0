//! Every supported operation through aws-sdk-kinesis against a real server on a loopback port:
//! the client must parse our responses and map our errors to its typed exceptions.

use crate::common;

use std::collections::HashMap;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardFilter, ShardFilterType, ShardIteratorType, StreamMode,
    StreamModeDetails, StreamStatus,
};
use common::TestServer;

async fn create(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
}

async fn iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<&str>,
    ts: Option<DateTime>,
) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(seq.map(str::to_owned))
        .set_timestamp(ts)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_owned()
}

/// Reads a shard from an iterator until caught up; returns (sequence, data) pairs.
async fn drain(client: &Client, mut it: String) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        let r = client
            .get_records()
            .shard_iterator(&it)
            .limit(7)
            .send()
            .await
            .unwrap();
        for rec in r.records() {
            out.push((
                rec.sequence_number().to_owned(),
                rec.data().as_ref().to_vec(),
            ));
        }
        it = r.next_shard_iterator().unwrap().to_owned();
        if r.records().is_empty() && r.millis_behind_latest() == Some(0) {
            return out;
        }
    }
}

#[tokio::test]
async fn stream_lifecycle_listing_and_description() {
    let server = TestServer::start().await;
    let client = server.sdk().await;
    for i in 0..5 {
        create(&client, &format!("s{i}"), 1 + i).await;
    }
    client
        .create_stream()
        .stream_name("ondemand")
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    // ListStreams pages through every stream in name order.
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_streams()
            .limit(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        names.extend(page.stream_names().iter().cloned());
        assert_eq!(page.stream_summaries().len(), page.stream_names().len());
        if !page.has_more_streams() {
            break;
        }
        token = page.next_token().map(str::to_owned);
    }
    assert_eq!(names, ["ondemand", "s0", "s1", "s2", "s3", "s4"]);
    let after = client
        .list_streams()
        .exclusive_start_stream_name("s2")
        .send()
        .await
        .unwrap();
    assert_eq!(after.stream_names(), ["s3", "s4"]);

    let d = client
        .describe_stream()
        .stream_name("s4")
        .limit(2)
        .send()
        .await
        .unwrap();
    let desc = d.stream_description().unwrap();
    assert_eq!(desc.stream_status(), &StreamStatus::Active);
    assert_eq!(desc.shards().len(), 2);
    assert!(desc.has_more_shards());
    assert_eq!(desc.retention_period_hours(), 24);
    assert!(desc.stream_arn().ends_with(":stream/s4"));
    let rest = client
        .describe_stream()
        .stream_name("s4")
        .exclusive_start_shard_id("shardId-000000000001")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = rest
        .stream_description()
        .unwrap()
        .shards()
        .iter()
        .map(|s| s.shard_id().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000002",
            "shardId-000000000003",
            "shardId-000000000004"
        ]
    );

    let sum = client
        .describe_stream_summary()
        .stream_name("ondemand")
        .send()
        .await
        .unwrap();
    let sum = sum.stream_description_summary().unwrap();
    assert_eq!(sum.open_shard_count(), 4);
    assert_eq!(
        sum.stream_mode_details().unwrap().stream_mode(),
        &StreamMode::OnDemand
    );

    // ListShards with pagination; hash ranges tile the key space.
    let mut shards = Vec::new();
    let first = client
        .list_shards()
        .stream_name("s4")
        .max_results(2)
        .send()
        .await
        .unwrap();
    shards.extend(first.shards().iter().cloned());
    let mut token = first.next_token().map(str::to_owned);
    while let Some(t) = token {
        let page = client
            .list_shards()
            .next_token(t)
            .max_results(2)
            .send()
            .await
            .unwrap();
        shards.extend(page.shards().iter().cloned());
        token = page.next_token().map(str::to_owned);
    }
    assert_eq!(shards.len(), 5);
    let mut expect_start = 0u128;
    for s in &shards {
        let r = s.hash_key_range().unwrap();
        assert_eq!(r.starting_hash_key().parse::<u128>().unwrap(), expect_start);
        expect_start = r.ending_hash_key().parse::<u128>().unwrap().wrapping_add(1);
    }
    assert_eq!(expect_start, 0, "last range ends at 2^128-1");
    let filtered = client
        .list_shards()
        .stream_name("s4")
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AfterShardId)
                .shard_id("shardId-000000000003")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.shards().len(), 1);

    // Errors map onto the SDK's typed exceptions.
    let e = client
        .create_stream()
        .stream_name("s1")
        .shard_count(1)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_in_use_exception());
    let e = client
        .describe_stream()
        .stream_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());

    client
        .delete_stream()
        .stream_name("s1")
        .send()
        .await
        .unwrap();
    let e = client
        .describe_stream_summary()
        .stream_name("s1")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let e = client
        .delete_stream()
        .stream_name("s1")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn put_and_read_with_every_iterator_type() {
    let server = TestServer::start().await;
    let client = server.sdk().await;
    create(&client, "events", 2).await;

    // PutRecord: remember where each record went.
    let mut acked: Vec<(String, String, Vec<u8>)> = Vec::new();
    for i in 0..20 {
        let data = format!("{{\"i\":{i}}}").into_bytes();
        let r = client
            .put_record()
            .stream_name("events")
            .partition_key(format!("key-{i}"))
            .data(Blob::new(data.clone()))
            .send()
            .await
            .unwrap();
        acked.push((
            r.shard_id().to_owned(),
            r.sequence_number().to_owned(),
            data,
        ));
    }
    // PutRecords: per-record results in request order.
    let entries: Vec<_> = (20..60)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .partition_key(format!("key-{i}"))
                .data(Blob::new(format!("{{\"i\":{i}}}")))
                .build()
                .unwrap()
        })
        .collect();
    let r = client
        .put_records()
        .stream_name("events")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(r.failed_record_count(), Some(0));
    assert_eq!(r.records().len(), 40);
    for (i, rec) in r.records().iter().enumerate() {
        acked.push((
            rec.shard_id().unwrap().to_owned(),
            rec.sequence_number().unwrap().to_owned(),
            format!("{{\"i\":{}}}", i + 20).into_bytes(),
        ));
    }

    let mut by_shard: HashMap<String, Vec<(String, Vec<u8>)>> = HashMap::new();
    for (shard, seq, data) in &acked {
        by_shard
            .entry(shard.clone())
            .or_default()
            .push((seq.clone(), data.clone()));
    }
    assert_eq!(by_shard.len(), 2, "60 keys spread over both shards");

    for (shard, expected) in &by_shard {
        // TRIM_HORIZON reads everything, in put order, with the acknowledged sequence numbers.
        let it = iterator(
            &client,
            "events",
            shard,
            ShardIteratorType::TrimHorizon,
            None,
            None,
        )
        .await;
        assert_eq!(&drain(&client, it).await, expected);

        // AT_SEQUENCE_NUMBER / AFTER_SEQUENCE_NUMBER start at / just after a given record.
        let mid = expected.len() / 2;
        let it = iterator(
            &client,
            "events",
            shard,
            ShardIteratorType::AtSequenceNumber,
            Some(&expected[mid].0),
            None,
        )
        .await;
        assert_eq!(drain(&client, it).await, expected[mid..]);
        let it = iterator(
            &client,
            "events",
            shard,
            ShardIteratorType::AfterSequenceNumber,
            Some(&expected[mid].0),
            None,
        )
        .await;
        assert_eq!(drain(&client, it).await, expected[mid + 1..]);

        // Sequence numbers grow within the shard. Like Kinesis's 56-digit ones they do not
        // fit a u128; ours have a fixed width, so string order is numeric order.
        let seqs: Vec<&str> = expected.iter().map(|(s, _)| s.as_str()).collect();
        assert!(seqs.iter().all(|s| s.len() == seqs[0].len()));
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    }

    // LATEST sees only what arrives after the iterator was taken; AT_TIMESTAMP starts at the
    // first record at or after the time.
    let shard = acked[0].0.clone();
    let latest = iterator(
        &client,
        "events",
        &shard,
        ShardIteratorType::Latest,
        None,
        None,
    )
    .await;
    let r = client
        .get_records()
        .shard_iterator(&latest)
        .send()
        .await
        .unwrap();
    assert!(r.records().is_empty());
    assert_eq!(r.millis_behind_latest(), Some(0));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let before_new = DateTime::from_millis(millrace_stream::now_ms());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let new = client
        .put_record()
        .stream_name("events")
        .partition_key(acked_key_for_shard(&acked, &shard))
        .data(Blob::new("late"))
        .send()
        .await
        .unwrap();
    assert_eq!(new.shard_id(), shard);
    let from_latest = drain(&client, latest).await;
    assert_eq!(
        from_latest,
        vec![(new.sequence_number().to_owned(), b"late".to_vec())]
    );
    let at_ts = iterator(
        &client,
        "events",
        &shard,
        ShardIteratorType::AtTimestamp,
        None,
        Some(before_new),
    )
    .await;
    assert_eq!(drain(&client, at_ts).await, from_latest);
    let r = client
        .get_records()
        .shard_iterator(
            iterator(
                &client,
                "events",
                &shard,
                ShardIteratorType::TrimHorizon,
                None,
                None,
            )
            .await,
        )
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.records().len(), 1);
    let rec = &r.records()[0];
    let arrival = rec
        .approximate_arrival_timestamp()
        .unwrap()
        .to_millis()
        .unwrap();
    assert!((millrace_stream::now_ms() - arrival).abs() < 60_000);
    assert!(r.millis_behind_latest().unwrap() >= 0);
    assert!(rec.partition_key().unwrap().starts_with("key-"));

    // Errors: a sequence number from the other shard, a forged iterator.
    let other = by_shard.keys().find(|s| **s != shard).unwrap();
    let foreign_seq = &by_shard[other][0].0;
    let e = client
        .get_shard_iterator()
        .stream_name("events")
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(foreign_seq)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_argument_exception());
    let e = client
        .get_shard_iterator()
        .stream_name("events")
        .shard_id("shardId-000000000009")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let e = client
        .get_records()
        .shard_iterator("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_argument_exception());
}

fn acked_key_for_shard(acked: &[(String, String, Vec<u8>)], shard: &str) -> String {
    // The partition key of the first record acknowledged on `shard` routes there again.
    let i = acked.iter().position(|(s, _, _)| s == shard).unwrap();
    format!("key-{i}")
}

#[tokio::test]
async fn expired_iterators_are_refused() {
    use millrace_gateway::iterator::{IteratorCodec, Position};
    let server = TestServer::start().await;
    let client = server.sdk().await;
    create(&client, "old", 1).await;
    let stream = server.store.stream("old").unwrap();
    // An iterator signed with the server's key but issued six minutes ago.
    let token = IteratorCodec::new([42; 32]).encode(&Position {
        stream: "old".into(),
        stream_created_ms: stream.created_ms(),
        shard: 0,
        counter: 0,
        issued_ms: millrace_stream::now_ms() - 6 * 60 * 1000,
    });
    let e = client
        .get_records()
        .shard_iterator(token)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_expired_iterator_exception());

    // An iterator of a deleted-and-recreated stream does not read the new stream.
    let it = iterator(
        &client,
        "old",
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
        None,
    )
    .await;
    client
        .delete_stream()
        .stream_name("old")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    create(&client, "old", 1).await;
    let e = client
        .get_records()
        .shard_iterator(it)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn retention_and_tags() {
    let server = TestServer::start().await;
    let client = server.sdk().await;
    create(&client, "t", 1).await;
    client
        .increase_stream_retention_period()
        .stream_name("t")
        .retention_period_hours(168)
        .send()
        .await
        .unwrap();
    let e = client
        .increase_stream_retention_period()
        .stream_name("t")
        .retention_period_hours(48)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_argument_exception());
    client
        .decrease_stream_retention_period()
        .stream_name("t")
        .retention_period_hours(72)
        .send()
        .await
        .unwrap();
    let d = client
        .describe_stream_summary()
        .stream_name("t")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.stream_description_summary()
            .unwrap()
            .retention_period_hours(),
        72
    );
    let e = client
        .increase_stream_retention_period()
        .stream_name("t")
        .retention_period_hours(8761)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_argument_exception());

    client
        .add_tags_to_stream()
        .stream_name("t")
        .tags("team", "data")
        .tags("env", "dev")
        .tags("cost", "1")
        .send()
        .await
        .unwrap();
    let page = client
        .list_tags_for_stream()
        .stream_name("t")
        .limit(2)
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = page.tags().iter().map(|t| t.key().to_owned()).collect();
    assert_eq!(keys, ["cost", "env"]);
    assert!(page.has_more_tags());
    let rest = client
        .list_tags_for_stream()
        .stream_name("t")
        .exclusive_start_tag_key("env")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.tags()[0].key(), "team");
    assert_eq!(rest.tags()[0].value(), Some("data"));
    client
        .remove_tags_from_stream()
        .stream_name("t")
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let all = client
        .list_tags_for_stream()
        .stream_name("t")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = all.tags().iter().map(|t| t.key().to_owned()).collect();
    assert_eq!(keys, ["cost", "team"]);

    // Too many tags in total is refused.
    let mut req = client.add_tags_to_stream().stream_name("t");
    for i in 0..10 {
        req = req.tags(format!("k{i}"), "v");
    }
    req.send().await.unwrap();
    for batch in 0..4 {
        let mut req = client.add_tags_to_stream().stream_name("t");
        for i in 0..10 {
            req = req.tags(format!("b{batch}-{i}"), "v");
        }
        let r = req.send().await;
        if batch < 3 {
            r.unwrap();
        } else {
            assert!(
                r.unwrap_err()
                    .into_service_error()
                    .is_invalid_argument_exception()
            );
        }
    }
}

#[tokio::test]
async fn stream_arn_addresses_the_stream() {
    let server = TestServer::start().await;
    let client = server.sdk().await;
    create(&client, "by-arn", 1).await;
    let arn = client
        .describe_stream_summary()
        .stream_name("by-arn")
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .stream_arn()
        .to_owned();
    let r = client
        .put_record()
        .stream_arn(&arn)
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.shard_id(), "shardId-000000000000");
}
